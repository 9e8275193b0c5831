"""Regular expressions in definitions run on RE2, in time linear in the text they search.

A definition's regexes are JSONPath filters ``[?(@.name =~ 'pattern')]`` (and jsonpath-ng's
`` `sub(/pattern/, replacement)` `` operator) and JSONata
regex literals ``/pattern/flags`` (``$match``, ``$replace``, ``$split``, ``$contains``).
Python's own ``re`` backtracks: ``(a+)+$`` on 28 ``a`` and a ``!`` takes it seconds, and
every further ``a`` doubles that, while the process can do nothing else. Here both
languages compile their patterns with :func:`compile_pattern` on `google-re2
<https://pypi.org/project/google-re2/>`_, whose automata search a text in time
proportional to its length times the pattern's, whatever the pattern.

RE2 has no backreferences (``\\1``) and no lookaround (``(?=``, ``(?!``, ``(?<=``,
``(?<!``); such a pattern is :class:`UnsupportedPattern`, raised where the definition is
checked, as both languages take patterns only as literals. Repetition counts go up to
1,000, and one compiled pattern uses at most ``MAX_PATTERN_MEMORY`` bytes.

The objects :func:`compile_pattern` returns behave as Python's patterns do where the two
languages' libraries read them: ``search``, ``finditer``, ``split`` and ``sub`` (with
Python's replacement templates, ``\\g<1>``, and its error for a group the pattern lacks,
which jsonata-python relies on). Match positions are in characters of the text.

:func:`install_jsonpath` hooks the engine into jsonpath-ng once, before the first filter is
parsed: its ``=~`` looks ``OPERATOR_MAP["=~"]`` up for every comparison. JSONata gets the
engine as :func:`jsonata_engine`, passed to every ``Jsonata`` it parses, and
:func:`install_jsonata` gives it to jsonata-python's date-time parsing (``$toMillis`` with a
picture), once.

All matches (``finditer``, ``sub``, ``split``) take one search per match, and each search
may read the rest of the text, so a pattern like ``[a-z]*X|a`` costs the square of the
text's length over all its matches; :func:`set_deadline` lets the caller stop that
between two searches (JSONata evaluations do, with their own time limit).
"""
from __future__ import annotations

import re
import threading
import time
from functools import cache, lru_cache
from typing import Any, Callable, Iterator

import re2

__all__ = [
    "MAX_PATTERN_MEMORY",
    "Pattern",
    "RegexTimeout",
    "UnsupportedPattern",
    "bind_path",
    "compile_pattern",
    "install_jsonata",
    "install_jsonpath",
    "jsonata_engine",
    "set_deadline",
]

#: The most memory RE2 may use to compile and run one pattern (its own default, 8 MiB).
MAX_PATTERN_MEMORY = 8 << 20

_SURROGATE = re.compile("[\ud800-\udfff]")  # a class: one step per character
_local = threading.local()


class UnsupportedPattern(ValueError):
    """A pattern RE2 cannot run: a backreference, lookaround, or a syntax error."""

    def __init__(self, pattern: str, reason: str):
        super().__init__(f"the regular expression '{pattern}' cannot run on RE2: {reason}{_hint(reason)}")
        self.pattern = pattern
        self.reason = reason


class RegexTimeout(RuntimeError):
    """Matching went past the deadline set with :func:`set_deadline`."""


