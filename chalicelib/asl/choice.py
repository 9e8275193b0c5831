"""Choice Rules (JSONPath query language), compiled once, evaluated many times.

``compile_rule`` checks a rule and turns it into a :class:`Rule` whose
``matches(data, env)`` says whether it holds. All paths, constants and
StringMatches patterns are prepared at compile time, so ``matches`` only reads
values and compares them.

As in Step Functions, a value of the wrong type for an operator makes the
comparison false (booleans are not numbers), but a ``Variable`` or ``...Path``
that names nothing fails the state with ``States.Runtime`` (except for
``IsPresent``, whose whole point is to ask).
"""
from __future__ import annotations

import operator
from typing import Any, Callable

from . import errors
from .errors import StatesError, json_type
from .paths import Env, Path, PathNotFound, PathSyntaxError, compile_path
from .wildcards import wildcard_matcher
from .timestamps import parse_timestamp, timestamp_nanos

__all__ = ["OPERATORS", "ChoiceSyntaxError", "Rule", "compile_rule", "parse_timestamp"]


class ChoiceSyntaxError(ValueError):
    """A Choice Rule that is not valid ASL."""


class Rule:
    """A compiled Choice Rule."""

    __slots__ = ()

    def matches(self, data: Any, env: Env | None) -> bool:
        raise NotImplementedError


# --- operand kinds: each maps a JSON value to a comparable key, or None -------

def _string_key(value: Any) -> str | None:
    return value if type(value) is str else None


def _numeric_key(value: Any) -> int | float | None:
    return value if type(value) is int or type(value) is float else None


def _boolean_key(value: Any) -> bool | None:
    return value if type(value) is bool else None


def _timestamp_key(value: Any) -> int | None:
    return timestamp_nanos(value) if type(value) is str else None


_KINDS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "String": (_string_key, "a string"),
    "Numeric": (_numeric_key, "a number"),
    "Boolean": (_boolean_key, "a boolean"),
    "Timestamp": (_timestamp_key, "an RFC3339 timestamp string"),
}
_COMPARATORS = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "GreaterThan": operator.gt,
    "LessThanEquals": operator.le,
    "GreaterThanEquals": operator.ge,
}

#: Comparison operator name -> (key function, comparator, what the operand must be).
_COMPARISONS: dict[str, tuple[Callable[[Any], Any], Callable[[Any, Any], bool], str]] = {
    kind + name: (key, compare, described)
    for kind, (key, described) in _KINDS.items()
    for name, compare in _COMPARATORS.items()
    if kind != "Boolean" or name == "Equals"
}

_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda value: value is None,
    "IsNumeric": lambda value: type(value) is int or type(value) is float,
    "IsString": lambda value: type(value) is str,
    "IsBoolean": lambda value: type(value) is bool,
    "IsTimestamp": lambda value: type(value) is str and timestamp_nanos(value) is not None,
}

_OPERATORS = frozenset(
    [*_COMPARISONS, *(name + "Path" for name in _COMPARISONS), *_TYPE_TESTS,
     "IsPresent", "StringMatches"]
)
#: Every comparison operator field of a Choice Rule.
OPERATORS = _OPERATORS
_COMBINATORS = ("And", "Or", "Not")
#: Fields of a top-level rule that the Choice state itself handles.
_STATE_FIELDS = frozenset({"Next", "Assign", "Output", "Comment"})


# --- rules --------------------------------------------------------------------

class _Compare(Rule):
    """``Variable`` against a constant: ``test(value)``."""

    __slots__ = ("variable", "test")

    def __init__(self, variable: Path, test: Callable[[Any], bool]):
        self.variable = variable
        self.test = test

    def matches(self, data: Any, env: Env | None) -> bool:
        return self.test(_read(self.variable, data, env))


class _ComparePath(Rule):
    """``Variable`` against the value another path names."""

    __slots__ = ("variable", "operand", "key", "compare")

    def __init__(self, variable: Path, operand: Path, key: Callable, compare: Callable):
        self.variable = variable
        self.operand = operand
        self.key = key
        self.compare = compare

    def matches(self, data: Any, env: Env | None) -> bool:
        left = self.key(_read(self.variable, data, env))
        right = self.key(_read(self.operand, data, env))
        if left is None or right is None:
            return False
        return self.compare(left, right)


class _IsPresent(Rule):
    __slots__ = ("variable", "expected")

    def __init__(self, variable: Path, expected: bool):
        self.variable = variable
        self.expected = expected

    def matches(self, data: Any, env: Env | None) -> bool:
        try:
            self.variable.get(data, env)
        except PathNotFound:
            return not self.expected
        return self.expected


class _And(Rule):
    __slots__ = ("rules",)

    def __init__(self, rules: tuple[Rule, ...]):
        self.rules = rules

    def matches(self, data: Any, env: Env | None) -> bool:
        for rule in self.rules:
            if not rule.matches(data, env):
                return False
        return True


class _Or(Rule):
    __slots__ = ("rules",)

    def __init__(self, rules: tuple[Rule, ...]):
        self.rules = rules

    def matches(self, data: Any, env: Env | None) -> bool:
        for rule in self.rules:
            if rule.matches(data, env):
                return True
        return False


class _Not(Rule):
    __slots__ = ("rule",)

    def __init__(self, rule: Rule):
        self.rule = rule

    def matches(self, data: Any, env: Env | None) -> bool:
        return not self.rule.matches(data, env)


def _read(path: Path, data: Any, env: Env | None) -> Any:
    try:
        return path.get(data, env)
    except PathNotFound:
        raise StatesError(errors.RUNTIME, _missing_cause(path, data, env)) from None


