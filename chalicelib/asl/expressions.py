"""JSONata for states whose query language is JSONata, compiled once per definition.

In a JSONata state a string that starts with ``{%`` and ends with ``%}`` is a
JSONata expression; any other value is a literal. :class:`Expression` parses
one expression (with the `jsonata-python <https://pypi.org/project/jsonata-python/>`_
package) and :class:`JsonataTemplate` a whole JSON value (``Output``,
``Arguments``, ``Assign``, ``ItemSelector``, ...) whose strings may be
expressions. Nothing is parsed while a state runs.

An expression sees no context item (``$`` is undefined, as in Step Functions):
it reads ``$states`` (``input``, ``context``, ``result``, ``errorOutput``) and
the workflow variables, bound as ``$name``. Step Functions' own functions
(``$partition``, ``$range``, ``$hash``, ``$random``, ``$uuid``, ``$parse``) are
bound too, and ``$eval`` is not.

Results are plain JSON values. An expression that returns nothing
(undefined), a function or a regex, or that fails, fails the state with
``States.QueryEvaluationError`` and AWS's cause, naming the field it sits in
(``Output/total``, ``Assign/x``, ``Choices[0]/Condition``, ...).

Bounds: the expressions of one state step share ``TIME_LIMIT_SECONDS`` (see
:func:`run_state_timed`; alone, an evaluation gets all of it); no step may make
a string longer than ``MAX_STRING_CHARS`` or a sequence longer than
``MAX_SEQUENCE_ITEMS`` (the range operator, ``$range``, ``$pad``, ``$join``,
``$string`` and ``$replace`` check before they build one); a failure is a
``States.QueryEvaluationError``.

Regex literals (``/pattern/flags``) compile with RE2 (:mod:`.regexes`), so ``$match``,
``$replace``, ``$split`` and ``$contains`` take time linear in the text per search; a
pattern RE2 cannot run (a backreference, lookaround) is an :class:`ExpressionSyntaxError`.
Between two matches of one regex the evaluation's time limit is checked too.

Thread safety: jsonata-python keeps evaluation state on the parsed object, so
each thread evaluates its own shallow copy of it (the parsed tree is shared
and only read).

It is long because it is the whole JSONata binding: parsing, Step Functions' own
functions and the evaluation limits share one environment and one error mapping.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import re
import threading
import time
import uuid
from functools import lru_cache
from typing import Any, Callable

from jsonata import Jsonata
from jsonata.functions import Functions
from jsonata.jexception import JException
from jsonata.utils import Utils

from . import errors, regexes
from .errors import StatesError, json_type
from .limits import MAX_PAYLOAD_BYTES, NotJson, TooDeep, payload_size

regexes.install_jsonata()

__all__ = [
    "Expression",
    "ExpressionSyntaxError",
    "JsonataTemplate",
    "compile_expression",
    "evaluation_bindings",
    "is_expression",
    "json_type",
]

#: Longest time one expression may run before it fails the state.
TIME_LIMIT_SECONDS = 5.0
#: Most numbers ``$range`` and the range operator ``[a..b]`` may produce (JSONata's own limit is 1e7,
#: too many for Python's memory: ten million integers take about 400 MB).
MAX_RANGE_ITEMS = 1_000_000
#: Longest string and longest sequence one evaluation step may make; a result must fit in a payload anyway.
MAX_STRING_CHARS = 4 * MAX_PAYLOAD_BYTES
MAX_SEQUENCE_ITEMS = MAX_RANGE_ITEMS
#: Sequence items all the steps of one evaluation may make (about 150 MB of numbers at most).
MAX_PRODUCED_ITEMS = 4 * MAX_RANGE_ITEMS

_NULL = Utils.NULL_VALUE
_RANGE = Utils.RangeList  # a lazy range, bounded when it is made (its length counts one too many)
#: ``$states`` used for anything but its input, result or errorOutput (so the context object is needed).
_USES_CONTEXT = re.compile(r"\$states\b(?!\s*\.\s*(?:input|result|errorOutput)\b)")


class ExpressionSyntaxError(ValueError):
    """A ``{% ... %}`` string that is not a valid JSONata expression."""


def is_expression(value: Any) -> bool:
    """Whether a value is a JSONata expression string ``{% ... %}``."""
    return type(value) is str and len(value) >= 4 and value.startswith("{%") and value.endswith("%}")


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# -- Step Functions' JSONata functions ---------------------------------------------------------

def _whole(value: Any) -> int:
    """A number argument as an integer, rounded towards zero as AWS does."""
    return int(value)


def _partition(array: Any, size: Any) -> Any:
    """``$partition(array, size)``: chunks of ``size`` items; undefined for no items or size < 1."""
    size = _whole(size)
    items = list(array)
    if not items or size < 1:
        return None
    return [items[start:start + size] for start in range(0, len(items), size)]


def _range(start: Any, end: Any, step: Any = None) -> Any:
    """``$range(start, end, step)``: start, start+step, ... up to end (inclusive).

    Undefined without a step or when the step goes the wrong way; a single
    number stands alone, not in an array (both as in Step Functions).
    """
    if step is None:
        return None
    start, end, step = _whole(start), _whole(end), _whole(step)
    if step == 0 or (end - start) * step < 0:
        return None
    numbers = range(start, end + (1 if step > 0 else -1), step)
    if len(numbers) > MAX_RANGE_ITEMS:
        raise ValueError(f"$range would produce {len(numbers)} numbers, more than {MAX_RANGE_ITEMS}")
    return numbers[0] if len(numbers) == 1 else list(numbers)


_HASHES = {"MD5": hashlib.md5, "SHA-1": hashlib.sha1, "SHA-256": hashlib.sha256,
           "SHA-384": hashlib.sha384, "SHA-512": hashlib.sha512}


def _hash(data: Any, algorithm: Any = None) -> Any:
    """``$hash(text, algorithm)``: the hex digest; undefined without an algorithm."""
    if algorithm is None:
        return None
    if algorithm not in _HASHES:
        raise ValueError(f"$hash does not support the algorithm '{algorithm}'; use one of {', '.join(_HASHES)}")
    return _HASHES[algorithm](data.encode("utf-8")).hexdigest()


def _random(seed: Any = None) -> float:
    """``$random(seed)``: a number in [0, 1), the same for the same integer seed."""
    return random.random() if seed is None else random.Random(_whole(seed)).random()


def _uuid() -> str:
    return str(uuid.uuid4())


def _too_long(what: str, size: int) -> ValueError:
    return ValueError(f"{what} would make a string of {size} characters, more than {MAX_STRING_CHARS}")


def _pad(text: Any, width: Any, char: Any = None) -> Any:
    """``$pad``, refusing widths no payload could hold (before the string is made)."""
    if isinstance(width, (int, float)) and not isinstance(width, bool) and abs(width) > MAX_STRING_CHARS:
        raise _too_long("$pad", int(abs(width)))
    return Functions.pad(text, width, char)


def _join(strings: Any, separator: Any = None) -> Any:
    """``$join``, measuring the result before making it (its items may all be one long string)."""
    if isinstance(strings, list):
        size = sum(len(item) for item in strings if isinstance(item, str))
        size += len(separator) * max(len(strings) - 1, 0) if isinstance(separator, str) else 0
        if size > MAX_STRING_CHARS:
            raise _too_long("$join", size)
    return Functions.join(strings, separator)


def _string(value: Any, prettify: Any = None) -> Any:
    """``$string``, measuring the JSON text before writing it."""
    if isinstance(value, (list, dict)):
        try:
            size = payload_size(value, MAX_STRING_CHARS)
        except (NotJson, TooDeep):  # JSONata's own values (functions, sequences): written as JSONata does
            size = 0
        if size > MAX_STRING_CHARS:
            raise _too_long("$string", size)
    return Functions.string(value, prettify)


def _replace(text: Any, pattern: Any, replacement: Any, limit: Any = None) -> Any:
    """``$replace``, refusing a replacement text that would make the string too long."""
    if isinstance(text, str) and isinstance(replacement, str) and len(replacement) > 1:
        if isinstance(pattern, str):
            matches = text.count(pattern) if pattern else 0
        elif hasattr(pattern, "finditer"):
            matches = sum(1 for _ in pattern.finditer(text))
        else:
            matches = 0
        if isinstance(limit, (int, float)) and not isinstance(limit, bool):
            matches = min(matches, max(int(limit), 0))
        size = len(text) * (1 + replacement.count("$")) + matches * len(replacement)
        if size > MAX_STRING_CHARS:
            raise _too_long("$replace", size)
    return Functions.replace(text, pattern, replacement, limit)


def _size_guard() -> Callable[..., None]:
    """Called after every evaluation step: no string or sequence past the bounds, and no more than
    ``MAX_PRODUCED_ITEMS`` sequence items made in all (``[1..1000000].[1..1000000]`` grows its
    result inside one step, which this stops after a few inner ranges)."""
    produced = 0

    def check(expr: Any, input: Any, environment: Any, result: Any) -> None:
        nonlocal produced
        if type(result) is str:
            if len(result) > MAX_STRING_CHARS:
                raise _too_long("the expression", len(result))
        elif isinstance(result, list):
            produced += len(result)
            if produced > MAX_PRODUCED_ITEMS:
                raise ValueError(f"the expression made more than {MAX_PRODUCED_ITEMS} sequence items")
            if len(result) > MAX_SEQUENCE_ITEMS and type(result) is not _RANGE:
                raise ValueError(f"the expression would make a sequence of {len(result)} items, more than "
                                 f"{MAX_SEQUENCE_ITEMS}")
    return check


def _parse(text: Any) -> Any:
    """``$parse(json_text)``: the JSON value (the replacement for ``$eval``)."""
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(f"$parse was given text that is not JSON: {text}") from None
    return _NULL if value is None else value


#: name -> (implementation, JSONata signature)
_FUNCTIONS: dict[str, tuple[Callable[..., Any], str]] = {
    "partition": (_partition, "<an:a>"),
    "range": (_range, "<nnn?:a>"),
    "hash": (_hash, "<ss?:s>"),
    "random": (_random, "<n?:n>"),
    "uuid": (_uuid, "<:s>"),
    "parse": (_parse, "<s:x>"),
    "pad": (_pad, "<s-ns?:s>"),
    "join": (_join, "<a<s>s?:s>"),
    "string": (_string, "<x-b?:s>"),
    "replace": (_replace, "<s-(sf)(sf)n?:s>"),
}


# -- expressions -------------------------------------------------------------------------------

class _Unsupported(Exception):
    """A result that is not a JSON value (a function, a regex, a non-finite number)."""


def _plain(value: Any) -> Any:
    """A JSONata result as a plain JSON value (the same object when it already is one).

    JSONata's null becomes None, its sequences become lists, whole floats become
    integers (JSONata numbers are doubles, and AWS writes ``7``, not ``7.0``).
    """
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise _Unsupported()
        return int(value) if value.is_integer() and abs(value) < 2**63 else value
    if value is _NULL:
        return None
    if kind is dict:
        out = value
        for key, item in value.items():
            new = _plain(item)
            if new is not item:
                if out is value:
                    out = dict(value)
                out[key] = new
        return out
    if isinstance(value, list):
        items = [_plain(item) for item in value]
        if kind is list and all(new is old for new, old in zip(items, value)):
            return value
        return items
    raise _Unsupported()


def _binding(value: Any) -> Any:
    # A bound None would read as undefined; JSON null is JSONata's null.
    return _NULL if value is None else value


def evaluation_bindings(states: dict, variables: Any) -> dict:
    """The ``$`` names an expression sees: the variables (any mapping) and ``$states``."""
    bindings = {name: _binding(value) for name, value in variables.items()}
    bindings["states"] = states
    return bindings


class Expression:
    """One parsed JSONata expression (the text between ``{%`` and ``%}``)."""

    __slots__ = ("text", "uses_context", "_parsed", "_local")

    def __init__(self, text: str):
        self.text = text
        self.uses_context = bool(_USES_CONTEXT.search(text))
        try:
            parsed = Jsonata(text, regexes.jsonata_engine)
        except JException as exc:
            raise ExpressionSyntaxError(f"invalid JSONata expression '{text}': {_message(exc)}") from None
        except Exception as exc:  # the parser's own errors on odd input
            raise ExpressionSyntaxError(f"invalid JSONata expression '{text}': {exc}") from None
        if parsed.errors:
            raise ExpressionSyntaxError(f"invalid JSONata expression '{text}': {parsed.errors[0]}")
        name = _top_level_reference(parsed.ast)
        if name is not None:
            where = "" if name == "$$" else " at the top level"
            raise ExpressionSyntaxError(f"Reference to '{name}'{where} is not supported in the JSONata "
                                        f"expression '{text}': read the input as $states.input")
        parsed.set_validate_input(False)  # inputs are JSON already
        parsed.set_output_convert_nulls(False)  # keep null apart from undefined
        for name, (implementation, signature) in _FUNCTIONS.items():
            parsed.register_function(name, Jsonata.JFunction(Jsonata.JLambda(implementation), signature))
        parsed.environment.bind("eval", None)  # AWS leaves $eval out; $parse replaces it
        parsed.evaluate_range_expression = _bounded_range(parsed.evaluate_range_expression)
        self._parsed = parsed
        self._local = threading.local()

    def _instance(self) -> Jsonata:
        instance = getattr(self._local, "jsonata", None)
        if instance is None:
            instance = self._local.jsonata = copy.copy(self._parsed)
        return instance

    def evaluate(self, bindings: dict, field: str, frame: dict) -> Any:
        """The expression's JSON value; failures are AWS's ``States.QueryEvaluationError``."""
        instance = self._instance()
        Jsonata.CURRENT.jsonata = instance  # $now() and $millis() read the evaluating instance
        # Any expression can loop for long ([1..1000000].[1..1000000]), so every one is timed,
        # against what the state's earlier expressions left of the state's time.
        left = getattr(_state_time, "left", None)
        began = time.monotonic()
        deadline = began + (TIME_LIMIT_SECONDS if left is None else left)
        bindings["__evaluate_entry"] = _time_limit(deadline)
        bindings["__evaluate_exit"] = _size_guard()
        previous = regexes.set_deadline(deadline)  # checked between one regex's matches too
        try:
            value = instance.evaluate(None, bindings)
        except JException as exc:
            raise self.failure(field, frame, f"threw an error during evaluation. {exc.error}: {_message(exc)}") from None
        except RecursionError:
            raise self.failure(field, frame, "threw an error during evaluation: the expression nests too deeply") from None
        except Exception as exc:
            raise self.failure(field, frame, f"threw an error during evaluation: {exc}") from None
        finally:
            regexes.set_deadline(previous)
            if left is not None:
                _state_time.left = max(0.0, left - (time.monotonic() - began))
        if value is None:
            raise self.failure(field, frame, "returned nothing (undefined).")
        try:
            return _plain(value)
        except _Unsupported:
            raise self.failure(field, frame, "returned an unsupported result type.") from None
        except RecursionError:
            raise self.failure(field, frame, "returned a value nested too deeply.") from None

    def failure(self, field: str, frame: dict, what: str) -> StatesError:
        return errors.state_failure(
            errors.QUERY_EVALUATION_ERROR, frame["at"], frame["eid"],
            f"The JSONata expression '{self.text}' specified for the field '{field}' {what}")

    def wrong_type(self, field: str, frame: dict, expected: str, value: Any) -> StatesError:
        """The error for a result of the wrong type (``expected`` as AWS names it: 'array', ...)."""
        return self.failure(field, frame, f"returned an unexpected result type. Expected '{expected}', "
                                          f"but was '{json_type(value)}' for value: {compact(value)}")

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def _top_level_reference(node: Any) -> str | None:
    """A name the expression reads from the context item at its top level, if any.

    Step Functions evaluates an expression with no context item and refuses
    such a definition: the input is ``$states.input``, a variable ``$name``.
    Only the first step of a path reads the context item; later steps,
    predicates and lambda arguments have one of their own.
    """
    kind = getattr(node, "type", None)
    if kind == "name":
        return node.value
    if kind == "variable":
        return "$" if node.value == "" else "$$" if node.value == "$" else None
    if kind == "path":
        return _top_level_reference(node.steps[0]) if node.steps else None
    if kind in ("binary", "apply"):
        children = [node.lhs, node.rhs]
    elif kind == "bind":
        children = [node.rhs]
    elif kind == "unary":
        if node.value == "-":
            children = [node.expression]
        elif node.value == "[":
            children = node.expressions or []
        else:
            children = [part for pair in (node.lhs_object or []) for part in pair]
    elif kind in ("function", "partial"):
        children = [node.procedure, *(node.arguments or [])]
    elif kind == "lambda":
        children = [node.body]
    elif kind == "condition":
        children = [node.condition, node.then, getattr(node, "_else", None)]
    elif kind == "block":
        children = node.expressions or []
    else:
        return None
    for child in children:
        found = _top_level_reference(child)
        if found is not None:
            return found
    return None


def _bounded_range(evaluate_range: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """The range operator ``[a..b]``, refusing more than ``MAX_RANGE_ITEMS`` numbers (JSONata's D2014)."""
    def bounded(lhs: Any, rhs: Any) -> Any:
        if (type(lhs) is int and type(rhs) is int) and rhs - lhs + 1 > MAX_RANGE_ITEMS:
            raise JException("D2014", -1, rhs - lhs + 1)
        return evaluate_range(lhs, rhs)
    return bounded


_state_time = threading.local()  # ``left``: seconds the running state step's expressions still have


def run_state_timed(state: Any, frame: dict, runner: Any) -> Any:
    """``state.run(frame, runner)``, its JSONata expressions sharing ``TIME_LIMIT_SECONDS``.

    So a state with many expressions (Arguments with a hundred fields, say) blocks the
    process at most that long, not that long per expression: a request or background
    slice, which checks its budget between steps, ends within its budget plus this. A
    step nested in it (a Parallel's branches, a Map's iterations run inline) has a time
    of its own, and the time it takes is not charged to the outer state's expressions.
    A plain function, not a context manager: it runs once per JSONata state step.
    """
    outer = getattr(_state_time, "left", None)
    _state_time.left = TIME_LIMIT_SECONDS
    try:
        return state.run(frame, runner)
    finally:
        _state_time.left = outer


def _time_limit(deadline: float) -> Callable[..., None]:
    def check(expr: Any, input: Any, environment: Any) -> None:
        if time.monotonic() > deadline:
            raise JException("D1012", -1, int(TIME_LIMIT_SECONDS * 1000))
    return check


def _message(exc: JException) -> str:
    # jsonata-python's message catalog says "Object" where JSONata says "function".
    return re.sub(r"\bObject\b", "function", str(exc))


@lru_cache(maxsize=4096)
def compile_expression(text: str) -> Expression:
    """Parse (and cache) the expression inside a ``{% ... %}`` string."""
    return Expression(text[2:-2].strip())


# -- templates ---------------------------------------------------------------------------------

Evaluator = Callable[[dict, dict], Any]


class JsonataTemplate:
    """A JSON value whose ``{% %}`` strings, at any depth, are expressions.

    ``field`` names the value in error causes (``Output``, ``Catch[0]/Assign``);
    nested values add ``/key`` and ``[index]``.
    """

    __slots__ = ("source", "field", "expression", "uses_context", "_evaluate")

    def __init__(self, source: Any, field: str):
        self.source = source
        self.field = field
        #: The expression when the whole value is one (for messages about its result).
        self.expression = compile_expression(source) if is_expression(source) else None
        found: list[Expression] = []
        self._evaluate = _compile(source, field, found)
        self.uses_context = any(expr.uses_context for expr in found)

    @property
    def constant(self) -> bool:
        return self._evaluate is None

    def evaluate(self, bindings: dict, frame: dict) -> Any:
        if self._evaluate is None:
            return self.source
        return self._evaluate(bindings, frame)


def _compile(value: Any, field: str, found: list) -> Evaluator | None:
    """An evaluator for ``value``, or None when it holds no expression."""
    if is_expression(value):
        expr = compile_expression(value)
        found.append(expr)
        return lambda bindings, frame: expr.evaluate(bindings, field, frame)
    if isinstance(value, dict):
        parts = [(key, item, _compile(item, f"{field}/{key}", found)) for key, item in value.items()]
        if all(evaluate is None for _, _, evaluate in parts):
            return None
        return lambda bindings, frame: {
            key: item if evaluate is None else evaluate(bindings, frame) for key, item, evaluate in parts}
    if isinstance(value, list):
        items = [(item, _compile(item, f"{field}[{index}]", found)) for index, item in enumerate(value)]
        if all(evaluate is None for _, evaluate in items):
            return None
        return lambda bindings, frame: [
            item if evaluate is None else evaluate(bindings, frame) for item, evaluate in items]
    return None
