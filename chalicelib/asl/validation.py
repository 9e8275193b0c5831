"""Validate a definition before it runs: statelint, plus what statelint lacks.

`statelint <https://pypi.org/project/statelint/>`_ ports AWS's own ASL
validator. Version 3.1 predates some of what AWS accepts today (variables,
JSONata in typed fields, newer Map fields), so the few problems it reports for
definitions AWS accepts are filtered by the narrow, named rules of
``ACCEPTED_BY_AWS``. A few others are true problems that this interpreter's
compiler reports in AWS's own words (``LEFT_TO_THE_COMPILER``).

The checks statelint lacks are in ``_state_problems``: every path and ``.$``
value compiles, ResultPath is a reference path, and the state compiles as the
interpreter will compile it (JSONata syntax, variable names, query-language
fields, ...). ``_unreachable`` completes statelint's reachability check.

It is long because it is one list of rules: each check is a few lines, and the
list reads best as a whole, beside the statelint filters it completes.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from statelint.config import Config
from statelint.linter import Linter

from .expressions import is_expression
from .limits import MAX_DEFINITION_DEPTH, MAX_STATE_NAME_LENGTH, MAX_STATE_NESTING, definition_depths
from .paths import PathSyntaxError, compile_path, compile_reference_path

__all__ = ["ACCEPTED_BY_AWS", "LEFT_TO_THE_COMPILER", "Problem", "size_problems", "validate"]

JSONPATH = "JSONPath"
JSONATA = "JSONata"
ROOT = "State Machine"  # how statelint names the top of a definition
PAYLOAD_TEMPLATES = ("Parameters", "ResultSelector", "ItemSelector")


@dataclass(frozen=True)
class Problem:
    """One problem: the (innermost) state and field it is in, where, and what."""

    state: str | None
    field: str | None
    location: str
    message: str

    def to_json(self) -> dict:
        return {"state": self.state, "field": self.field, "location": self.location, "message": self.message}


# -- where a statelint message points -----------------------------------------------------------

@dataclass
class _Place:
    """What a location names in the definition."""

    state: str | None = None
    state_location: str | None = None  # the location text up to the state's name
    spec: dict | None = None  # the state itself
    field: str | None = None  # the last field named after the state
    language: str = JSONPATH  # the state's query language, as AWS sees it
    node: Any = None  # what the location names, as far as the definition has it
    reached: str = ROOT  # the part of the location that names ``node``


def _follow(definition: dict, location: str) -> _Place:
    """Follow ``location`` (``State Machine.States.P.Branches[0].States.Q.Retry[0]``) through the definition.

    Keys are matched against the definition, longest first, so state names
    with dots or spaces resolve to the right state.
    """
    machine_language = definition.get("QueryLanguage", JSONPATH)
    place = _Place(language=machine_language)
    node: Any = definition
    done = ROOT
    text = location[len(ROOT):] if location.startswith(ROOT) else ""
    previous_key = None
    while text:
        if isinstance(node, list):
            match = re.match(r"\[(\d+)\]", text)
            if not match or int(match.group(1)) >= len(node):
                break
            node, step = node[int(match.group(1))], match.group(0)
        elif isinstance(node, dict) and text.startswith("."):
            key = _longest_key(node, text[1:])
            states = node.get("States")
            if key is None and isinstance(states, dict) and text[1:] in states:
                text = ".States" + text  # "No transition found to state State Machine.Name"
                continue
            if key is None:
                break
            node, step = node[key], "." + key
            if previous_key == "States" and isinstance(node, dict):
                language = node.get("QueryLanguage") or machine_language
                place = _Place(key, done + step, node, None, language)
            else:
                place.field = key
            previous_key = key
        else:
            break
        done, text = done + step, text[len(step):]
    place.node, place.reached = node, done
    return place


def _longest_key(node: dict, text: str) -> str | None:
    keys = [k for k in node if isinstance(k, str) and text.startswith(k) and text[len(k):len(k) + 1] in ("", ".", "[")]
    return max(keys, key=len) if keys else None


_LOCATIONS = [re.compile(pattern) for pattern in (
    r'^Field ".*" not allowed in (State Machine.*)$',
    r'^Field ".*" of \w+ at "(State Machine.*)" is not a JSONPath',
    r'^No state found named ".*", referenced at (State Machine.*)$',
    r"^No transition found to state (State Machine.*)$",
    r'^State ".*", defined at (State Machine.*), is also defined at ',
    r" not found in States field at (State Machine.*)$",
    r"^No terminal state found in machine at (State Machine.*)$",
    r"^(State Machine.*?)(?: is |: States\.ALL| has forbidden field| does not have required field"
    r"| may have only one of| should be non-null)",
)]
_NAMED_FIELD = re.compile(r'^Field "(.*)" not allowed in |has forbidden field "(.*)"$'
                          r'|does not have required field "(.*)"$|^Field ".*" of (\w+) at ')


def _location(message: str) -> str:
    for pattern in _LOCATIONS:
        match = pattern.search(message)
        if match:
            return match.group(1)
    return ROOT


def _from_statelint(message: str, definition: dict) -> Problem:
    location = _location(message)
    place = _follow(definition, location)
    named = _NAMED_FIELD.search(message)
    field = next((g for g in named.groups() if g), None) if named else place.field
    duplicate = re.match(r'^State "(.*)", defined at ', message)
    state = duplicate.group(1) if duplicate else place.state
    return Problem(state, field, location, message)


# -- statelint problems for what AWS accepts -----------------------------------------------------
#
# Each rule gets the problem and the definition, and says whether AWS accepts
# what statelint complains about.

_ASSIGN_HOLDER = re.compile(r"\.(Choices|Catch)\[\d+\]$")


def _assign_where_aws_has_it(problem: Problem, definition: dict) -> bool:
    """Variables (late 2024): ``Assign`` on Pass, Task, Choice, Wait, Parallel and Map states,
    on Choice rules and on Catchers, in both query languages."""
    from .processing import ASSIGNING_STATES

    match = re.match(r'^Field "Assign" not allowed in (.*)$', problem.message)
    if not match:
        return False
    place = _follow(definition, match.group(1))
    if _ASSIGN_HOLDER.search(match.group(1)):
        return place.state_location is not None
    return match.group(1) == place.state_location and place.spec.get("Type") in ASSIGNING_STATES


def _jsonata_in_typed_field(problem: Problem, definition: dict) -> bool:
    """JSONata: a ``{% ... %}`` expression in a number or timestamp field (MaxConcurrency,
    ToleratedFailure*, Wait Seconds/Timestamp, ...); AWS checks its value at run time."""
    match = re.search(r" but should be (an Integer|numeric|a Float|an RFC3339 timestamp)$", problem.message)
    return bool(match) and _is_jsonata_expression_at(problem.location, definition)


def _jsonata_without_blanks(problem: Problem, definition: dict) -> bool:
    """JSONata: an expression with no blank inside its delimiters (``"{%$x%}"``) where statelint
    wants an expression (Map ``Items``, string ``Arguments``): its pattern requires the blanks, AWS
    does not. Whether a string is an expression is decided by ``expressions.is_expression``, as
    everywhere else; the compiler then checks the expression itself."""
    return problem.message.endswith(" but should be a JSONata") and _is_jsonata_expression_at(
        problem.location, definition)


def _is_jsonata_expression_at(location: str, definition: dict) -> bool:
    """Whether ``location`` names a ``{% ... %}`` expression in a JSONata state."""
    place = _follow(definition, location)
    return place.reached == location and place.language == JSONATA and is_expression(place.node)


def _literal_condition(problem: Problem, definition: dict) -> bool:
    """JSONata: a Choice rule's ``Condition`` may be a literal ``true`` or ``false``."""
    return bool(re.search(r"\.Choices\[\d+\]\.Condition is (true|false) but should be a String$", problem.message))