def set_deadline(deadline: float | None) -> float | None:
    """Stop all-matches work (``finditer``, ``sub``, ``split``) in this thread after ``deadline``
    (``time.monotonic()``), or never with None; returns the deadline it replaces."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = deadline
    return previous


def _hint(reason: str) -> str:
    if re.match(r"invalid escape sequence: \\([1-9]|k)", reason) or reason.startswith("invalid perl operator: (?P="):
        return " (a backreference, which RE2 does not have)"
    if reason.startswith(("invalid perl operator: (?=", "invalid perl operator: (?!", "invalid perl operator: (?<")):
        return " (lookaround, which RE2 does not have)"
    if reason.startswith("invalid repetition size"):
        return " (RE2 repeats at most 1,000 times)"
    return ""


def _reason(error: Exception) -> str:
    message = error.args[0] if error.args else str(error)
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)


class Match:
    """One match: its groups and positions, read from the searched text."""

    __slots__ = ("string", "_spans")

    def __init__(self, string: str, spans: list[tuple[int, int]]):
        self.string = string
        self._spans = spans

    def span(self, group: int = 0) -> tuple[int, int]:
        if not 0 <= group < len(self._spans):
            raise IndexError("no such group")
        return self._spans[group]

    def start(self, group: int = 0) -> int:
        return self.span(group)[0]

    def end(self, group: int = 0) -> int:
        return self.span(group)[1]

    def group(self, *groups: int) -> Any:
        found = tuple(self._text(group) for group in (groups or (0,)))
        return found[0] if len(found) == 1 else found

    def _text(self, group: int) -> str | None:
        start, end = self.span(group)
        return None if start < 0 else self.string[start:end]

    def groups(self, default: Any = None) -> tuple:
        return tuple(default if text is None else text
                     for text in (self._text(group) for group in range(1, len(self._spans))))

    def __getitem__(self, group: int) -> str | None:
        return self._text(group)


class Pattern:
    """A compiled RE2 pattern with the part of ``re.Pattern``'s interface the libraries use."""

    __slots__ = ("pattern", "groups", "_names", "_regexp")

    def __init__(self, pattern: str, regexp: Any):
        self.pattern = pattern
        self._regexp = regexp
        self.groups = regexp.groups
        self._names = tuple(sorted(regexp.groupindex.items()))

    def _matches(self, text: str, deadline: float | None = None) -> Iterator[Match]:
        if not isinstance(text, str):
            raise TypeError(f"expected a string, not {type(text).__name__}")
        searched = text
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, which UTF-8 cannot hold, is searched as U+FFFD
            searched = _SURROGATE.sub("\ufffd", text)
        count, previous = self.groups + 1, None
        for found in self._regexp.finditer(searched):
            spans = [found.span(group) for group in range(count)]
            if spans[0] == previous and spans[0][0] == spans[0][1]:
                continue  # re2 finds an empty match twice when it lies past where its search began
            previous = spans[0]
            yield Match(text, spans)
            if deadline is not None and time.monotonic() > deadline:
                raise RegexTimeout(f"matching the regular expression '{self.pattern}' took too long")

    def search(self, text: str) -> Match | None:
        return next(self._matches(text), None)

    def finditer(self, text: str) -> Iterator[Match]:
        return self._matches(text, getattr(_local, "deadline", None))

    def split(self, text: str, maxsplit: int = 0) -> list:
        pieces, end = [], 0
        for number, found in enumerate(self.finditer(text)):
            if maxsplit and number >= maxsplit:
                break
            pieces.append(text[end:found.start()])
            pieces.extend(found.group(group) for group in range(1, self.groups + 1))
            end = found.end()
        pieces.append(text[end:])
        return pieces

    def sub(self, replacement: Any, text: str, count: int = 0) -> str:
        expand = replacement if callable(replacement) else _template(replacement, self.groups, self._names)
        pieces, end = [], 0
        for number, found in enumerate(self.finditer(text)):
            if count and number >= count:
                break
            pieces.append(text[end:found.start()])
            pieces.append(expand(found))
            end = found.end()
        pieces.append(text[end:])
        return "".join(pieces)

    def __repr__(self) -> str:
        return f"Pattern({self.pattern!r})"


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_OCTAL = "01234567"


@lru_cache(maxsize=1024)
def _template(template: str, groups: int, names: tuple = ()) -> Callable[[Match], str]:
    """A replacement template read as Python's ``re.sub`` reads it: ``\\g<n>``, ``\\n``, octal
    and letter escapes; a group the pattern lacks is ``re.error`` with Python's message."""
    parts: list[str | int] = []
    literal: list[str] = []

    def group(number: int, position: int) -> None:
        if number > groups:
            raise re.error(f"invalid group reference {number}", template, position)
        parts.append("".join(literal))
        literal.clear()
        parts.append(number)

    position, size = 0, len(template)
    while position < size:
        char = template[position]
        if char != "\\":
            literal.append(char)
            position += 1
            continue
        if position + 1 == size:
            raise re.error("bad escape (end of pattern)", template, position)
        after = template[position + 1]
        if after == "g":
            if not template.startswith("<", position + 2):
                raise re.error("missing <", template, position)
            close = template.find(">", position + 3)
            if close < 0:
                raise re.error("missing >, unterminated name", template, position)
            name = template[position + 3:close]
            if name.isdigit() and name.isascii():
                group(int(name), position + 3)
            elif name.isidentifier():
                if name not in dict(names):
                    raise IndexError(f"unknown group name {name!r}")
                group(dict(names)[name], position + 3)
            else:
                raise re.error(f"bad character in group name '{name}'", template, position)
            position = close + 1
        elif after == "0":
            digits = template[position + 1:position + 4]
            octal = len(digits) - len(digits.lstrip(_OCTAL))
            literal.append(chr(int(digits[:octal], 8)))
            position += 1 + octal
        elif after.isdigit() and after.isascii():
            digits = template[position + 1:position + 4]
            if len(digits) == 3 and all(d in _OCTAL for d in digits):
                if int(digits, 8) > 0o377:
                    raise re.error(f"octal escape value \\{digits} outside of range 0-0o377", template, position)
                literal.append(chr(int(digits, 8)))
                position += 4
            else:
                number = digits[:2] if digits[1:2].isdigit() and digits[1:2].isascii() else digits[:1]
                group(int(number), position + 1)
                position += 1 + len(number)
        elif after in _ESCAPES:
            literal.append(_ESCAPES[after])
            position += 2
        elif after.isascii() and after.isalpha():
            raise re.error(f"bad escape \\{after}", template, position)
        else:
            literal.append(template[position:position + 2])
            position += 2
    parts.append("".join(literal))

    def expand(found: Match) -> str:
        return "".join(part if type(part) is str else (found.group(part) or "") for part in parts)
    return expand


