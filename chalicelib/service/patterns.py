"""EventBridge event patterns: which events a rule or a waiting task takes.

A pattern is an object whose keys name fields of the event. A key's value is
either an object (a pattern for the field's object) or a list of matchers, any
one of which may match the field's value; when the value is a list, any of its
elements may match. Matchers are as in EventBridge's content filtering:

* a string, number or ``null``: that exact value (numbers compare as numbers);
* ``{"prefix": "ab"}``, ``{"suffix": ".png"}`` (each may hold
  ``{"equals-ignore-case": "ab"}`` instead of the text);
* ``{"anything-but": value | [values] | {"prefix": ...} | {"suffix": ...} |
  {"equals-ignore-case": ...} | {"wildcard": ...}}`` (each of the four also with a list): a present
  value that is none of these;
* ``{"numeric": [">", 0, "<=", 5]}`` (operators ``=``, ``<``, ``<=``, ``>``, ``>=``);
* ``{"exists": true}`` / ``{"exists": false}``: the field is (not) there, as a leaf;
* ``{"cidr": "10.0.0.0/24"}``: an IP address in that network;
* ``{"equals-ignore-case": "Ab"}``; ``{"wildcard": "dir/*.png"}`` (``\\*`` a literal star);
* ``"$or": [pattern, ...]`` at any level: any of the patterns, together with the keys beside it.

Every key of a pattern must match (and). No package on PyPI keeps this
language up to date for Python (``event-ruler`` 0.3.0, of 2023, is a stub
around AWS's Java library), so it is written here; the tests follow
EventBridge's documented examples. Patterns are checked once (``check``) and
matching uses Python's own comparisons only (no regexes), so it is linear in
the size of the pattern and the event.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from ..asl.wildcards import wildcard_matcher

__all__ = ["InvalidPattern", "check", "matches"]

_MISSING = object()
_NUMERIC = {"=": lambda a, b: a == b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
_TEXT_MATCHERS = ("prefix", "suffix", "equals-ignore-case", "wildcard")


class InvalidPattern(ValueError):
    """A pattern EventBridge would refuse; the message says where."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check(pattern: Any, where: str = "pattern") -> None:
    """Raise :class:`InvalidPattern` unless ``pattern`` is a well-formed event pattern."""
    if not isinstance(pattern, dict) or not pattern:
        raise InvalidPattern(f"{where} must be a non-empty object")
    for key, value in pattern.items():
        at = f"{where}.{key}"
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise InvalidPattern(f"{at} must be a list of at least two patterns")
            for index, alternative in enumerate(value):
                check(alternative, f"{at}[{index}]")
        elif isinstance(value, dict):
            check(value, at)
        elif isinstance(value, list):
            if not value:
                raise InvalidPattern(f"{at} must not be an empty list")
            for matcher in value:
                _check_matcher(matcher, at)
        else:
            raise InvalidPattern(f"{at} must be an object or a list of matchers")


def _check_text(value: Any, at: str, name: str, ignore_case: bool = True) -> None:
    if isinstance(value, dict) and ignore_case and set(value) == {"equals-ignore-case"}:
        value = value["equals-ignore-case"]
    if not isinstance(value, str):
        raise InvalidPattern(f"{at}: {name} takes a string")