_PATH_PROBLEM = re.compile(r'^(State Machine.*?)\.(\w+) is "(.*)" but should be '
                           r"(a JSONPath|a Reference Path|a Reference Path or an Intrinsic Function)$", re.DOTALL)


def _path_the_compiler_accepts(problem: Problem, definition: dict) -> bool:
    """A path statelint's pattern refuses but AWS accepts: ``$variable`` references
    (ItemsPath, MaxConcurrencyPath, ...), context paths ``$$.`` (ErrorPath, CausePath),
    filters with regular expressions. This project's compiler checks them instead."""
    match = _PATH_PROBLEM.match(problem.message)
    if not match:
        return False
    _, field, value, expected = match.groups()
    if field == "ResultPath":
        return _compile_error(compile_reference_path, value) is None
    if expected.endswith("Intrinsic Function") and value.startswith("States."):
        return _dynamic_value_error(value) is None
    if _compile_error(compile_path, value) is not None:
        return False
    return expected == "a JSONPath" or compile_path(value).definite


_PAYLOAD_PROBLEM = re.compile(r'^Field "(.*)" of (\w+) at "(State Machine.*)" is not a JSONPath or intrinsic function '
                              r"expression$", re.DOTALL)


def _payload_value_the_compiler_accepts(problem: Problem, definition: dict) -> bool:
    """A ``.$`` value statelint's pattern refuses but AWS accepts: ``$variable`` references,
    regular-expression filters, escaped characters in intrinsic arguments. Compiled instead."""
    match = _PAYLOAD_PROBLEM.match(problem.message)
    if not match:
        return False
    key, template, at = match.groups()
    place = _follow(definition, at)  # the state, or its ItemReader or ItemBatcher
    if not isinstance(place.node, dict):
        return False
    for where, entry, value in _dynamic_entries(place.node.get(template), place.reached):
        if (where, entry) == (at, key):
            return _dynamic_value_error(value) is None
    return False


