"""ASL intrinsic functions (``States.Format(...)`` and friends), compiled once.

``compile_intrinsic`` parses a call such as
``States.Format('Hello {}', States.ArrayGetItem($.names, 0))`` into a tree of
small evaluators: literals become constants, paths are compiled with
``compile_path`` and nested calls become closures. ``Intrinsic.evaluate`` only
walks that tree; nothing is parsed while a state runs.

Syntax errors, unknown function names and wrong argument counts raise
:class:`IntrinsicSyntaxError` when the definition is compiled. Bad argument
values found at run time raise ``StatesError('States.IntrinsicFailure', ...)``;
a path argument that names nothing raises ``PathNotFound`` so the caller can
report it together with the field name.

It is long because it is the parser plus the eighteen intrinsic functions of the
specification in one table; each function is a few lines.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
import re
import uuid
from functools import lru_cache
from typing import Any, Callable

from . import errors
from .errors import StatesError, json_type
from .limits import MAX_PAYLOAD_BYTES, NotJson, TooDeep, payload_size
from .paths import Env, PathSyntaxError, compile_path

__all__ = ["Intrinsic", "IntrinsicSyntaxError", "compile_intrinsic", "is_intrinsic"]

#: AWS limits (Step Functions developer guide, "Intrinsic functions").
MAX_FUNCTIONS = 10  # intrinsic functions in one field, nested ones included
MAX_RANGE_ITEMS = 1000  # items States.ArrayRange may generate
MAX_CODEC_CHARS = 10_000  # input characters of Base64Encode/Base64Decode/Hash
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # States.MathAdd operands

Evaluator = Callable[[Any, Any], Any]


class IntrinsicSyntaxError(ValueError):
    """The text is not a valid intrinsic function call."""


def is_intrinsic(text: Any) -> bool:
    """Whether a string is an intrinsic function call (as opposed to a path)."""
    return (
        isinstance(text, str)
        and text.startswith("States.")
        and "(" in text
        and text.rstrip().endswith(")")
    )


class Intrinsic:
    """A compiled intrinsic call; ``evaluate(data, env)`` returns its JSON value."""

    __slots__ = ("text", "_evaluate")

    def __init__(self, text: str, evaluate: Evaluator):
        self.text = text
        self._evaluate = evaluate

    def evaluate(self, data: Any, env: Env | None = None) -> Any:
        try:
            return self._evaluate(data, env)
        except RecursionError:
            raise StatesError(
                errors.INTRINSIC_FAILURE, f"The data given to '{self.text}' is nested too deeply"
            ) from None

    def __repr__(self) -> str:
        return f"Intrinsic({self.text!r})"


@lru_cache(maxsize=4096)
def compile_intrinsic(text: str) -> Intrinsic:
    """Parse (and cache) an intrinsic function call."""
    if not is_intrinsic(text):
        raise IntrinsicSyntaxError(f"not an intrinsic function call: {text!r}")
    return Intrinsic(text, _Parser(text).parse())


# --------------------------------------------------------------------------
# Run-time helpers


def _failure(name: str, detail: str) -> StatesError:
    return StatesError(errors.INTRINSIC_FAILURE, f"Invalid arguments in {name}: {detail}")


def _expect(name: str, value: Any, kind: type, what: str) -> Any:
    if type(value) is not kind:
        article = "an" if what[0] in "aeiou" else "a"
        raise _failure(name, f"expected {article} {what}, got {json_type(value)}")
    return value


def _integer(name: str, value: Any, what: str, exact: bool = False) -> int:
    """An integer argument; floats are rounded half up as AWS does (Java Math.round).

    With ``exact`` a float must have no fractional part.
    """
    if type(value) is int:
        return value
    if type(value) is float and math.isfinite(value):
        if value.is_integer():
            return int(value)
        if not exact:
            floor = math.floor(value)
            return floor + 1 if value - floor >= 0.5 else floor
    raise _failure(name, f"the {what} must be an integer, got {_describe(value)}")


def _describe(value: Any) -> str:
    kind = json_type(value)
    return f"{kind} {_compact(value)}" if kind in ("number", "boolean") else kind


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _bounded(name: str, values: list, extra: int = 0) -> None:
    """Refuse arguments whose text would make a result over the payload limit (before it is built)."""
    total = extra
    for value in values:
        try:
            total += payload_size(value, MAX_PAYLOAD_BYTES - total)
        except TooDeep:
            raise _failure(name, "an argument is nested too deeply") from None
        except NotJson as exc:
            raise _failure(name, f"an argument is not JSON ({exc})") from None
        if total > MAX_PAYLOAD_BYTES:
            raise StatesError(
                errors.DATA_LIMIT_EXCEEDED,
                f"The result of {name} would exceed the maximum number of bytes service limit.",
            )


def _utf8(text: str) -> bytes:
    """UTF-8 bytes; a lone surrogate (from a ``\\ud800`` escape) becomes '?', as in Java."""
    return text.encode("utf-8", "replace")


def _key(value: Any) -> Any:
    """A hashable key with JSON equality: true is not 1, 1 equals 1.0."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    if isinstance(value, list):
        return ("a", tuple(_key(item) for item in value))
    return ("o", frozenset((k, _key(v)) for k, v in value.items()))


