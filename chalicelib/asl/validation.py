"""Validate a definition before it runs: statelint, plus what statelint lacks.

`statelint <https://pypi.org/project/statelint/>`_ ports AWS's own ASL
validator. Version 3.1 predates some of what AWS accepts today (variables,
some JSONata placements, newer Map fields), so a few of its problems are
filtered by narrow, named rules below. Everything those rules let through is
then checked by this interpreter's own compilers (paths, intrinsics, Choice
rules, payload templates), which is also the check statelint lacks: every
expression in the definition must compile.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from statelint.config import Config
from statelint.linter import Linter
from statelint.problem import ProblemType

from .choice import OPERATORS
from .processing import (
    JSONATA,
    JSONATA_CATCH_FIELDS,
    JSONATA_FIELDS,
    JSONATA_RULE_FIELDS,
    JSONPATH,
    JSONPATH_CATCH_FIELDS,
    JSONPATH_FIELDS,
    JSONPATH_RULE_FIELDS,
)

#: AWS takes integers where statelint wants floats (BackoffRate: 2).
_CONFIG = Config(ignored_problem_types={ProblemType.FLOAT})
#: Fields that belong to one query language (in states, Choice Rules and Catchers).
_LANGUAGE_FIELDS = frozenset({*JSONPATH_FIELDS, *JSONATA_FIELDS, *JSONPATH_RULE_FIELDS, *JSONATA_RULE_FIELDS,
                              *JSONPATH_CATCH_FIELDS, *JSONATA_CATCH_FIELDS, *OPERATORS})


@dataclass(frozen=True)
class Problem:
    state: str | None
    field: str | None
    location: str
    message: str

    def to_json(self) -> dict:
        return {"state": self.state, "field": self.field, "location": self.location, "message": self.message}


# -- statelint problems AWS does not report ------------------------------------------------

def _assign_field(problem: str) -> bool:
    """Variables (late 2024): ``Assign`` on any state and on Choice rules."""
    return problem.startswith('Field "Assign" not allowed in')


def _expression_in_typed_field(problem: str) -> bool:
    """JSONata ``{% ... %}`` in numeric, integer, boolean or timestamp fields."""
    return bool(re.search(r' is "\{%.*%\}" but should be ', problem))


def _variable_or_context_path(problem: str) -> bool:
    """``$variable`` and ``$$.context`` paths where statelint wants a plain JSONPath.

    Their syntax is checked by this project's own path compiler afterwards.
    """
    return bool(re.search(r' is "\$\$?[A-Za-z_.\[]', problem)) and (
        "should be a JSONPath" in problem or "should be a Reference Path" in problem)


def _dynamic_parameter(problem: str) -> bool:
    """``.$`` values statelint's pattern misses (variables, regex filters, escapes); compiled below."""
    return " is not a JSONPath or intrinsic function expression" in problem


def _newer_map_fields(problem: str) -> bool:
    """``Label`` on Map and ``ProcessorConfig`` in the legacy ``Iterator``."""
    return bool(re.match(r'Field "(Label|ProcessorConfig)" not allowed in', problem))


def _fractional_percentage(problem: str) -> bool:
    """``ToleratedFailurePercentage`` is a number from 0 to 100, not only an integer."""
    return ".ToleratedFailurePercentage is " in problem and problem.endswith("should be an Integer")


def _literal_condition(problem: str) -> bool:
    """A JSONata Choice ``Condition`` may be a literal boolean."""
    return ".Condition is " in problem and problem.endswith("should be a String")


def _query_language_field(problem: str) -> bool:
    """A field of the other query language: checked by the compiler with AWS's own message.

    statelint takes a nested state's language from the enclosing Map or
    Parallel; AWS (and the compiler) from the state machine.
    """
    match = re.match(r'Field "([^"]+)" not allowed in ', problem)
    return bool(match) and match.group(1) in _LANGUAGE_FIELDS


def _jsonata_condition(problem: str) -> bool:
    """A JSONata Choice Rule without ``Condition``: the compiler names the JSONPath fields it has instead."""
    return problem.endswith('does not have required field "Condition"')


def _jsonata_wait(problem: str) -> bool:
    """A JSONata Wait without Seconds or Timestamp: the compiler names the JSONPath fields it has instead."""
    return problem.endswith('does not have required field from ["Seconds", "Timestamp"]')