def _payload_value_the_compiler_refuses(problem: Problem, definition: dict) -> bool:
    """A ``.$`` value of the state's own template that the compiler refuses too: its message says
    why (an unsupported regex in a filter, a bad intrinsic argument), statelint's only that it is bad."""
    match = _PAYLOAD_PROBLEM.match(problem.message)
    if not match:
        return False
    place = _follow(definition, match.group(3))
    return place.state_location is not None and place.reached == place.state_location


def _newer_map_fields(problem: Problem, definition: dict) -> bool:
    """Map: ``Label`` (names a Distributed Map's child executions), and ``ProcessorConfig``
    in the older ``Iterator`` as in ``ItemProcessor``."""
    match = re.match(r'^Field "(Label|ProcessorConfig)" not allowed in (.*)$', problem.message)
    if not match:
        return False
    place = _follow(definition, match.group(2))
    if match.group(1) == "Label":
        return match.group(2) == place.state_location and place.spec.get("Type") == "Map"
    return match.group(2) == f"{place.state_location}.Iterator"


def _fractional_tolerated_failure_percentage(problem: Problem, definition: dict) -> bool:
    """Map: ``ToleratedFailurePercentage`` is a number from 0 to 100, not only an integer."""
    match = re.search(r"\.ToleratedFailurePercentage is (\d+\.\d+) but should be an Integer$", problem.message)
    return bool(match) and 0 <= float(match.group(1)) <= 100


def _integer_backoff_rate(problem: Problem, definition: dict) -> bool:
    """Retry: an integer ``BackoffRate`` such as 2 (statelint wants a float such as 2.0)."""
    return bool(re.search(r"\.BackoffRate is \d+ but should be a Float$", problem.message))