def _missing_cause(path: Path, data: Any, env: Env | None) -> str:
    """The cause Step Functions gives for a path naming nothing.

    A missing object property before the last step is reported as "Missing
    property in path $['a']"; anything else as "No results for path: $['a']['b']".
    """
    prefix = "$" if path.root == "input" else "$$" if path.root == "context" else f"${path.variable}"
    if path.keys is None:
        return f"Invalid path '{path.text}' : No results for path: {path.text}"
    walked = prefix
    if path.root == "input":
        value = data
    elif env is None:
        value = None
    else:
        value = env.context if path.root == "context" else env.variables.get(path.variable)
    last = len(path.keys) - 1
    for index, key in enumerate(path.keys):
        walked += f"['{key}']" if type(key) is str else f"[{key}]"
        if type(key) is str and type(value) is dict and key not in value and index < last:
            return f"Invalid path '{path.text}' : Missing property in path {walked}"
        if type(key) is str:
            value = value.get(key) if type(value) is dict else None
        else:
            value = value[key] if type(value) is list and key < len(value) else None
    return f"Invalid path '{path.text}' : No results for path: {walked}"


# --- compilation --------------------------------------------------------------

def compile_rule(rule: dict) -> Rule:
    """Compile a Choice Rule (top-level ``Next``/``Assign`` are ignored)."""
    return _compile(rule, nested=False)


def _compile(rule: Any, nested: bool) -> Rule:
    if not isinstance(rule, dict):
        raise ChoiceSyntaxError(f"a Choice Rule must be an object, not {_json_type(rule)}")
    if nested and "Next" in rule:
        raise ChoiceSyntaxError("field 'Next' is not allowed in a nested Choice Rule")
    unknown = [
        field for field in rule
        if field not in _OPERATORS and field not in _COMBINATORS
        and field != "Variable" and field not in _STATE_FIELDS
    ]
    if unknown:
        raise ChoiceSyntaxError(f"unknown field {unknown[0]!r} in a Choice Rule")
    combinators = [field for field in _COMBINATORS if field in rule]
    operators = [field for field in rule if field in _OPERATORS]
    if combinators:
        if len(combinators) > 1 or operators or "Variable" in rule:
            others = [*combinators[1:], *operators, *(["Variable"] if "Variable" in rule else [])]
            raise ChoiceSyntaxError(
                f"field {combinators[0]!r} cannot be combined with {others[0]!r} in a Choice Rule"
            )
        return _compile_combinator(combinators[0], rule[combinators[0]])
    if not operators:
        raise ChoiceSyntaxError("a Choice Rule needs a comparison operator or And/Or/Not")
    if len(operators) > 1:
        raise ChoiceSyntaxError(
            f"a Choice Rule has two comparison operators: {operators[0]!r} and {operators[1]!r}"
        )
    if "Variable" not in rule:
        raise ChoiceSyntaxError(f"field 'Variable' is required with {operators[0]!r}")
    variable = _path(rule["Variable"], "Variable")
    return _compile_operator(operators[0], rule[operators[0]], variable)


def _compile_combinator(field: str, operand: Any) -> Rule:
    if field == "Not":
        if not isinstance(operand, dict):
            raise ChoiceSyntaxError(f"field 'Not' must be an object, not {_json_type(operand)}")
        return _Not(_compile(operand, nested=True))
    if not isinstance(operand, list) or not operand:
        raise ChoiceSyntaxError(f"field {field!r} must be a non-empty array of Choice Rules")
    rules = tuple(_compile(child, nested=True) for child in operand)
    return _And(rules) if field == "And" else _Or(rules)


def _compile_operator(field: str, operand: Any, variable: Path) -> Rule:
    if field == "IsPresent":
        return _IsPresent(variable, _boolean_operand(field, operand))
    if field in _TYPE_TESTS:
        test, expected = _TYPE_TESTS[field], _boolean_operand(field, operand)
        return _Compare(variable, lambda value: test(value) is expected)
    if field == "StringMatches":
        if type(operand) is not str:
            raise ChoiceSyntaxError(f"field 'StringMatches' must be a string, not {_json_type(operand)}")
        matches = wildcard_matcher(operand)
        return _Compare(variable, lambda value: type(value) is str and matches(value))
    if field.endswith("Path"):
        key, compare, _ = _COMPARISONS[field[: -len("Path")]]
        return _ComparePath(variable, _path(operand, field), key, compare)
    key, compare, described = _COMPARISONS[field]
    constant = key(operand)
    if constant is None:
        raise ChoiceSyntaxError(f"field {field!r} must be {described}, not {operand!r}")

    def test(value: Any) -> bool:
        found = key(value)
        return found is not None and compare(found, constant)

    return _Compare(variable, test)


def _boolean_operand(field: str, operand: Any) -> bool:
    if type(operand) is not bool:
        raise ChoiceSyntaxError(f"field {field!r} must be a boolean, not {_json_type(operand)}")
    return operand


def _path(text: Any, field: str) -> Path:
    if not isinstance(text, str) or not text.startswith("$"):
        raise ChoiceSyntaxError(f"field {field!r} must be a path starting with '$', not {text!r}")
    try:
        return compile_path(text)
    except PathSyntaxError as exc:
        raise ChoiceSyntaxError(f"field {field!r} is not a valid path: {exc}") from None


def _json_type(value: Any) -> str:
    """``json_type`` with its article, for this module's messages ("an array"; "null" has none)."""
    kind = json_type(value)
    return kind if kind == "null" else ("an " if kind[0] in "ao" else "a ") + kind