def _item_reader_config(problem: str) -> bool:
    """Newer ``ItemReader.ReaderConfig`` fields, and ``MaxItems`` 0 (statelint says floor 0, then refuses 0)."""
    return ".ItemReader.ReaderConfig" in problem and (
        bool(re.match(r'Field "(CSVHeaderLocation|CSVHeaders|CSVDelimiter|InputType)" not allowed', problem))
        or problem.endswith("is 0 but allowed floor is 0"))


ACCEPTED_BY_AWS: list[Callable[[str], bool]] = [
    _item_reader_config,
    _query_language_field,
    _jsonata_condition,
    _jsonata_wait,
    _assign_field,
    _expression_in_typed_field,
    _variable_or_context_path,
    _dynamic_parameter,
    _newer_map_fields,
    _fractional_percentage,
    _literal_condition,
]


# -- turning messages into problems ---------------------------------------------------------

_LOCATION = re.compile(r"(State Machine(?:\.[A-Za-z0-9_\[\]]+|\.States\.[^ \"]+)*)")


def _problem(message: str) -> Problem:
    location = _location(message)
    return Problem(_state_of(location), _field_of(message, location), location, message)


def _location(message: str) -> str:
    found = re.findall(r'(State Machine[^ "]*)', message)
    return max(found, key=len) if found else "State Machine"


def _state_of(location: str) -> str | None:
    parts = location.split(".States.")
    if len(parts) < 2:  # "No transition found to state State Machine.X" names the state directly
        rest = location[len("State Machine."):] if location.startswith("State Machine.") else ""
        return rest or None
    return re.split(r"[.\[]", parts[-1])[0] or None


def _field_of(message: str, location: str) -> str | None:
    quoted = re.match(r'(?:Field|No) "([^"]+)"', message)
    if quoted:
        return quoted.group(1)
    if ".States." not in location:
        return None
    tail = location.split(".States.")[-1]
    pieces = tail.split(".")
    return pieces[-1] if len(pieces) > 1 else None


# -- the compile check ----------------------------------------------------------------------

def _compile_problems(states: Any, where: str, language: str) -> list[Problem]:
    """Compile each state on its own so a problem names its (innermost) state.

    ``language`` is the state machine's query language, which nested states inherit.
    """
    from .states import STATE_TYPES

    problems: list[Problem] = []
    if not isinstance(states, dict):
        return problems
    for name, spec in states.items():
        if not isinstance(spec, dict):
            continue
        location = f"{where}.States.{name}"
        for index, branch in enumerate(spec.get("Branches") or []):
            if isinstance(branch, dict):
                problems += _compile_problems(branch.get("States"), f"{location}.Branches[{index}]", language)
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(spec.get(key), dict):
                problems += _compile_problems(spec[key].get("States"), f"{location}.{key}", language)
        if problems:
            continue
        cls = STATE_TYPES.get(spec.get("Type"))
        if cls is None:
            continue  # statelint reports unknown types
        try:
            cls(name, spec, language)
        except KeyError as exc:
            field = exc.args[0] if exc.args else "?"
            problems.append(Problem(name, field, location, f"{location}: the required field '{field}' is missing"))
        except (ValueError, TypeError) as exc:
            problems.append(Problem(name, None, location, f"{location}: {exc}"))
    return problems


def validate(definition: dict | str) -> list[Problem]:
    """The problems of a definition (empty when it is valid)."""
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except ValueError as exc:
            return [Problem(None, None, "State Machine", f"The definition is not valid JSON: {exc}")]
    if not isinstance(definition, dict):
        return [Problem(None, None, "State Machine", "The definition must be a JSON object.")]
    messages = [m for m in Linter.validate(definition, _CONFIG)
                if not any(rule(m) for rule in ACCEPTED_BY_AWS)]
    problems = [_problem(m) for m in messages]
    if not problems:
        language = definition.get("QueryLanguage", JSONPATH)
        if language not in (JSONPATH, JSONATA):
            return [Problem(None, "QueryLanguage", "State Machine",
                            f"'QueryLanguage' must be 'JSONPath' or 'JSONata', not {language!r}")]
        problems = _compile_problems(definition.get("States"), "State Machine", language)
    return problems