@lru_cache(maxsize=512)
def compile_pattern(pattern: str, ignore_case: bool = False, multiline: bool = False) -> Pattern:
    """The RE2 pattern for ``pattern`` (cached), or :class:`UnsupportedPattern`."""
    if not isinstance(pattern, str):
        raise TypeError(f"a regular expression must be a string, not {type(pattern).__name__}")
    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_PATTERN_MEMORY
    options.case_sensitive = not ignore_case
    try:
        regexp = re2.compile("(?m)" + pattern if multiline else pattern, options)
    except re2.error as exc:
        raise UnsupportedPattern(pattern, _reason(exc)) from None
    except UnicodeEncodeError:
        raise UnsupportedPattern(pattern, "it holds a lone surrogate") from None
    return Pattern(pattern, regexp)


def jsonata_engine(pattern: str, flags: Any) -> Pattern:
    """The regex engine for jsonata-python (``Jsonata(text, jsonata_engine)``)."""
    return compile_pattern(pattern, bool(flags.case_insensitive), bool(flags.multiline))


def _search(value: Any, pattern: Any) -> bool:
    """jsonpath-ng's ``=~``: whether a string value holds a match for the pattern."""
    return isinstance(value, str) and compile_pattern(pattern).search(value) is not None


@cache
def install_jsonpath() -> None:
    """Make jsonpath-ng's ``=~`` search with RE2 (it reads the operator from this map every time).

    Done once, before the first JSONPath filter is parsed; later calls do nothing."""
    from jsonpath_ng.ext import filter as jsonpath_filter

    jsonpath_filter.OPERATOR_MAP["=~"] = _search


class _DateTimeRe:
    """What jsonata-python's date-time parsing reads of ``re``, on RE2: ``$toMillis(text, picture)`` builds
    a regex from the picture (its literal text unescaped), so a picture is a pattern too."""

    IGNORECASE = re.IGNORECASE

    @staticmethod
    def compile(pattern: str, flags: int = 0) -> Pattern:
        return compile_pattern(pattern, bool(flags & re.IGNORECASE))

    @staticmethod
    def sub(pattern: Any, replacement: Any, text: str, count: int = 0) -> str:
        compiled = pattern if isinstance(pattern, Pattern) else compile_pattern(pattern)
        return compiled.sub(replacement, text, count)

    @staticmethod
    def split(pattern: Any, text: str, maxsplit: int = 0) -> list:
        compiled = pattern if isinstance(pattern, Pattern) else compile_pattern(pattern)
        return compiled.split(text, maxsplit)


@cache
def install_jsonata() -> None:
    """Make jsonata-python's date-time parsing compile its regexes with RE2 (its module's ``re`` is
    :class:`_DateTimeRe`); regex literals get :func:`jsonata_engine` where each expression is parsed.

    Done once, when the expressions module is imported; later calls do nothing."""
    from jsonata import datetimeutils

    datetimeutils.re = _DateTimeRe


def bind_path(expression: Any) -> None:
    """Make a parsed jsonpath-ng expression search with RE2: its ``=~`` patterns are checked (the
    operator itself is :func:`install_jsonpath`'s), and its `` `sub(/pattern/, replacement)` ``
    operators get RE2 patterns in place of the ``re`` ones jsonpath-ng compiled.
    :class:`UnsupportedPattern` (or TypeError, for a number after ``=~``) for a pattern RE2 cannot run."""
    from jsonpath_ng import JSONPath
    from jsonpath_ng.ext.filter import Expression
    from jsonpath_ng.ext.string import Sub

    pending = [expression]
    while pending:
        node = pending.pop()
        if isinstance(node, Expression) and node.op == "=~":
            compile_pattern(node.value)
        elif isinstance(node, Sub):
            node.regex = compile_pattern(node.expr)
        for value in vars(node).values() if hasattr(node, "__dict__") else ():
            items = value if isinstance(value, (list, tuple)) else (value,)
            pending.extend(item for item in items if isinstance(item, JSONPath))