def _format_value(value: Any) -> str:
    """How States.Format writes a value: strings as they are, objects as {k=v, ...}."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_format_value(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _interleave(segments: tuple[str, ...] | list[str], values: list) -> str:
    _bounded("States.Format", values, sum(len(segment) for segment in segments))
    out = [segments[0]]
    for value, segment in zip(values, segments[1:]):
        out.append(_format_value(value))
        out.append(segment)
    return "".join(out)


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not valid JSON")


# --------------------------------------------------------------------------
# The functions. Each takes the function name and the evaluated arguments.


def _array(name: str, args: list) -> list:
    return list(args)


def _array_partition(name: str, args: list) -> list:
    array = _expect(name, args[0], list, "array")
    size = _integer(name, args[1], "chunk size")
    if size <= 0:
        raise _failure(name, f"the chunk size must be greater than 0, got {size}")
    return [array[i:i + size] for i in range(0, len(array), size)]


def _array_contains(name: str, args: list) -> bool:
    array = _expect(name, args[0], list, "array")
    wanted = _key(args[1])
    return any(_key(item) == wanted for item in array)


def _array_range(name: str, args: list) -> list:
    start = _integer(name, args[0], "start")
    end = _integer(name, args[1], "end")
    step = _integer(name, args[2], "step")
    if step == 0:
        raise _failure(name, "the step must not be 0")
    numbers = range(start, end + (1 if step > 0 else -1), step)
    if len(numbers) > MAX_RANGE_ITEMS:
        raise _failure(
            name, f"the range would have {len(numbers)} items, more than the limit of {MAX_RANGE_ITEMS}"
        )
    return list(numbers)


def _array_get_item(name: str, args: list) -> Any:
    array = _expect(name, args[0], list, "array")
    index = _integer(name, args[1], "index", exact=True)
    if not 0 <= index < len(array):
        raise _failure(name, f"the index {index} is out of bounds for an array of {len(array)} items")
    return array[index]


def _array_length(name: str, args: list) -> int:
    return len(_expect(name, args[0], list, "array"))


def _array_unique(name: str, args: list) -> list:
    seen: set = set()
    unique = []
    for item in _expect(name, args[0], list, "array"):
        key = _key(item)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def _limited_string(name: str, value: Any) -> str:
    text = _expect(name, value, str, "string")
    if len(text) > MAX_CODEC_CHARS:
        raise _failure(
            name, f"the input has {len(text)} characters, more than the limit of {MAX_CODEC_CHARS}"
        )
    return text


def _base64_encode(name: str, args: list) -> str:
    return base64.b64encode(_utf8(_limited_string(name, args[0]))).decode("ascii")


def _base64_decode(name: str, args: list) -> str:
    text = _limited_string(name, args[0])
    if len(text) % 4:  # padding is optional, as in Java's basic decoder
        text += "=" * (4 - len(text) % 4)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _failure(name, "the input is not valid base64") from None
    return raw.decode("utf-8", errors="replace")


_HASHES = {
    "MD5": hashlib.md5,
    "SHA-1": hashlib.sha1,
    "SHA-256": hashlib.sha256,
    "SHA-384": hashlib.sha384,
    "SHA-512": hashlib.sha512,
}


def _hash(name: str, args: list) -> str:
    text = _limited_string(name, args[0])
    algorithm = args[1]
    if type(algorithm) is not str or algorithm not in _HASHES:
        raise _failure(
            name,
            f"unsupported hash algorithm {_compact(algorithm)}; use one of {', '.join(_HASHES)}",
        )
    return _HASHES[algorithm](_utf8(text)).hexdigest()


def _json_merge(name: str, args: list) -> dict:
    first = _expect(name, args[0], dict, "object")
    second = _expect(name, args[1], dict, "object")
    deep = _expect(name, args[2], bool, "boolean")
    if deep:
        raise _failure(name, "only shallow merging is supported; the third argument must be false")
    return {**first, **second}


def _string_to_json(name: str, args: list) -> Any:
    text = _expect(name, args[0], str, "string")
    if not text.strip():
        return None
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite)
    except ValueError:
        raise _failure(name, "the string is not valid JSON") from None
    try:
        payload_size(value, limit=math.inf)
    except TooDeep:
        raise _failure(name, "the JSON is nested too deeply") from None
    return value


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is too large for a JSON number")
    return number


def _json_to_string(name: str, args: list) -> str:
    _bounded(name, args)
    try:
        return _compact(args[0])
    except ValueError:
        raise _failure(name, "the value cannot be written as JSON") from None


def _math_random(name: str, args: list) -> int:
    start = _integer(name, args[0], "start")
    end = _integer(name, args[1], "end")
    if start > end:
        raise _failure(name, f"the start {start} is greater than the end {end}")
    generator = random.Random(_integer(name, args[2], "seed")) if len(args) == 3 else random
    return generator.randint(start, end)


def _math_add(name: str, args: list) -> int:
    total = 0
    for what, value in zip(("first", "second"), args):
        number = _integer(name, value, f"{what} argument")
        if not INT32_MIN <= number <= INT32_MAX:
            raise _failure(
                name, f"the {what} argument {number} is outside [{INT32_MIN}, {INT32_MAX}]"
            )
        total += number
    return total


def _string_split(name: str, args: list) -> list:
    """Split on any of the delimiter's characters, dropping empty pieces."""
    text = _expect(name, args[0], str, "string")
    delimiters = _expect(name, args[1], str, "string")
    if len(delimiters) > 1:
        text = text.translate({ord(c): delimiters[0] for c in delimiters[1:]})
    pieces = text.split(delimiters[0]) if delimiters else [text]
    return [piece for piece in pieces if piece]


