"""Hostile definitions and inputs: each is refused, or fails with a clear ASL error, in bounded time and memory.

``bounded`` runs each case twice: once timed with ``time.perf_counter`` and once under
``tracemalloc`` for the peak of Python allocations (tracing slows allocation-heavy code
several times, so it does not time). The bounds are generous: the point is that nothing
grows without limit, not how fast it is.
"""
from __future__ import annotations

import json
import time
import tracemalloc
from typing import Any, Callable

import pytest

from chalicelib import proceed, resume, run_virtual
from chalicelib.asl import InvalidDefinition, expressions, limits, validate
from chalicelib.asl.intrinsics import MAX_RANGE_ITEMS

from ..asl_helpers import chain

SECONDS = 5.0
PEAK_BYTES = 200 * 1024 * 1024


def bounded(work: Callable[[], Any], seconds: float = SECONDS, peak_bytes: int = PEAK_BYTES) -> Any:
    """``work()``, asserting it takes less than ``seconds`` and allocates less than ``peak_bytes`` at its peak."""
    started = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    try:
        work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert peak < peak_bytes, f"peak {peak / 1e6:.1f} MB"
    return result


def failed_with(result: dict, error: str, *cause_parts: str) -> dict:
    assert result["status"] == "FAILED", result.get("output", result)
    assert result["error"] == error, result
    for part in cause_parts:
        assert part in result["cause"], result["cause"]
    return result


def problems_of(definition) -> list[str]:
    with pytest.raises(InvalidDefinition) as refused:
        run_virtual(definition, {})
    return [problem.message for problem in refused.value.problems]


def pass_state(**fields) -> dict:
    return {"Type": "Pass", **fields}


def one_pass(**fields) -> dict:
    return chain(("P", pass_state(**fields)))


def loop(body: dict, *, until: dict | None = None) -> dict:
    """``Body`` runs again and again (a Choice sends it back) until ``until`` holds, which never does by default."""
    rule = until or {"Variable": "$.never", "IsPresent": True}
    return {
        "StartAt": "Body",
        "States": {
            "Body": {**body, "Next": "Again"},
            "Again": {"Type": "Choice", "Choices": [{**rule, "Next": "Done"}], "Default": "Body"},
            "Done": {"Type": "Succeed"},
        },
    }


def jsonata(expression: str) -> dict:
    return {"QueryLanguage": "JSONata", **one_pass(Output="{% " + expression + " %}")}


# -- nesting -------------------------------------------------------------------------------------

def nested_parallels(levels: int) -> dict:
    machine = {"StartAt": "Leaf", "States": {"Leaf": {"Type": "Pass", "End": True}}}
    for level in range(levels):
        machine = {"StartAt": f"P{level}",
                   "States": {f"P{level}": {"Type": "Parallel", "Branches": [machine], "End": True}}}
    return machine


def test_two_hundred_nested_parallels_are_refused_before_anything_recurses():
    definition = nested_parallels(200)
    messages = bounded(lambda: problems_of(definition), seconds=2.0)
    assert messages == [f"The definition nests Parallel and Map states more than {limits.MAX_STATE_NESTING} "
                        "levels deep."]
    assert [problem.message for problem in validate(definition)] == messages


def test_parallels_nested_to_the_limit_still_run():
    definition = nested_parallels(limits.MAX_STATE_NESTING)
    result = bounded(lambda: run_virtual(definition, {"x": 1}))
    assert result["status"] == "SUCCEEDED"
    depth, output = 0, result["output"]
    while isinstance(output, list):
        depth, output = depth + 1, output[0]
    assert (depth, output) == (limits.MAX_STATE_NESTING, {"x": 1})


def test_maps_nested_past_the_limit_are_refused():
    machine = {"StartAt": "Leaf", "States": {"Leaf": {"Type": "Pass", "End": True}}}
    for level in range(limits.MAX_STATE_NESTING + 1):
        machine = {"StartAt": f"M{level}",
                   "States": {f"M{level}": {"Type": "Map", "ItemProcessor": machine, "End": True}}}
    assert "Parallel and Map states more than" in bounded(lambda: problems_of(machine), seconds=2.0)[0]


