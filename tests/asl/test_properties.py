"""Generated input for the interpreter: whatever it gets, only ASL errors come out.

Hypothesis throws generated JSON (deep nesting, huge and tiny numbers, lone surrogates,
emoji, "NaN"-like strings, odd keys, long strings), generated paths, templates,
intrinsic calls, Choice rules, JSONata expressions and whole small definitions at the
interpreter. The property: a run ends SUCCEEDED, FAILED with a ``States.*`` error whose
cause is not a Python exception's text, RUNNING, or SUSPENDED, or the definition is
refused with problems; the result is plain JSON. Nothing raises a Python exception.

The examples are derandomized (the same on every run) and their number is bounded, so
the module runs in well under a minute.
"""
from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chalicelib import run_virtual
from chalicelib.asl import InvalidDefinition, StatesError, validate
from chalicelib.asl.choice import ChoiceSyntaxError, compile_rule
from chalicelib.asl.intrinsics import _FUNCTIONS, IntrinsicSyntaxError, compile_intrinsic
from chalicelib.asl.paths import PathNotFound, PathSyntaxError, compile_path, compile_reference_path

FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=150, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
FEW = settings(FUZZ, max_examples=60)

#: What the interpreter's catch-all writes when a Python exception escapes a state ("TypeError: ...").
PYTHON_ERROR = re.compile(r"^(?:[A-Z][A-Za-z]*(?:Error|Exception)|KeyError|StopIteration)(?::|$)")
TRANSITIONS = 200

# -- generated JSON ------------------------------------------------------------------------------

ODD_STRINGS = st.sampled_from([
    "", "NaN", "Infinity", "-Infinity", "null", "true", "1e400", "\ud800", "a\udfffb", "😀", "🏳️‍🌈", "\x00",
    "\u2028", "$", "$.a", "$$", "$.a[0]", "{}", "{%", "%}", "{% 1 %}", "States.Format('{}', 1)", "'", '"', "\\",
    "a.b", "a[0]", "['x']", "*", "@", "x" * 5000,
])
TEXT = st.one_of(ODD_STRINGS, st.text(st.characters(exclude_categories=()), max_size=30))
KEYS = st.one_of(st.sampled_from(["a", "b", "", "a.b", "a[0]", "['a']", "\"q\"", "'", "$", "x.$", "😀", "\ud800"]),
                 st.text(st.characters(exclude_categories=()), max_size=8))
NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 2**31 - 1, -(2**31), 2**31, 2**53 + 1, 2**63, -(2**63) - 1, 2**200, -(2**200),
                     10**308, 1e308, -1e308, 5e-324, 1.5, -0.0, 2.5, 0.49999999999999994]),
    st.floats(allow_nan=False, allow_infinity=False),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON = st.recursive(SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=5), st.dictionaries(KEYS, children, max_size=5)), max_leaves=25)


@st.composite
def deep(draw) -> Any:
    """A value nested hundreds or thousands of levels (around the depth limit of 1,000)."""
    depth = draw(st.sampled_from([50, 500, 998, 999, 1000, 1001, 3000]))
    value = draw(SCALARS)
    for index in range(depth):
        value = [value] if index % 2 else {draw(KEYS): value}
    return value