def _uuid(name: str, args: list) -> str:
    return str(uuid.uuid4())


#: name -> (minimum arguments, maximum arguments or None, implementation)
_FUNCTIONS: dict[str, tuple[int, int | None, Callable[[str, list], Any] | None]] = {
    "States.Array": (0, None, _array),
    "States.ArrayPartition": (2, 2, _array_partition),
    "States.ArrayContains": (2, 2, _array_contains),
    "States.ArrayRange": (3, 3, _array_range),
    "States.ArrayGetItem": (2, 2, _array_get_item),
    "States.ArrayLength": (1, 1, _array_length),
    "States.ArrayUnique": (1, 1, _array_unique),
    "States.Base64Encode": (1, 1, _base64_encode),
    "States.Base64Decode": (1, 1, _base64_decode),
    "States.Hash": (2, 2, _hash),
    "States.JsonMerge": (3, 3, _json_merge),
    "States.StringToJson": (1, 1, _string_to_json),
    "States.JsonToString": (1, 1, _json_to_string),
    "States.MathRandom": (2, 3, _math_random),
    "States.MathAdd": (2, 2, _math_add),
    "States.StringSplit": (2, 2, _string_split),
    "States.UUID": (0, 0, _uuid),
    "States.Format": (1, None, None),  # compiled by _compile_format
}


# --------------------------------------------------------------------------
# Parsing (compile time only)


class _Literal:
    """A literal argument; ``segments`` is a string split on its unescaped ``{}``."""

    __slots__ = ("value", "segments")

    def __init__(self, value: Any, segments: tuple[str, ...] | None = None):
        self.value = value
        self.segments = segments