def test_a_choice_rule_nested_thousands_deep_is_refused():
    rule = {"Variable": "$.x", "IsPresent": True}
    for _ in range(5000):
        rule = {"Not": rule}
    definition = {"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{**rule, "Next": "E"}],
                                                  "Default": "E"}, "E": {"Type": "Succeed"}}}
    messages = bounded(lambda: problems_of(definition), seconds=2.0)
    assert messages == [f"The definition nests arrays and objects more than {limits.MAX_DEFINITION_DEPTH} "
                        "levels deep."]


def test_definition_text_nested_beyond_what_the_json_parser_takes_is_invalid_not_a_crash():
    text = '{"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": ' + "[" * 100_000 + "]" * 100_000 + \
           ', "End": true}}}'
    messages = bounded(lambda: problems_of(text), seconds=2.0)
    assert messages[0].startswith("The definition is not valid JSON")
    assert [problem.message for problem in validate(text)] == messages


# -- big data --------------------------------------------------------------------------------------

MAP_OF_PASS = {"StartAt": "M", "States": {"M": {
    "Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
    "End": True}}}


def test_map_over_a_million_items_of_input_is_refused_at_the_start():
    items = list(range(1_000_000))
    result = bounded(lambda: run_virtual(MAP_OF_PASS, items))
    failed_with(result, "States.DataLimitExceeded", "The execution input is a value with a size exceeding")


def test_map_over_a_million_items_made_by_an_expression_is_refused_before_any_iteration():
    definition = {"QueryLanguage": "JSONata", "StartAt": "M", "States": {"M": {
        **MAP_OF_PASS["States"]["M"], "Items": "{% [0..999999] %}"}}}
    events: list = []
    result = bounded(lambda: run_virtual(definition, {}, listener=events.append))
    failed_with(result, "States.DataLimitExceeded", "The state/task 'M' was given items with a size exceeding")
    assert not any(event["type"] == "MapStateStarted" for event in events)


def test_map_within_the_payload_limit_runs_in_request_sized_budgets():
    """8,000 items (about 47 KiB) make 16,001 transitions: a budget of 5,000 stops the run, resumably."""
    items = list(range(10_000, 18_000))

    def work():
        first = run_virtual(MAP_OF_PASS, items, max_transitions=5_000)
        assert first["status"] == "RUNNING"
        return proceed(MAP_OF_PASS, json.loads(json.dumps(first["snapshot"])))

    assert bounded(work) == {"status": "SUCCEEDED", "output": items}


def test_array_range_of_a_billion_items_fails_at_once():
    definition = one_pass(Parameters={"r.$": "States.ArrayRange(1, 1000000000, 1)"})
    result = bounded(lambda: run_virtual(definition, {}), seconds=2.0, peak_bytes=1024 * 1024)
    failed_with(result, "States.IntrinsicFailure",
                f"the range would have 1000000000 items, more than the limit of {MAX_RANGE_ITEMS}")


def test_array_range_at_aws_limit_of_1000_items_works():
    result = run_virtual(one_pass(Parameters={"r.$": "States.ArrayRange(1, 1000, 1)"}), {})
    assert result["output"]["r"] == list(range(1, 1001))


@pytest.mark.parametrize("body", [
    pytest.param({"Type": "Pass", "Parameters": {"a.$": "States.JsonMerge($, $, false)", "b.$": "$"}},
                 id="json-merge"),
    pytest.param({"Type": "Pass", "Parameters": {"a.$": "$", "b.$": "$"}}, id="template"),
])
def test_a_value_that_doubles_each_time_around_a_loop_stops_at_the_payload_limit(body):
    """Each doubling shares references, so without a bound the size grows 2**n while memory stays small."""
    def work():
        events: list = []
        return run_virtual(loop(body), {"seed": "x" * 100}, listener=events.append), events

    result, events = bounded(work)
    failed_with(result, "States.DataLimitExceeded", "The state/task 'Body' returned a result with a size exceeding")
    rounds = sum(1 for event in events if event["type"] == "StateEntered" and event["state"] == "Body")
    assert 11 <= rounds <= 13  # 100 bytes doubled 12 times is 400 KiB


def test_a_value_that_nests_one_level_deeper_each_time_around_a_loop_stops_at_the_depth_limit(monkeypatch):
    monkeypatch.setattr(limits, "MAX_DATA_DEPTH", 100)  # the same path as 1,000 levels, in a tenth of the rounds
    result = bounded(lambda: run_virtual(loop({"Type": "Pass", "ResultPath": "$.copy"}), {"seed": 1}))
    failed_with(result, "States.DataLimitExceeded",
                "The state/task 'Body' returned a result nested more than 100 levels deep.")