def _csv_reader_config(problem: Problem, definition: dict) -> bool:
    """Distributed Map: ``ItemReader.ReaderConfig`` fields for CSV and JSON files."""
    return bool(re.match(r'^Field "(InputType|CSVHeaderLocation|CSVHeaders|CSVDelimiter)" not allowed in '
                         r"State Machine.*\.ItemReader\.ReaderConfig$", problem.message))


def _zero_max_items(problem: Problem, definition: dict) -> bool:
    """Distributed Map: ``ReaderConfig.MaxItems`` 0 (read every item)."""
    return problem.message.endswith(".ItemReader.ReaderConfig.MaxItems is 0 but allowed floor is 0")


def _writer_config(problem: Problem, definition: dict) -> bool:
    """Distributed Map: ``ResultWriter.WriterConfig``, alone or with Resource and Parameters (the compiler
    checks its values)."""
    if re.match(r'^Field "WriterConfig" not allowed in State Machine.*\.ResultWriter$', problem.message):
        return True
    match = re.match(r'^(State Machine.*\.ResultWriter) does not have required field "(Resource|Parameters)"$',
                     problem.message)
    if not match:
        return False
    node = _follow(definition, match.group(1)).node
    return isinstance(node, dict) and "WriterConfig" in node and "Resource" not in node


ACCEPTED_BY_AWS: list[Callable[[Problem, dict], bool]] = [
    _assign_where_aws_has_it,
    _jsonata_in_typed_field,
    _jsonata_without_blanks,
    _literal_condition,
    _path_the_compiler_accepts,
    _payload_value_the_compiler_accepts,
    _newer_map_fields,
    _fractional_tolerated_failure_percentage,
    _integer_backoff_rate,
    _csv_reader_config,
    _zero_max_items,
    _writer_config,
]


# -- statelint problems the compiler reports in AWS's words --------------------------------------

def _query_language_field(problem: Problem, definition: dict) -> bool:
    """A field that belongs to one query language, or ``Assign`` where AWS refuses it.

    statelint takes a nested state's language from the enclosing Parallel or
    Map, AWS from the state or the state machine; the compiler follows AWS.
    """
    from .choice import OPERATORS
    from .processing import (JSONATA_CATCH_FIELDS, JSONATA_FIELDS, JSONATA_RULE_FIELDS, JSONPATH_CATCH_FIELDS,
                             JSONPATH_FIELDS, JSONPATH_RULE_FIELDS)

    fields = {*JSONPATH_FIELDS, *JSONATA_FIELDS, *JSONPATH_RULE_FIELDS, *JSONATA_RULE_FIELDS,
              *JSONPATH_CATCH_FIELDS, *JSONATA_CATCH_FIELDS, *OPERATORS, "Assign"}
    match = re.match(r'^Field "(.*)" not allowed in ', problem.message)
    return bool(match) and match.group(1) in fields


def _jsonata_required_field(problem: Problem, definition: dict) -> bool:
    """A JSONata Choice rule without ``Condition`` or Wait without Seconds/Timestamp:
    the compiler names the JSONPath fields given instead."""
    return problem.message.endswith(('does not have required field "Condition"',
                                     'does not have required field from ["Seconds", "Timestamp"]'))


LEFT_TO_THE_COMPILER: list[Callable[[Problem, dict], bool]] = [
    _query_language_field,
    _jsonata_required_field,
    _payload_value_the_compiler_refuses,
]


# -- the checks statelint lacks -------------------------------------------------------------------

def _compile_error(compile: Callable[[str], Any], value: Any) -> str | None:
    if not isinstance(value, str):
        return f"a path must be a string, not {type(value).__name__}"
    try:
        compile(value)
    except PathSyntaxError as exc:
        return str(exc)
    return None


def _dynamic_value_error(value: Any) -> str | None:
    """Why a ``.$`` value is neither a path nor an intrinsic function call (None if it is one)."""
    if isinstance(value, str) and value.startswith("States."):
        try:
            from .intrinsics import compile_intrinsic
        except ImportError:  # intrinsic functions unavailable: nothing to check them with
            return None
        try:
            compile_intrinsic(value)
        except ValueError as exc:
            return str(exc)
        return None
    return _compile_error(compile_path, value)