def _check_matcher(matcher: Any, at: str) -> None:
    if matcher is None or isinstance(matcher, (str, bool)) or _number(matcher):
        return
    if not isinstance(matcher, dict) or len(matcher) != 1:
        raise InvalidPattern(f"{at}: a matcher is a value or an object with one operator")
    (name, value), = matcher.items()
    if name in ("prefix", "suffix"):
        _check_text(value, at, name)
    elif name in ("equals-ignore-case", "wildcard"):
        _check_text(value, at, name, ignore_case=False)
    elif name == "exists":
        if not isinstance(value, bool):
            raise InvalidPattern(f"{at}: exists takes true or false")
    elif name == "cidr":
        try:
            ipaddress.ip_network(value, strict=False)
        except (TypeError, ValueError):
            raise InvalidPattern(f"{at}: cidr takes an IP network such as 10.0.0.0/24") from None
    elif name == "numeric":
        if not isinstance(value, list) or not value or len(value) % 2 or len(value) > 4:
            raise InvalidPattern(f"{at}: numeric takes one or two (operator, number) pairs")
        for operator, number in zip(value[::2], value[1::2]):
            if operator not in _NUMERIC or not _number(number):
                raise InvalidPattern(f"{at}: numeric operators are =, <, <=, >, >= followed by a number")
    elif name == "anything-but":
        if isinstance(value, dict):
            if len(value) != 1 or next(iter(value)) not in _TEXT_MATCHERS:
                raise InvalidPattern(f"{at}: anything-but takes a value, a list of values, or one of "
                                     + ", ".join(_TEXT_MATCHERS))
            (inner, texts), = value.items()
            for text in texts if isinstance(texts, list) and texts else [texts]:
                _check_text(text, at, inner, ignore_case=inner in ("prefix", "suffix"))
        elif isinstance(value, list):
            if not value or not all(isinstance(v, str) or _number(v) for v in value):
                raise InvalidPattern(f"{at}: anything-but takes a non-empty list of strings or numbers")
        elif not (isinstance(value, str) or _number(value)):
            raise InvalidPattern(f"{at}: anything-but takes a string, a number or a list of them")
    else:
        raise InvalidPattern(f"{at}: unknown operator {name!r}")


def matches(pattern: dict, event: Any) -> bool:
    """Whether ``event`` (a JSON object) matches ``pattern`` (checked with :func:`check`)."""
    if not isinstance(event, dict):
        return False
    for key, expected in pattern.items():
        if key == "$or":
            if not any(matches(alternative, event) for alternative in expected):
                return False
            continue
        value = event.get(key, _MISSING)
        if isinstance(expected, dict):
            if isinstance(value, list):
                if not any(matches(expected, item) for item in value):
                    return False
            elif not matches(expected, value):
                return False
        elif not _leaf_matches(expected, value):
            return False
    return True


def _leaf_matches(matchers: list, value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    for matcher in matchers:
        if isinstance(matcher, dict) and "exists" in matcher:
            present = value is not _MISSING and not isinstance(value, dict)
            if present == matcher["exists"]:
                return True
            continue
        if value is _MISSING:
            continue
        if any(_one(matcher, item) for item in values):
            return True
    return False


def _text_of(value: Any) -> tuple[str, bool]:
    """A prefix/suffix operand: (text, ignore case)."""
    if isinstance(value, dict):
        return value["equals-ignore-case"], True
    return value, False


def _one(matcher: Any, value: Any) -> bool:
    if not isinstance(matcher, dict):
        return _equal(matcher, value)
    (name, operand), = matcher.items()
    if name == "numeric":
        if not _number(value):
            return False
        return all(_NUMERIC[op](value, number) for op, number in zip(operand[::2], operand[1::2]))
    if name == "cidr":
        try:
            return ipaddress.ip_address(value) in ipaddress.ip_network(operand, strict=False)
        except (TypeError, ValueError):
            return False
    if name == "anything-but":
        if isinstance(operand, dict):
            if not isinstance(value, str):
                return False
            (inner, texts), = operand.items()
            return not any(_one({inner: text}, value) for text in (texts if isinstance(texts, list) else [texts]))
        excluded = operand if isinstance(operand, list) else [operand]
        return value is not None and not any(_equal(item, value) for item in excluded)
    if not isinstance(value, str):
        return False
    if name in ("prefix", "suffix"):
        text, ignore_case = _text_of(operand)
        subject = value.casefold() if ignore_case else value
        text = text.casefold() if ignore_case else text
        return subject.startswith(text) if name == "prefix" else subject.endswith(text)
    if name == "equals-ignore-case":
        return value.casefold() == operand.casefold()
    if name == "wildcard":
        return wildcard_matcher(operand)(value)
    return False


def _equal(expected: Any, value: Any) -> bool:
    if _number(expected) or _number(value):
        return _number(expected) and _number(value) and expected == value
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool) and expected == value
    return expected == value and not isinstance(value, (dict, list))