LONG = st.sampled_from([0, 1, 1000, 262_000, 262_144, 262_200, 600_000]).map(lambda n: {"s": "é" * (n // 2)})
DATA = st.one_of(JSON, deep(), LONG)

# -- the property --------------------------------------------------------------------------------


def check_result(result: dict) -> dict:
    """A result is an ASL outcome, in plain JSON, whose errors are ASL errors."""
    assert result["status"] in ("SUCCEEDED", "FAILED", "RUNNING", "SUSPENDED"), result
    if result["status"] == "FAILED":  # a task's own errors have any name (module:increment's InvalidInput)
        # a Fail state without Error fails the execution with none, as on AWS
        assert isinstance(result["error"], str) or result["error"] is None, result
        if (result["error"] or "").startswith("States."):
            assert not PYTHON_ERROR.match(result.get("cause") or ""), result["cause"]
    json.dumps(result, allow_nan=False)  # what the service stores
    return result


def run_or_refuse(definition: Any, data: Any) -> dict | None:
    """Run the definition; None when it is refused (then with problems, each a message)."""
    try:
        result = run_virtual(definition, data, max_transitions=TRANSITIONS)
    except InvalidDefinition as refused:
        assert refused.problems and all(isinstance(p.message, str) for p in refused.problems)
        event("refused")
        return None
    event(f"{result['status']} {result.get('error') or ''}".strip())
    return check_result(result)


def one_state(state: dict, **top: Any) -> dict:
    return {"StartAt": "S", "States": {"S": {**state, "End": True}}, **top}


def env(data: Any = None) -> SimpleNamespace:
    return SimpleNamespace(context={"Execution": {"Input": data}}, variables={"v": data, "w": [1, {"a": 2}]})


# -- JSONPath ------------------------------------------------------------------------------------

SEGMENTS = st.sampled_from([
    ".a", ".b", ".s", ".0", "[0]", "[1]", "[-1]", "[*]", ".*", "..a", "['a']", "['a.b']", "['']", "[\"a\"]",
    "[0:2]", "[::-1]", "[?(@.a)]", "[?(@.a > 1)]", "[?(@ == 'x')]", "[0,1]", "['a','b']", ".length", "[",
    "]", "'", ".", "..", "[?(@.a =~ /x.*/)]", "[9999999999999999999]", ".😀", "['\\'']",
])
PATHS = st.one_of(
    st.builds(lambda root, parts: root + "".join(parts),
              st.sampled_from(["$", "$$", "$v", "$w", "$states", "$.", "$$.Execution.Input", "x", ""]),
              st.lists(SEGMENTS, max_size=5)),
    st.text(max_size=20),
    st.text(max_size=20).map(lambda t: "$" + t),
)


@FUZZ
@given(PATHS, DATA)
def test_paths_compile_or_are_refused_and_read_or_name_nothing(text, data):
    try:
        path = compile_path(text)
    except PathSyntaxError:
        return
    try:
        path.get(data, env(data))
    except PathNotFound:
        pass


@FUZZ
@given(PATHS, DATA, JSON)
def test_reference_paths_put_or_fail_to_match(text, data, value):
    try:
        reference = compile_reference_path(text)
    except PathSyntaxError:
        return
    try:
        reference.put(data, value)
    except PathNotFound:
        pass


@FEW
@given(st.sampled_from(["InputPath", "OutputPath", "ResultPath", "ItemsPath"]), PATHS, DATA)
def test_generated_paths_in_every_path_field(field, path, data):
    state = {"Type": "Map", "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}} \
        if field == "ItemsPath" else {"Type": "Pass"}
    run_or_refuse(one_state({**state, field: path}), data)


# -- templates and intrinsic functions -----------------------------------------------------------

def literal(value: Any) -> str:
    """A value as an intrinsic function argument (strings quoted, with the four escapes)."""
    if isinstance(value, str):
        return "'" + re.sub(r"([\\'{}])", r"\\\1", value) + "'"
    return json.dumps(value)


ARGUMENTS = st.one_of(
    st.sampled_from(["$", "$.a", "$.b", "$.s", "$[0]", "$.a[0]", "$$.Execution.Input", "$v", "$.missing", "$[*]"]),
    st.one_of(st.none(), st.booleans(), NUMBERS.filter(lambda n: not isinstance(n, float) or n == n),
              TEXT.filter(lambda t: "\x00" not in t)).map(literal),
    st.sampled_from(["States.Array(1, 2)", "States.StringToJson('{\"a\": [1]}')", "States.UUID()",
                     "States.ArrayRange(1, 3, 1)", "States.Format('{}', $)"]),
)


@st.composite
def intrinsic_calls(draw) -> str:
    name = draw(st.sampled_from(sorted(_FUNCTIONS)))
    low, high, _ = _FUNCTIONS[name]
    count = draw(st.integers(max(0, low - 1), (high if high is not None else low + 3) + 1))
    arguments = draw(st.lists(ARGUMENTS, min_size=count, max_size=count))
    if name == "States.Format" and arguments:
        arguments[0] = draw(st.one_of(st.just(literal("{}" * (count - 1))), st.just(arguments[0])))
    return f"{name}({', '.join(arguments)})"


@FUZZ
@given(intrinsic_calls(), DATA)
def test_intrinsic_functions_give_a_value_or_an_asl_error(text, data):
    try:
        function = compile_intrinsic(text)
    except IntrinsicSyntaxError:
        return
    try:
        value = function.evaluate(data, env(data))
    except StatesError as failure:
        assert failure.error in ("States.IntrinsicFailure", "States.DataLimitExceeded"), failure
        assert not PYTHON_ERROR.match(failure.cause or ""), failure.cause
    except PathNotFound:
        pass
    else:
        json.dumps(value)


TEMPLATES = st.recursive(
    st.one_of(SCALARS, st.builds(lambda k, v: {k + ".$": v}, KEYS, st.one_of(intrinsic_calls(), PATHS))),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(KEYS, children, max_size=3)),
    max_leaves=8)


@FUZZ
@given(st.sampled_from(["Parameters", "ResultSelector", "Assign"]), TEMPLATES, DATA)
def test_generated_templates(field, template, data):
    state = {"Type": "Task", "Resource": "module:increment"} if field == "ResultSelector" else {"Type": "Pass"}
    run_or_refuse(one_state({**state, field: template}), data)


# -- Choice rules --------------------------------------------------------------------------------

OPERATORS = st.sampled_from([
    "StringEquals", "StringLessThan", "StringGreaterThanEquals", "StringMatches", "NumericEquals",
    "NumericLessThan", "NumericGreaterThan", "BooleanEquals", "TimestampEquals", "TimestampLessThan",
    "IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp", "StringEqualsPath",
    "NumericLessThanPath", "TimestampGreaterThanPath", "BooleanEqualsPath", "Unknown",
])
REFERENCE_PATHS = st.sampled_from(["$", "$.a", "$.r", "$.a.b", "$.a[0]", "$['x y']"])
GOOD_PATHS = st.sampled_from(["$", "$.a", "$.b", "$.s", "$.a[0]", "$['a']", "$v", "$w[1].a", "$$.Execution.Input"])
TIMESTAMPS = st.sampled_from(["2016-03-14T01:59:00Z", "2016-03-14T01:59:00.123456789+01:00", "0001-01-01T00:00Z",
                              "9999-12-31T23:59:59.999999999-18:00", "2016-02-30T00:00:00Z", "2016-03-14 01:59Z"])


@st.composite
def choice_rules(draw, depth: int = 0) -> dict:
    if depth < 3 and draw(st.integers(0, 3)) == 0:
        combinator = draw(st.sampled_from(["And", "Or", "Not"]))
        if combinator == "Not":
            return {"Not": draw(choice_rules(depth + 1))}
        return {combinator: draw(st.lists(choice_rules(depth + 1), min_size=1, max_size=3))}
    operator = draw(OPERATORS)
    if operator.endswith("Path"):
        operand = draw(st.one_of(GOOD_PATHS, GOOD_PATHS, PATHS, JSON))
    elif draw(st.integers(0, 3)) == 0:
        operand = draw(st.one_of(JSON, TIMESTAMPS))  # often of the wrong type for the operator
    elif operator.startswith("Is"):
        operand = draw(st.booleans())
    else:
        operand = draw({"String": TEXT, "Numer": NUMBERS, "Boole": st.booleans(), "Times": TIMESTAMPS}.get(
            operator[:5], SCALARS))
    return {"Variable": draw(st.one_of(GOOD_PATHS, GOOD_PATHS, GOOD_PATHS, PATHS)), operator: operand}


@FUZZ
@given(choice_rules(), st.one_of(DATA, st.dictionaries(st.sampled_from(["a", "b", "s"]),
                                                       st.one_of(SCALARS, TIMESTAMPS))))
def test_choice_rules_match_or_fail_with_an_asl_error(rule, data):
    try:
        compiled = compile_rule(rule)
    except (ChoiceSyntaxError, PathSyntaxError):
        return
    try:
        assert compiled.matches(data, env(data)) in (True, False)
    except StatesError as failure:
        assert failure.error == "States.Runtime", failure
    definition = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
        "Yes": {"Type": "Succeed"}, "No": {"Type": "Pass", "End": True}}}
    run_or_refuse(definition, data)


# -- JSONata -------------------------------------------------------------------------------------

JSONATA_PARTS = st.sampled_from([
    "$states.input", "$states.input.a", "$states.input.s", "$states.input[0]", "$states.context.Execution.Input",
    "1e308 * 10", "-1e308 - 1e308", "1/0", "2e200 * 2e200", "$string($states.input)", "$length($states.input.s)",
    "$number('1e400')", "$number('NaN')", "$sum([1..100])", "$parse('[[[[1]]]]')", "$parse($states.input.s)",
    "$keys($states.input)", "$count($states.input)", "$reverse([1,2,3])", "$uppercase($states.input.s)",
    "$substring($states.input.s, 1e308)", "$pad('a', -5)", "$split('a,b', ',')", "$join(['a', 'b'])",
    "$round(2.5e300, 2)", "$formatNumber(1e300, '#,##0.00')", "$formatBase(2e15, 36)", "$hash('x', 'SHA-256')",
    "$partition([1,2,3], 2)", "$range(0, 10, 3)", "$random(7)", "$merge([{'a':1}, $states.input])",
    "$spread($states.input)", "$each($states.input, function($v){$v})", "$states.input.**", "$replace('aaa', 'a', 'bb')",
    "$match('abc', /b/)", "$fromMillis(1e20)", "$toMillis('not a time')", "$now()", "$base64decode('@@')",
    "$encodeUrl('\ud800')", "$decodeUrl('%E0%A4%A')", "'😀'", "$zip([1], [2,3])", "$sort($states.input)",
    "$exists($nothing)", "$lookup($states.input, 'a')", "$distinct([1,1,2])", "$abs(-1e308)", "$sqrt(-1)",
    "$power(10, 400)", "$string(1e21)", "function($x){$x}", "/re/",
])
JSONATA = st.recursive(
    JSONATA_PARTS,
    lambda inner: st.one_of(
        st.builds(lambda a, op, b: f"({a} {op} {b})", inner, st.sampled_from(["+", "&", "=", "and", "..", "in", "*"]), inner),
        st.builds(lambda a: f"[{a}]", inner),
        st.builds(lambda a, b: f"{{'k': {a}, 'l': {b}}}", inner, inner),
        st.builds(lambda a: f"$count({a})", inner),
        st.builds(lambda a: f"{a}[0]", inner),
    ),
    max_leaves=4,
)


@FUZZ
@given(st.sampled_from(["Output", "Assign", "Condition", "Items", "Seconds", "Arguments"]), JSONATA, DATA)
def test_jsonata_expressions_give_a_value_or_a_query_evaluation_error(field, expression, data):
    text = "{% " + expression + " %}"
    if field == "Condition":
        state = {"Type": "Choice", "Choices": [{"Condition": text, "Next": "E"}], "Default": "E"}
        definition = {"QueryLanguage": "JSONata", "StartAt": "S",
                      "States": {"S": state, "E": {"Type": "Succeed"}}}
    elif field == "Items":
        definition = one_state({"Type": "Map", "Items": text, "ItemProcessor": {
            "StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}}, QueryLanguage="JSONata")
    elif field == "Seconds":
        definition = one_state({"Type": "Wait", "Seconds": text}, QueryLanguage="JSONata")
    elif field == "Arguments":
        definition = one_state({"Type": "Task", "Resource": "module:increment", "Arguments": {"value": text}},
                               QueryLanguage="JSONata")
    else:
        value = {"x": text} if field == "Assign" else text
        definition = one_state({"Type": "Pass", field: value}, QueryLanguage="JSONata")
    run_or_refuse(definition, data)


# -- whole definitions ---------------------------------------------------------------------------

NAMES = ["A", "B", "C", "D"]
NEXT = st.sampled_from(NAMES + ["Nowhere"])


@st.composite
def states(draw, depth: int = 0, following: str | None = None) -> dict:
    kind = draw(st.sampled_from(["Pass", "Pass", "Choice", "Wait", "Fail", "Succeed", "Task", "Map", "Parallel"]
                                if depth < 2 else ["Pass", "Choice", "Fail", "Succeed", "Wait"]))
    state: dict = {"Type": kind}
    if kind in ("Pass", "Task", "Map", "Parallel", "Wait"):
        if following is None or draw(st.integers(0, 5)) == 0:
            state.update(draw(st.one_of(st.just({"End": True}), NEXT.map(lambda n: {"Next": n}))))
        else:
            state["Next"] = following
        for field in ("InputPath", "OutputPath") if kind == "Wait" else ("InputPath", "OutputPath", "ResultPath"):
            if draw(st.integers(0, 4)) == 0:
                good = REFERENCE_PATHS if field == "ResultPath" else GOOD_PATHS
                state[field] = draw(st.one_of(good, good, good, PATHS, st.none()))
        if kind != "Wait" and draw(st.integers(0, 2)) == 0:
            state["Parameters"] = draw(TEMPLATES)
        if kind != "Wait" and draw(st.integers(0, 4)) == 0:
            state["Assign"] = draw(TEMPLATES)
    if kind == "Pass" and draw(st.booleans()):
        state["Result"] = draw(JSON)
    if kind == "Task":
        state["Resource"] = draw(st.sampled_from(["module:increment", "module:square", "module:suspend",
                                                  "module:nope", "arn:aws:states:::nothing"]))
        if draw(st.booleans()):
            state["Retry"] = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": draw(st.integers(0, 3)),
                               "IntervalSeconds": draw(st.integers(0, 10 ** 6)),
                               "BackoffRate": draw(st.sampled_from([1, 2.0, 100]))}]
        if draw(st.booleans()):
            state["Catch"] = [{"ErrorEquals": [draw(st.sampled_from(["States.ALL", "States.Runtime"]))],
                               "Next": draw(NEXT), "ResultPath": draw(st.one_of(PATHS, st.just("$.error")))}]
    if kind == "Wait":
        state[draw(st.sampled_from(["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]))] = draw(
            st.one_of(st.integers(-5, 10 ** 12), NUMBERS, PATHS, TIMESTAMPS))
    if kind == "Choice":
        state["Choices"] = [{**draw(choice_rules()), "Next": draw(NEXT)}
                            for _ in range(draw(st.integers(0, 2)))]
        if following is not None or draw(st.booleans()):
            state["Default"] = following or draw(NEXT)
    if kind == "Fail":
        for field in ("Error", "Cause", "ErrorPath", "CausePath"):
            if draw(st.integers(0, 2)) == 0:
                state[field] = draw(st.one_of(TEXT, PATHS, intrinsic_calls()))
    if kind in ("Map", "Parallel"):
        inner = draw(machines(depth + 1))
        if kind == "Map":
            state["ItemProcessor"] = inner
            if draw(st.booleans()):
                state["ItemsPath"] = draw(PATHS)
            if draw(st.booleans()):
                state["MaxConcurrency"] = draw(st.one_of(st.integers(-1, 3), NUMBERS))
            if draw(st.booleans()):
                state["ItemSelector"] = draw(TEMPLATES)
        else:
            state["Branches"] = [inner] * draw(st.integers(0, 2))
    if draw(st.integers(0, 19)) == 0:
        state[draw(KEYS)] = draw(JSON)  # a field no state has, or one with the wrong type
    return state


@st.composite
def machines(draw, depth: int = 0) -> dict:
    count = draw(st.integers(1, 3 if depth else 4))
    names = NAMES[:count]
    start = "Nowhere" if draw(st.integers(0, 19)) == 0 else "A"
    return {"StartAt": start, "States": {
        name: draw(states(depth, names[index + 1] if index + 1 < count else None))
        for index, name in enumerate(names)}}


@settings(FUZZ, max_examples=300)
@given(machines(), DATA)
def test_generated_definitions_run_or_are_refused(definition, data):
    problems = validate(definition)
    result = run_or_refuse(definition, data)
    assert (result is None) == bool(problems)


@FEW
@given(st.one_of(JSON, st.dictionaries(st.sampled_from(["StartAt", "States", "Comment", "TimeoutSeconds",
                                                        "QueryLanguage", "Version"]), JSON)),
       st.one_of(st.just(None), JSON))
def test_arbitrary_json_as_a_definition_is_refused_with_problems(definition, data):
    problems = validate(definition)
    assert all(isinstance(problem.message, str) for problem in problems)
    assert run_or_refuse(definition, data) is None or not problems
    assert run_or_refuse(json.dumps(definition), data) is None or not problems