def _dynamic_entries(template: Any, at: str) -> Iterator[tuple[str, str, Any]]:
    """The ``(location, key, value)`` of every ``.$`` entry of a payload template, nested ones
    included; locations as statelint writes them (the state, then the keys inside the template)."""
    if isinstance(template, list):
        for index, item in enumerate(template):
            yield from _dynamic_entries(item, f"{at}[{index}]")
    elif isinstance(template, dict):
        for key, value in template.items():
            if key.endswith(".$"):
                yield at, key, value
            else:
                yield from _dynamic_entries(value, f"{at}.{key}")


def _state_problems(name: str, spec: dict, location: str, machine_language: str) -> list[Problem]:
    """A state's paths and ``.$`` values compile; then the whole state compiles."""
    from .states import STATE_TYPES

    problems = []
    if (spec.get("QueryLanguage") or machine_language) == JSONPATH:
        paths = [(f, compile_path, spec.get(f)) for f in ("InputPath", "OutputPath") if spec.get(f) is not None]
        if "ItemsPath" in spec:
            paths.append(("ItemsPath", compile_path, spec["ItemsPath"]))
        if spec.get("ResultPath") is not None:
            paths.append(("ResultPath", compile_reference_path, spec["ResultPath"]))
        for index, catcher in enumerate(spec.get("Catch") or ()):
            if isinstance(catcher, dict) and catcher.get("ResultPath") is not None:
                paths.append((f"Catch[{index}].ResultPath", compile_reference_path, catcher["ResultPath"]))
        for field, compile, value in paths:
            error = _compile_error(compile, value)
            if error:
                problems.append(Problem(name, field.rsplit(".", 1)[-1], f"{location}.{field}",
                                        f"{location}.{field}: {error}"))
        for template in PAYLOAD_TEMPLATES:
            for at, key, value in _dynamic_entries(spec.get(template), location):
                error = _dynamic_value_error(value)
                if error:
                    problems.append(Problem(name, template, at, f'Field "{key}" of {template} at "{at}" is not '
                                                                f"a valid path or intrinsic function: {error}"))
    if problems or spec.get("Type") not in STATE_TYPES:
        return problems  # statelint reports unknown types
    try:
        STATE_TYPES[spec["Type"]](name, spec, machine_language)
    except KeyError as exc:
        field = str(exc.args[0]) if exc.args else None
        return [Problem(name, field, location, f'{location} does not have required field "{field}"')]
    except Exception as exc:  # whatever the compiler refuses is a problem of the definition
        named = re.search(r"[Ff]ield '([^']+)'", str(exc))
        return [Problem(name, named.group(1) if named else None, location, f"{location}: {exc}")]
    return []


def _inside(location: str, prefix: str) -> bool:
    return location == prefix or location.startswith((prefix + ".", prefix + "["))


def _own_checks(container: dict, where: str, language: str, known: list[Problem],
                checked: set[str]) -> list[Problem]:
    """Check every state without a known problem, innermost first (a Parallel or Map compiles its
    branches, so it is checked only when they are fine). ``checked`` collects their locations."""
    problems: list[Problem] = []
    states = container.get("States")
    if not isinstance(states, dict):
        return problems
    for name, spec in states.items():
        if not isinstance(spec, dict):
            continue
        location = f"{where}.States.{name}"
        for index, branch in enumerate(spec.get("Branches") or ()):
            if isinstance(branch, dict):
                problems += _own_checks(branch, f"{location}.Branches[{index}]", language, known + problems, checked)
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(spec.get(key), dict):
                problems += _own_checks(spec[key], f"{location}.{key}", language, known + problems, checked)
        if len(name) > MAX_STATE_NAME_LENGTH:
            problems.append(Problem(name, None, location, (
                f"Invalid State name: State '{name}' exceeds the {MAX_STATE_NAME_LENGTH}-character limit "
                f"allowed by the service at {location}")))
        if any(_inside(p.location, location) for p in known + problems):
            continue
        checked.add(location)
        problems += _state_problems(name, spec, location, language)
    return problems