_NAME = re.compile(r"States\.[A-Za-z0-9]+")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = {"true": True, "false": False, "null": None}
_ESCAPABLE = "'{}\\"
_CLOSING = {"[": "]", "(": ")"}


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.calls = 0

    def error(self, message: str) -> IntrinsicSyntaxError:
        return IntrinsicSyntaxError(f"{message} at position {self.pos} in {self.text!r}")

    def parse(self) -> Evaluator:
        evaluate = self.call()
        self.skip_space()
        if self.pos != len(self.text):
            raise self.error("unexpected text after the function call")
        return evaluate

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def call(self) -> Evaluator:
        match = _NAME.match(self.text, self.pos)
        if not match or self.text[match.end():match.end() + 1] != "(":
            raise self.error("expected a function call such as States.Format(...)")
        name = match.group()
        if name not in _FUNCTIONS:
            raise self.error(f"unknown intrinsic function {name}")
        self.calls += 1
        if self.calls > MAX_FUNCTIONS:
            raise self.error(f"more than {MAX_FUNCTIONS} intrinsic functions in one field")
        self.pos = match.end() + 1
        args = self.arguments()
        low, high, implementation = _FUNCTIONS[name]
        if len(args) < low or (high is not None and len(args) > high):
            expected = str(low) if low == high else f"{low} to {high}" if high else f"at least {low}"
            raise self.error(f"{name} takes {expected} arguments, got {len(args)}")
        if implementation is None:
            return _compile_format(name, args, self)
        return _compile_call(name, implementation, [_evaluator(arg) for arg in args])

    def arguments(self) -> list:
        args: list = []
        self.skip_space()
        if self.peek() == ")":
            self.pos += 1
            return args
        while True:
            self.skip_space()
            args.append(self.argument())
            self.skip_space()
            char = self.peek()
            self.pos += 1
            if char == ")":
                return args
            if char != ",":
                self.pos -= 1
                raise self.error("expected ',' or ')'")

    def argument(self) -> Any:
        char = self.peek()
        if char == "'":
            return self.string()
        if char == "$":
            return self.path()
        if char == "-" or char.isdigit():
            match = _NUMBER.match(self.text, self.pos)
            if not match:
                raise self.error("invalid number")
            self.pos = match.end()
            return _Literal(json.loads(match.group()))
        if self.text.startswith("States.", self.pos):
            return self.call()
        match = _WORD.match(self.text, self.pos)
        if match and match.group() in _KEYWORDS:
            self.pos = match.end()
            return _Literal(_KEYWORDS[match.group()])
        raise self.error("expected a string, number, true, false, null, path or function call")

    def string(self) -> _Literal:
        """A quoted literal; ``\\'``, ``\\{``, ``\\}`` and ``\\\\`` are its only escapes."""
        text, pos = self.text, self.pos + 1
        segments: list[str] = []
        current: list[str] = []
        while True:
            if pos >= len(text):
                self.pos = pos
                raise self.error("unterminated string literal")
            char = text[pos]
            if char == "'":
                break
            if char == "\\":
                escaped = text[pos + 1:pos + 2]
                if not escaped or escaped not in _ESCAPABLE:
                    self.pos = pos
                    raise self.error("invalid escape in string literal (use \\', \\{, \\} or \\\\)")
                current.append(escaped)
                pos += 2
            elif char == "{" and text[pos + 1:pos + 2] == "}":
                segments.append("".join(current))
                current = []
                pos += 2
            else:
                current.append(char)
                pos += 1
        self.pos = pos + 1
        segments.append("".join(current))
        return _Literal("{}".join(segments), tuple(segments))

    def path(self) -> Evaluator:
        """A path runs to the next ',' or ')' outside brackets and quotes."""
        text, start, pos = self.text, self.pos, self.pos
        stack: list[str] = []
        quote = ""
        while pos < len(text):
            char = text[pos]
            if quote:
                if char == "\\":
                    pos += 1
                elif char == quote:
                    quote = ""
            elif stack and char in "'\"":
                quote = char
            elif char in _CLOSING:
                stack.append(_CLOSING[char])
            elif stack and char == stack[-1]:
                stack.pop()
            elif not stack and (char in ",)" or char.isspace()):
                break
            pos += 1
        self.pos = pos
        if stack or quote:
            raise self.error("unterminated path")
        try:
            return compile_path(text[start:pos]).get
        except PathSyntaxError as exc:
            raise self.error(f"invalid path {text[start:pos]!r} ({exc})") from None


def _evaluator(arg: Any) -> Evaluator:
    if isinstance(arg, _Literal):
        value = arg.value
        return lambda data, env: value
    return arg


def _compile_call(name: str, implementation: Callable[[str, list], Any], args: list) -> Evaluator:
    if not args:
        return lambda data, env: implementation(name, [])
    if len(args) == 1:
        (only,) = args
        return lambda data, env: implementation(name, [only(data, env)])
    return lambda data, env: implementation(name, [arg(data, env) for arg in args])


def _compile_format(name: str, args: list, parser: _Parser) -> Evaluator:
    """States.Format: a literal template is split on ``{}`` here, once."""
    template, values = args[0], [_evaluator(arg) for arg in args[1:]]
    if isinstance(template, _Literal):
        if not isinstance(template.value, str) or template.segments is None:
            raise parser.error(f"the first argument of {name} must be a string")
        segments = template.segments
        if len(segments) - 1 != len(values):
            raise parser.error(
                f"{name} has {len(segments) - 1} placeholders but {len(values)} values"
            )
        return lambda data, env: _interleave(segments, [value(data, env) for value in values])
    template_of = _evaluator(template)

    def evaluate(data: Any, env: Any) -> str:
        found = _expect(name, template_of(data, env), str, "string")
        pieces = found.split("{}")
        if len(pieces) - 1 != len(values):
            raise _failure(
                name, f"the template has {len(pieces) - 1} placeholders but {len(values)} values"
            )
        return _interleave(pieces, [value(data, env) for value in values])

    return evaluate