def test_assigned_variables_over_the_payload_limit_fail_the_state():
    definition = loop({"Type": "Pass", "Assign": {"big.$": "States.Array($big, $big)"}})
    definition = {**definition, "StartAt": "Start", "States": {
        "Start": {"Type": "Pass", "Assign": {"big": "y" * 1000}, "Next": "Body"}, **definition["States"]}}
    result = bounded(lambda: run_virtual(definition, {}))
    failed_with(result, "States.DataLimitExceeded", "The state/task 'Body' assigned variables with a size exceeding")


@pytest.mark.parametrize("depth", [limits.MAX_DATA_DEPTH + 1, 100_000])
def test_string_to_json_of_deeply_nested_text_fails_the_intrinsic(depth):
    definition = one_pass(Parameters={"v.$": "States.StringToJson($.text)"})
    text = "[" * depth + "]" * depth
    result = bounded(lambda: run_virtual(definition, {"text": text}))
    failed_with(result, "States.IntrinsicFailure", "nested too deeply")


def test_string_to_json_to_the_depth_limit_works():
    depth = limits.MAX_DATA_DEPTH - 1  # the value sits under "v" in the state's output
    result = run_virtual(one_pass(Parameters={"v.$": "States.StringToJson($.text)"}),
                         {"text": "[" * depth + "]" * depth})
    assert result["status"] == "SUCCEEDED"


def test_huge_format_is_refused_before_the_string_is_built():
    placeholders = "{}" * 1000
    arguments = ", ".join(["$.text"] * 1000)
    definition = one_pass(Parameters={"s.$": f"States.Format('{placeholders}', {arguments})"})
    data = {"text": "x" * 200_000}
    result = bounded(lambda: run_virtual(definition, data), peak_bytes=10 * 1024 * 1024)  # not 200 MB
    failed_with(result, "States.DataLimitExceeded", "The result of States.Format would exceed")


def test_json_to_string_of_a_value_made_of_repeated_references_is_refused():
    arguments = ", ".join(["$"] * 500)
    definition = one_pass(Parameters={"s.$": f"States.JsonToString(States.Array({arguments}))"})
    data = {"text": "x" * 200_000}
    result = bounded(lambda: run_virtual(definition, data), peak_bytes=10 * 1024 * 1024)  # not 100 MB
    failed_with(result, "States.DataLimitExceeded", "The result of States.JsonToString would exceed")


def test_input_nested_deeper_than_the_limit_is_refused():
    value: list = []
    for _ in range(limits.MAX_DATA_DEPTH + 1):
        value = [value]
    result = bounded(lambda: run_virtual(one_pass(), value))
    failed_with(result, "States.DataLimitExceeded", "The execution input is a value nested more than")


def test_an_answer_nested_too_deeply_fails_the_waiting_task_not_the_process():
    definition = chain(("Ask", {"Type": "Task", "Resource": "module:suspend"}))
    suspended = run_virtual(definition, {"a": 1})
    answer: dict = {}
    for _ in range(50_000):
        answer = {"a": answer}
    point = suspended["suspensions"][0]["id"]
    result = bounded(lambda: resume(definition, suspended["snapshot"], point, answer))
    failed_with(result, "States.DataLimitExceeded", "The state/task 'Ask' returned a result nested more than")
    json.dumps(result)


# -- endless work ----------------------------------------------------------------------------------