def _transitions(spec: dict) -> Iterator[Any]:
    yield spec.get("Next")
    yield spec.get("Default")
    for key in ("Choices", "Catch"):
        for item in spec.get(key) or ():
            if isinstance(item, dict):
                yield item.get("Next")


def _unreachable(container: dict, where: str) -> list[str]:
    """statelint's message for each state not reachable from StartAt, nested ones included.

    statelint counts a state as reached when any state names it, even one
    that is itself unreachable; AWS follows transitions from StartAt.
    """
    states = container.get("States")
    if not isinstance(states, dict):
        return []
    messages = []
    seen, todo = set(), [container.get("StartAt")]
    while todo:
        name = todo.pop()
        if isinstance(name, str) and name in states and name not in seen:
            seen.add(name)
            if isinstance(states[name], dict):
                todo.extend(_transitions(states[name]))
    for name, spec in states.items():
        if name not in seen:
            messages.append(f"No transition found to state {where}.{name}")
        if not isinstance(spec, dict):
            continue
        for index, branch in enumerate(spec.get("Branches") or ()):
            if isinstance(branch, dict):
                messages += _unreachable(branch, f"{where}.States.{name}.Branches[{index}]")
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(spec.get(key), dict):
                messages += _unreachable(spec[key], f"{where}.States.{name}.{key}")
    return messages


def size_problems(definition: Any) -> list[Problem]:
    """A definition nested too deeply to check or run (see ``limits``), checked without recursion."""
    deepest, nesting = definition_depths(definition)
    if deepest > MAX_DEFINITION_DEPTH:
        return [Problem(None, None, ROOT, f"The definition nests arrays and objects more than "
                                          f"{MAX_DEFINITION_DEPTH} levels deep.")]
    if nesting > MAX_STATE_NESTING:
        return [Problem(None, None, ROOT, f"The definition nests Parallel and Map states more than "
                                          f"{MAX_STATE_NESTING} levels deep.")]
    return []


def validate(definition: dict | str) -> list[Problem]:
    """The problems of a definition (an empty list when it is valid)."""
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except (ValueError, RecursionError) as exc:
            return [Problem(None, None, ROOT, f"The definition is not valid JSON: {exc}")]
    if not isinstance(definition, dict):
        return [Problem(None, None, ROOT, f"The definition must be a JSON object, not {type(definition).__name__}.")]
    too_deep = size_problems(definition)
    if too_deep:
        return too_deep
    try:
        messages = Linter.validate(definition, Config())
    except Exception as exc:  # statelint trips on some values of the wrong type (a list as StartAt)
        return [Problem(None, None, ROOT, f"The definition is not a valid state machine: a field has a value "
                                          f"of the wrong type ({type(exc).__name__}: {exc}).")]
    if isinstance(definition.get("StartAt"), str):
        messages += [m for m in _unreachable(definition, ROOT) if m not in messages]
    problems, deferred = [], []
    for problem in (_from_statelint(m, definition) for m in messages):
        if any(rule(problem, definition) for rule in ACCEPTED_BY_AWS):
            continue
        if any(rule(problem, definition) for rule in LEFT_TO_THE_COMPILER):
            deferred.append(problem)
        else:
            problems.append(problem)
    language = definition.get("QueryLanguage", JSONPATH)
    checked: set[str] = set()
    if language in (JSONPATH, JSONATA):  # else statelint reports it, and nothing compiles
        problems += _own_checks(definition, ROOT, language, problems, checked)
    # A deferred problem stands when its state was not compiled (it has other problems).
    problems += [p for p in deferred if _follow(definition, p.location).state_location not in checked]
    return problems