def test_an_endless_loop_of_pass_states_stops_at_the_transition_budget_resumably():
    definition = loop({"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}})

    def work():
        first = run_virtual(definition, {"n": 0}, max_transitions=1000)
        assert first["status"] == "RUNNING"
        return proceed(definition, json.loads(json.dumps(first["snapshot"])), max_transitions=1000)

    second = bounded(work)
    assert second["status"] == "RUNNING"
    assert second["snapshot"]["root"]["input"]["n"] == 1000  # 2 transitions a round, over two budgets


def test_an_endless_loop_stops_at_the_time_budget_too():
    started = time.perf_counter()
    result = run_virtual(loop({"Type": "Pass"}), {}, max_seconds=0.2, transition_limit=None)
    assert result["status"] == "RUNNING"
    assert time.perf_counter() - started < 2.0


X200K = "$pad('', 200000, 'x')"


@pytest.mark.parametrize("expression, cause", [
    ("$sum([1..10000000])", "D2014"),
    ("$count([1..1000000].[1..1000000])", "more than 4000000 sequence items"),
    ("$range(1, 100000000, 1)", "more than 1000000"),
    ("$pad('x', 100000000)", "more than 1048576"),
    (f"($s := {X200K}; $t := $s & $s & $s & $s; $u := $t & $t & $t & $t; $length($u))", "more than 1048576"),
    (f"($s := {X200K}; $join([1..1000].($s)))", "$join would make a string of 200000000"),
    (f"($s := {X200K}; $length($string([1..1000].($s))))", "$string would make"),
    (f"($s := {X200K}; $replace($s, 'x', $s))", "$replace would make"),
    ("($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000))", "nests too deeply"),
    ("($f := function($n) { $n = 0 ? [] : [$f($n - 1)] }; $f(3000))", "nests too deeply"),
])
def test_jsonata_expressions_that_blow_up_fail_with_query_evaluation_error(expression, cause):
    result = bounded(lambda: run_virtual(jsonata(expression), {}))
    failed_with(result, "States.QueryEvaluationError", cause)


def test_jsonata_expression_that_runs_too_long_is_stopped(monkeypatch):
    monkeypatch.setattr(expressions, "TIME_LIMIT_SECONDS", 0.3)
    expression = "($f := function($n) { $n = 0 ? 0 : $f($n - 1) + $f($n - 1) }; $f(40))"  # 2**40 calls
    result = bounded(lambda: run_virtual(jsonata(expression), {}), seconds=2.0)
    failed_with(result, "States.QueryEvaluationError", "D1012", "Evaluation timeout after 300 milliseconds")


def calibrated_time_limit(monkeypatch, expression: str, times: float) -> None:
    """Set the expressions' time limit to ``times`` what ``expression`` takes here (median of 3)."""
    import time

    took = []
    for _ in range(3):
        began = time.perf_counter()
        assert run_virtual(jsonata(expression), {})["status"] == "SUCCEEDED"
        took.append(time.perf_counter() - began)
    monkeypatch.setattr(expressions, "TIME_LIMIT_SECONDS", times * sorted(took)[1])


def test_the_expressions_of_one_state_share_its_time_limit(monkeypatch):
    """Twelve expressions of a quarter of the limit each, in one state, stop there (the request
    would otherwise block twelve times as long); ten of them in ten states all run."""
    work = "$sum([1..200000])"
    calibrated_time_limit(monkeypatch, work, 4)
    one_state = {"QueryLanguage": "JSONata", **one_pass(Output={f"f{i}": "{% " + work + " %}" for i in range(12)})}
    failed_with(run_virtual(one_state, {}), "States.QueryEvaluationError", "D1012")
    states = {f"S{i}": {"Type": "Pass", "Output": "{% " + work + " %}", "Next": f"S{i + 1}"} for i in range(10)}
    states["S10"] = {"Type": "Succeed"}
    ten_states = {"QueryLanguage": "JSONata", "StartAt": "S0", "States": states}
    assert run_virtual(ten_states, {})["output"] == 20000100000


def test_a_parallel_s_expressions_are_not_charged_for_its_branches(monkeypatch):
    work = "$sum([1..200000])"
    calibrated_time_limit(monkeypatch, work, 4)
    branches = [{"StartAt": f"B{i}", "States": {f"B{i}": {"Type": "Pass", "Output": "{% " + work + " %}",
                                                           "End": True}}} for i in range(6)]
    definition = {"QueryLanguage": "JSONata", "StartAt": "P", "States": {"P": {
        "Type": "Parallel", "Branches": branches, "Output": {"branches": "{% $states.result %}", "own": "{% " + work + " %}"},
        "End": True}}}
    assert run_virtual(definition, {})["output"] == {"branches": [20000100000] * 6, "own": 20000100000}


def test_jsonata_range_up_to_its_limit_still_works():
    assert run_virtual(jsonata("$sum([1..1000000])"), {})["output"] == 500000500000


def test_lone_surrogates_are_hashed_and_encoded_as_java_does():
    """A ``\\ud800`` escape in JSON gives a lone surrogate; UTF-8 cannot hold it, Java writes '?'."""
    definition = one_pass(Parameters={"h.$": "States.Hash($.s, 'SHA-256')", "b.$": "States.Base64Encode($.s)"})
    result = run_virtual(definition, json.loads('{"s": "a\\ud800"}'))
    assert result["output"] == {"h": run_virtual(definition, {"s": "a?"})["output"]["h"], "b": "YT8="}
