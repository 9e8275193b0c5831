"""The interpreter's state types, input/output processing, errors and time."""
from __future__ import annotations

import json

import pytest

from chalicelib import proceed, resume
from chalicelib.asl import InvalidDefinition, Suspend, TaskFailed, UnknownSuspension, VirtualClock

from ..asl_helpers import START, go, roundtrip
from ..asl_helpers import chain as machine

# -- Pass and input/output processing -------------------------------------------------------

def test_pass_without_result_passes_input_through():
    assert go(machine(("A", {"Type": "Pass"})), {"x": 1}) == {"status": "SUCCEEDED", "output": {"x": 1}}


def test_pass_result_replaces_input_by_default():
    result = go(machine(("A", {"Type": "Pass", "Result": {"r": 2}})), {"x": 1})
    assert result["output"] == {"r": 2}


def test_result_path_creates_nested_objects_and_keeps_input():
    original = {"x": 1}
    result = go(machine(("A", {"Type": "Pass", "Result": 5, "ResultPath": "$.a.b.c"})), original)
    assert result["output"] == {"x": 1, "a": {"b": {"c": 5}}}
    assert original == {"x": 1}  # the input is never changed in place


def test_result_path_null_discards_result():
    result = go(machine(("A", {"Type": "Pass", "Result": 5, "ResultPath": None})), {"x": 1})
    assert result["output"] == {"x": 1}


def test_result_path_into_a_non_object_fails_with_result_path_match_failure():
    result = go(machine(("A", {"Type": "Pass", "Result": 5, "ResultPath": "$.x.y"})), {"x": 1})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.ResultPathMatchFailure"


def test_input_path_parameters_result_path_output_path_in_aws_order():
    definition = machine(("A", {
        "Type": "Pass",
        "InputPath": "$.inner",
        "Parameters": {"doubled.$": "$.v", "fixed": "k"},
        "ResultPath": "$.res",
        "OutputPath": "$.res",
    }))
    result = go(definition, {"inner": {"v": 3}, "other": True})
    # Parameters see the InputPath-selected value; ResultPath writes into the raw input.
    assert result["output"] == {"doubled": 3, "fixed": "k"}


def test_input_path_null_gives_empty_object_and_output_path_null_too():
    assert go(machine(("A", {"Type": "Pass", "InputPath": None, "ResultPath": "$.r"})), {"x": 1})["output"] == {"x": 1, "r": {}}
    assert go(machine(("A", {"Type": "Pass", "OutputPath": None})), {"x": 1})["output"] == {}


def test_missing_input_path_is_a_runtime_error_naming_the_path():
    result = go(machine(("A", {"Type": "Pass", "InputPath": "$.nope"})), {"x": 1})
    assert result["error"] == "States.Runtime"
    assert "Invalid path '$.nope'" in result["cause"]
    assert "'A'" in result["cause"]


def test_parameters_path_that_names_nothing_fails_with_field_named():
    result = go(machine(("A", {"Type": "Pass", "Parameters": {"v.$": "$.missing"}})), {"x": 1})
    assert result["error"] == "States.Runtime"
    assert "'$.missing'" in result["cause"] and "'v.$'" in result["cause"]


def test_parameters_nested_objects_arrays_and_complex_jsonpath():
    definition = machine(("A", {"Type": "Pass", "Parameters": {
        "list": [{"first.$": "$.items[0].id"}, "literal"],
        "big.$": "$.items[?(@.n > 1)].id",
        "all.$": "$.items[*].n",
    }}))
    items = [{"id": "a", "n": 1}, {"id": "b", "n": 2}, {"id": "c", "n": 3}]
    assert go(definition, {"items": items})["output"] == {
        "list": [{"first": "a"}, "literal"], "big": ["b", "c"], "all": [1, 2, 3]}


@pytest.mark.parametrize("path", ["$.[?(@.OU > 0)]", "$[?(@.OU > 0)]"])
def test_a_dot_before_a_filter_reads_as_the_filter_itself(path):
    """AWS reads ``$.[?(...)]`` as ``$[?(...)]``, as it reads ``$.[0]`` as ``$[0]``: in every path field."""
    accounts = [{"OU": 2, "id": "a"}, {"OU": 0, "id": "b"}, {"OU": 5, "id": "c"}]
    definition = machine(
        ("Pick", {"Type": "Pass", "InputPath": path}),
        ("Shape", {"Type": "Pass", "Parameters": {"ids.$": path.replace("OU > 0", "OU > 3") + ".id"}}),
        ("Route", {"Type": "Choice", "Default": "Done",
                   "Choices": [{"Variable": "$.ids.[0]", "StringEquals": "c", "Next": "Done"}]}),
        ("Done", {"Type": "Succeed"}))
    assert go(definition, accounts)["output"] == {"ids": ["c"]}
    keep = machine(("Keep", {"Type": "Pass", "OutputPath": path}))
    assert go(keep, accounts)["output"] == [{"OU": 2, "id": "a"}, {"OU": 5, "id": "c"}]


def test_a_dot_before_a_bracket_inside_a_quoted_filter_value_is_kept():
    definition = machine(("Pick", {"Type": "Pass", "OutputPath": "$.[?(@.name == 'a.[b')]"}))
    assert go(definition, [{"name": "a.[b"}, {"name": "a[b"}])["output"] == [{"name": "a.[b"}]


def test_context_object_fields():
    definition = machine(("A", {"Type": "Pass", "Parameters": {
        "name.$": "$$.State.Name",
        "entered.$": "$$.State.EnteredTime",
        "retries.$": "$$.State.RetryCount",
        "execution.$": "$$.Execution.Name",
        "input.$": "$$.Execution.Input",
        "machine.$": "$$.StateMachine.Name",
        "start.$": "$$.Execution.StartTime",
    }}))
    out = go(definition, {"q": 1}, name="exec-1", state_machine_name="orders")["output"]
    assert out == {
        "name": "A",
        "entered": "2023-11-14T22:13:20.000Z",
        "retries": 0,
        "execution": "exec-1",
        "input": {"q": 1},
        "machine": "orders",
        "start": "2023-11-14T22:13:20.000Z",
    }


def test_definition_given_as_json_text():
    text = json.dumps(machine(("A", {"Type": "Pass", "Result": 1})))
    assert go(text)["output"] == 1


def test_invalid_definition_is_rejected_with_problems():
    with pytest.raises(InvalidDefinition) as caught:
        go({"StartAt": "Missing", "States": {"A": {"Type": "Pass", "End": True}}})
    assert caught.value.problems


# -- Succeed, Fail, Choice ------------------------------------------------------------------

def test_succeed_applies_input_and_output_path():
    definition = machine(("A", {"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}))
    assert go(definition, {"a": {"b": 7}})["output"] == 7


def test_fail_state_error_and_cause():
    result = go(machine(("F", {"Type": "Fail", "Error": "Bad", "Cause": "why"})))
    assert result == {"status": "FAILED", "error": "Bad", "cause": "why"}


def test_fail_state_error_path_and_cause_path():
    definition = machine(("F", {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}))
    assert go(definition, {"e": "E1", "c": "C1"}) == {"status": "FAILED", "error": "E1", "cause": "C1"}


def test_choice_routes_and_applies_output_path():
    definition = {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "OutputPath": "$.v", "Choices": [
                {"Variable": "$.v", "NumericGreaterThan": 10, "Next": "Big"}], "Default": "Small"},
            "Big": {"Type": "Pass", "Result": "big", "End": True},
            "Small": {"Type": "Pass", "ResultPath": "$", "Parameters": {"was.$": "$"}, "End": True},
        },
    }
    assert go(definition, {"v": 11})["output"] == "big"
    assert go(definition, {"v": 3})["output"] == {"was": 3}


def test_choice_without_match_or_default_fails():
    definition = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "NumericEquals": 1, "Next": "D"}]},
        "D": {"Type": "Succeed"}}}
    result = go(definition, {"v": 2})
    assert result["status"] == "FAILED" and result["error"] == "States.NoChoiceMatched"


# -- Task, Retry, Catch ---------------------------------------------------------------------

def test_task_calls_handler_and_applies_result_selector_and_result_path():
    seen = []

    def handler(payload, context):
        seen.append((payload, context.state, context.resource))
        return {"body": {"n": payload["n"] * 2}, "noise": 1}

    definition = machine(("T", {"Type": "Task", "Resource": "my:double", "Parameters": {"n.$": "$.n"},
                                "ResultSelector": {"value.$": "$.body.n"}, "ResultPath": "$.out"}))
    result = go(definition, {"n": 4}, handlers={"my:double": handler})
    assert result["output"] == {"n": 4, "out": {"value": 8}}
    assert seen == [({"n": 4}, "T", "my:double")]


def test_builtin_module_handlers_increment_and_square():
    definition = machine(("I", {"Type": "Task", "Resource": "module:increment"}),
                         ("S", {"Type": "Task", "Resource": "module:square"}),
                         ("J", {"Type": "Task", "Resource": "module:increment"}))
    assert go(definition, {"value": 6})["output"] == {"value": 50}
    incremented = go(machine(("I", {"Type": "Task", "Resource": "module:increment"})), {"value": 1, "increment": 5})
    assert incremented["output"]["value"] == 6


def test_handler_exception_class_name_is_the_error():
    def broken(payload, context):
        raise ValueError("bad value")

    result = go(machine(("T", {"Type": "Task", "Resource": "test:x"})), handlers={"test:x": broken})
    assert result == {"status": "FAILED", "error": "ValueError", "cause": "bad value"}


def test_handler_can_raise_named_error():
    def refuse(payload, context):
        raise TaskFailed("Order.Rejected", "out of stock")

    result = go(machine(("T", {"Type": "Task", "Resource": "test:x"})), handlers={"test:x": refuse})
    assert (result["error"], result["cause"]) == ("Order.Rejected", "out of stock")


def flaky(failures: int, error: str = "Flaky"):
    calls = []

    def handler(payload, context):
        calls.append(payload)
        if len(calls) <= failures:
            raise TaskFailed(error, f"attempt {len(calls)}")
        return "ok"

    return handler, calls


def test_retry_with_backoff_waits_on_the_clock():
    handler, calls = flaky(3)
    clock = VirtualClock(START)
    definition = machine(("T", {"Type": "Task", "Resource": "test:x", "Retry": [
        {"ErrorEquals": ["Flaky"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 3}]}))
    result = go(definition, handlers={"test:x": handler}, clock=clock)
    assert result["output"] == "ok" and len(calls) == 4
    assert clock.now() - START == pytest.approx(2 + 6 + 18)


def test_retry_max_delay_caps_interval():
    handler, _ = flaky(3)
    clock = VirtualClock(START)
    definition = machine(("T", {"Type": "Task", "Resource": "test:x", "Retry": [
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "BackoffRate": 10, "MaxDelaySeconds": 15,
         "MaxAttempts": 3}]}))
    go(definition, handlers={"test:x": handler}, clock=clock)
    assert clock.now() - START == pytest.approx(10 + 15 + 15)


def test_retry_full_jitter_waits_no_more_than_the_interval():
    handler, _ = flaky(1)
    clock = VirtualClock(START)
    definition = machine(("T", {"Type": "Task", "Resource": "test:x", "Retry": [
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 8, "JitterStrategy": "FULL"}]}))
    assert go(definition, handlers={"test:x": handler}, clock=clock)["status"] == "SUCCEEDED"
    assert 0 <= clock.now() - START <= 8


def test_retry_exhausted_then_catch():
    handler, calls = flaky(10)
    definition = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "test:x", "Next": "Done",
              "Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 2, "IntervalSeconds": 1}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recover", "ResultPath": "$.err"}]},
        "Recover": {"Type": "Pass", "End": True},
        "Done": {"Type": "Succeed"}}}
    result = go(definition, {"keep": 1}, handlers={"test:x": handler})
    assert len(calls) == 3
    assert result["output"] == {"keep": 1, "err": {"Error": "Flaky", "Cause": "attempt 3"}}


def test_max_attempts_zero_never_retries():
    handler, calls = flaky(1)
    definition = machine(("T", {"Type": "Task", "Resource": "test:x", "Retry": [
        {"ErrorEquals": ["States.ALL"], "MaxAttempts": 0}]}))
    assert go(definition, handlers={"test:x": handler})["status"] == "FAILED"
    assert len(calls) == 1


def test_first_matching_retrier_decides():
    handler, calls = flaky(5, error="Specific")
    definition = machine(("T", {"Type": "Task", "Resource": "test:x", "Retry": [
        {"ErrorEquals": ["Specific"], "MaxAttempts": 1},
        {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}]}))
    assert go(definition, handlers={"test:x": handler})["status"] == "FAILED"
    assert len(calls) == 2


def test_catch_default_result_path_replaces_input_with_error():
    definition = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "test:x", "End": True,
              "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "R"}]},
        "R": {"Type": "Pass", "End": True}}}
    handler, _ = flaky(1, error="Anything")
    assert go(definition, {"a": 1}, handlers={"test:x": handler})["output"] == {"Error": "Anything", "Cause": "attempt 1"}


def test_states_all_does_not_catch_runtime_errors():
    definition = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "test:x", "InputPath": "$.missing", "End": True,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "R"}]},
        "R": {"Type": "Pass", "End": True}}}
    result = go(definition, {}, handlers={"test:x": lambda p, c: p})
    assert result["error"] == "States.Runtime"


def test_task_failed_does_not_match_timeout():
    definition = {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "test:x", "End": True,
              "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "R"}]},
        "R": {"Type": "Pass", "End": True}}}

    def times_out(payload, context):
        raise TaskFailed("States.Timeout", "too slow")

    assert go(definition, handlers={"test:x": times_out})["error"] == "States.Timeout"


def test_oversized_task_result_fails_with_data_limit_exceeded():
    definition = machine(("T", {"Type": "Task", "Resource": "test:x"}))
    result = go(definition, handlers={"test:x": lambda p, c: "a" * (300 * 1024)})
    assert result["error"] == "States.DataLimitExceeded"


def test_unknown_resource_fails_the_execution():
    result = go(machine(("T", {"Type": "Task", "Resource": "module:nope"})))
    assert result["status"] == "FAILED" and "module:nope" in result["cause"]


# -- Wait -----------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, data, waited", [
    ({"Seconds": 30}, {}, 30),
    ({"SecondsPath": "$.s"}, {"s": 45}, 45),
    ({"Timestamp": "2023-11-14T22:15:00Z"}, {}, 100),
    ({"TimestampPath": "$.t"}, {"t": "2023-11-14T22:13:30Z"}, 10),
    ({"Timestamp": "2020-01-01T00:00:00Z"}, {}, 0),
])
def test_wait_moves_the_clock(spec, data, waited):
    clock = VirtualClock(START)
    result = go(machine(("W", {"Type": "Wait", **spec})), data, clock=clock)
    assert result["output"] == data
    assert clock.now() - START == pytest.approx(waited)


def test_wait_seconds_path_must_be_a_non_negative_integer():
    negative = go(machine(("W", {"Type": "Wait", "SecondsPath": "$.s"})), {"s": -1})
    assert negative["error"] == "States.Runtime" and "negative" in negative["cause"]
    fractional = go(machine(("W", {"Type": "Wait", "SecondsPath": "$.s"})), {"s": 1.5})
    assert fractional["error"] == "States.Runtime"


def test_long_wait_becomes_a_timer_suspension_point():
    clock = VirtualClock(START)
    definition = machine(("W", {"Type": "Wait", "Seconds": 3600}), ("After", {"Type": "Pass", "Result": "done"}))
    result = go(definition, {}, clock=clock, inline_wait_limit=5)
    assert result["status"] == "SUSPENDED"
    [timer] = result["suspensions"]
    assert timer["kind"] == "timer" and timer["due"] == "2023-11-14T23:13:20.000Z"
    assert clock.now() == START  # nothing slept
    clock.set(START + 3600)
    done = resume(definition, roundtrip(result["snapshot"]), timer["id"], clock=clock)
    assert done == {"status": "SUCCEEDED", "output": "done"}


def test_long_retry_interval_becomes_a_timer():
    handler, calls = flaky(1)
    definition = machine(("T", {"Type": "Task", "Resource": "test:x", "Retry": [
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 60}]}))
    first = go(definition, handlers={"test:x": handler}, inline_wait_limit=5)
    [timer] = first["suspensions"]
    assert (timer["kind"], timer["purpose"]) == ("timer", "retry")
    done = resume(definition, roundtrip(first["snapshot"]), timer["id"], handlers={"test:x": handler},
                  clock=VirtualClock(START + 60))
    assert done["output"] == "ok" and len(calls) == 2


# -- Parallel and Map -----------------------------------------------------------------------

def branch(*states):
    return machine(*states)


def test_parallel_collects_branch_outputs_in_order():
    definition = machine(("P", {"Type": "Parallel", "Branches": [
        branch(("A", {"Type": "Pass", "Result": "a"})),
        branch(("B", {"Type": "Pass", "InputPath": "$.x"})),
    ], "ResultPath": "$.results"}))
    assert go(definition, {"x": 1})["output"] == {"x": 1, "results": ["a", 1]}


def test_parallel_branch_failure_fails_the_state_and_can_be_caught():
    definition = {"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "End": True, "Branches": [
            branch(("A", {"Type": "Pass"})),
            branch(("B", {"Type": "Fail", "Error": "Boom", "Cause": "b"}))],
            "Catch": [{"ErrorEquals": ["Boom"], "Next": "Caught", "ResultPath": "$.error"}]},
        "Caught": {"Type": "Pass", "End": True}}}
    assert go(definition, {})["output"] == {"error": {"Error": "Boom", "Cause": "b"}}
    del definition["States"]["P"]["Catch"], definition["States"]["Caught"]
    assert go(definition, {}) == {"status": "FAILED", "error": "Boom", "cause": "b"}


def test_map_item_selector_sees_index_and_value():
    definition = machine(("M", {"Type": "Map", "ItemsPath": "$.items",
                                "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value",
                                                 "k.$": "$.k"},
                                "ItemProcessor": branch(("Inner", {"Type": "Pass"}))}))
    assert go(definition, {"items": ["a", "b"], "k": 9})["output"] == [
        {"i": 0, "v": "a", "k": 9}, {"i": 1, "v": "b", "k": 9}]


def test_map_legacy_iterator_and_parameters():
    definition = machine(("M", {"Type": "Map", "Parameters": {"v.$": "$$.Map.Item.Value"},
                                "Iterator": branch(("Inner", {"Type": "Pass", "OutputPath": "$.v"}))}))
    assert go(definition, [1, 2, 3])["output"] == [1, 2, 3]


def test_map_over_non_array_is_a_runtime_error():
    definition = machine(("M", {"Type": "Map", "ItemProcessor": branch(("Inner", {"Type": "Pass"}))}))
    assert go(definition, {"not": "a list"})["error"] == "States.Runtime"


def test_map_failure_without_tolerance_fails_with_the_iteration_error():
    definition = machine(("M", {"Type": "Map", "ItemProcessor": {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "F"}], "Default": "Ok"},
        "F": {"Type": "Fail", "Error": "Two", "Cause": "no twos"},
        "Ok": {"Type": "Pass", "End": True}}}}))
    assert go(definition, [1, 2, 3]) == {"status": "FAILED", "error": "Two", "cause": "no twos"}


def tolerant_map(**tolerance):
    return machine(("M", {"Type": "Map", **tolerance, "ItemProcessor": {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericGreaterThan": 2, "Next": "F"}],
              "Default": "Ok"},
        "F": {"Type": "Fail", "Error": "Big"},
        "Ok": {"Type": "Pass", "End": True}}}}))


def test_map_tolerated_failure_count():
    assert go(tolerant_map(ToleratedFailureCount=2), [1, 2, 3, 4])["status"] == "SUCCEEDED"
    over = go(tolerant_map(ToleratedFailureCount=1), [1, 2, 3, 4])
    assert over["error"] == "States.ExceedToleratedFailureThreshold"


def test_map_tolerated_failure_percentage():
    assert go(tolerant_map(ToleratedFailurePercentage=50), [1, 2, 3, 4])["status"] == "SUCCEEDED"
    assert go(tolerant_map(ToleratedFailurePercentage=25), [1, 2, 3, 4])["status"] == "FAILED"


def test_map_max_concurrency_limits_open_iterations():
    definition = machine(("M", {"Type": "Map", "MaxConcurrency": 1, "ItemProcessor": branch(
        ("Ask", {"Type": "Task", "Resource": "module:suspend"}))}))
    first = go(definition, [1, 2, 3])
    assert [s["branch"] for s in first["suspensions"]] == ["M[0]"]
    second = resume(definition, roundtrip(first["snapshot"]), first["suspensions"][0]["id"], {})
    assert [s["branch"] for s in second["suspensions"]] == ["M[1]"]


def suspending_map(**fields):
    return machine(("M", {"Type": "Map", **fields, "ItemProcessor": branch(
        ("Ask", {"Type": "Task", "Resource": "module:suspend", "OutputPath": "$.answer"}))}))


@pytest.mark.parametrize("fields, open_at_once", [
    ({}, 40), ({"MaxConcurrency": 0}, 40), ({"MaxConcurrency": 5}, 5), ({"MaxConcurrency": 100}, 100),
    ({"MaxConcurrencyPath": "$.limit"}, 40),
])
def test_inline_map_runs_at_most_max_concurrency_or_40_iterations_at_once(fields, open_at_once):
    items = list(range(120))
    definition = suspending_map(**fields)
    if "MaxConcurrencyPath" in fields:
        items_input = {"limit": 0, "items": items}
        definition["States"]["M"]["ItemsPath"] = "$.items"
    else:
        items_input = items
    first = go(definition, items_input)
    assert [s["branch"] for s in first["suspensions"]] == [f"M[{i}]" for i in range(open_at_once)]
    # when one completes, the next waiting item starts
    second = resume(definition, roundtrip(first["snapshot"]), first["suspensions"][3]["id"], {"answer": 3})
    branches = [s["branch"] for s in second["suspensions"]]
    expected = [f"M[{i}]" for i in range(min(open_at_once + 1, len(items))) if i != 3]
    assert branches == expected


def test_a_map_answered_in_turns_gives_every_result_in_order():
    definition = suspending_map()
    result = go(definition, list(range(90)))
    answered = 0
    while result["status"] == "SUSPENDED":
        assert len(result["suspensions"]) <= 40
        point = result["suspensions"][-1]
        index = int(point["branch"][2:-1])
        result = resume(definition, roundtrip(result["snapshot"]), point["id"], {"answer": index * 10})
        answered += 1
    assert answered == 90
    assert result == {"status": "SUCCEEDED", "output": [i * 10 for i in range(90)]}


# -- the execution's transition limit and the per-call budget over fan-outs ------------------

def test_an_endless_loop_fails_at_the_execution_transition_limit_counted_over_every_call():
    calls = 0
    result = go(LOOP, {}, max_transitions=7, transition_limit=50)
    while result["status"] == "RUNNING":
        calls += 1
        assert result["snapshot"]["transitions"] <= 50
        result = proceed(LOOP, roundtrip(result["snapshot"]), max_transitions=7, transition_limit=50,
                         clock=VirtualClock(START))
    assert calls == 50 // 7
    assert result == {"status": "FAILED", "error": "States.Runtime",
                      "cause": "The execution exceeded its limit of 50 state transitions."}


def test_the_transition_limit_counts_across_resumes_and_ignores_catch():
    ask_again = {"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Next": "P", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
              "Branches": [branch(("Ask", {"Type": "Task", "Resource": "module:suspend"}))]},
        "Caught": {"Type": "Succeed"}}}
    result = go(ask_again, {}, transition_limit=20)
    rounds = 0
    while result["status"] == "SUSPENDED":
        rounds += 1
        result = resume(ask_again, roundtrip(result["snapshot"]), result["suspensions"][0]["id"], {},
                        transition_limit=20, clock=VirtualClock(START))
    # the first run takes 1 transition (the branch start), each answer 3 (the Ask, the Parallel, the next
    # branch start): 6 answers make 19, the 7th reaches 20 as the Parallel exits
    assert rounds == 7
    assert result["status"] == "FAILED" and result["error"] == "States.Runtime"


def test_an_execution_within_the_limit_is_untouched_and_none_means_no_limit():
    ten = machine(*[(f"S{i}", {"Type": "Pass"}) for i in range(10)])
    assert go(ten, {}, transition_limit=10)["status"] == "SUCCEEDED"
    assert go(ten, {}, transition_limit=9)["error"] == "States.Runtime"
    counted = go(LOOP, {}, max_transitions=30_000, transition_limit=None)
    assert counted["status"] == "RUNNING" and counted["snapshot"]["transitions"] == 30_000


def test_a_suspending_fan_out_opens_its_iterations_within_each_calls_budget():
    definition = suspending_map(MaxConcurrency=500)
    result = go(definition, list(range(500)), max_transitions=60)
    opened = []
    while result["status"] == "RUNNING":
        opened.append(len(result["snapshot"]["root"]["group"]["active"]))
        result = proceed(definition, roundtrip(result["snapshot"]), max_transitions=60,
                         clock=VirtualClock(START))
    assert opened == list(range(60, 500, 60))
    assert result["status"] == "SUSPENDED" and len(result["suspensions"]) == 500


def test_iterations_that_fail_at_once_still_count_against_the_budget():
    definition = machine(("M", {"Type": "Map", "ToleratedFailurePercentage": 100, "ItemProcessor": branch(
        ("F", {"Type": "Fail", "Error": "No"}))}))
    partial = go(definition, list(range(1000)), max_transitions=100)
    assert partial["status"] == "RUNNING"
    assert partial["snapshot"]["root"]["group"]["next"] == 100
    done = proceed(definition, roundtrip(partial["snapshot"]), clock=VirtualClock(START))
    assert done["status"] == "SUCCEEDED" and done["output"] == [{"Error": "No", "Cause": None}] * 1000


def test_a_parallel_starts_its_branches_only_within_the_budget():
    definition = machine(("A", {"Type": "Pass"}), ("P", {"Type": "Parallel", "Branches": [
        branch((f"X{i}", {"Type": "Pass", "Result": i})) for i in range(3)]}))
    partial = go(definition, {}, max_transitions=1)
    assert partial["status"] == "RUNNING"
    assert partial["snapshot"]["root"]["at"] == "P" and "group" not in partial["snapshot"]["root"]
    done = proceed(definition, roundtrip(partial["snapshot"]), clock=VirtualClock(START))
    assert done == {"status": "SUCCEEDED", "output": [0, 1, 2]}


# -- Suspend and task tokens ----------------------------------------------------------------

INCSQUARE = machine(("Inc", {"Type": "Task", "Resource": "module:increment"}),
                    ("Square", {"Type": "Task", "Resource": "module:square"}),
                    ("Wait", {"Type": "Task", "Resource": "module:suspend", "Parameters": {"value.$": "$.value"}}),
                    ("Inc2", {"Type": "Task", "Resource": "module:increment"}))


def test_suspend_reports_point_and_parameters_then_resume_merges_input():
    first = go(INCSQUARE, {"value": 6})
    assert first["status"] == "SUSPENDED"
    [point] = first["suspensions"]
    assert point["kind"] == "suspend" and point["state"] == "Wait" and point["parameters"] == {"value": 49}
    assert point["branch"] is None
    done = resume(INCSQUARE, roundtrip(first["snapshot"]), point["id"], {"note": {"by": "ann"}})
    assert done == {"status": "SUCCEEDED", "output": {"value": 50, "note": {"by": "ann"}}}


def test_resume_deep_merges_objects_and_replaces_other_values():
    definition = machine(("Ask", {"Type": "Task", "Resource": "module:suspend"}))
    first = go(definition, {"a": {"b": 1, "c": [1, 2]}, "d": 1})
    done = resume(definition, first["snapshot"], first["suspensions"][0]["id"],
                  {"a": {"c": [3], "e": 2}, "d": {"x": 1}})
    assert done["output"] == {"a": {"b": 1, "c": [3], "e": 2}, "d": {"x": 1}}


def test_suspend_with_result_path_uses_standard_processing():
    definition = machine(("Ask", {"Type": "Task", "Resource": "module:suspend", "ResultPath": "$.answer",
                                  "ResultSelector": {"ok.$": "$.approved"}}))
    first = go(definition, {"req": 1})
    done = resume(definition, first["snapshot"], first["suspensions"][0]["id"], {"approved": True, "x": 1})
    assert done["output"] == {"req": 1, "answer": {"ok": True}}


def test_resume_with_failure_goes_through_catch():
    definition = {"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "module:suspend", "End": True,
                "Catch": [{"ErrorEquals": ["Rejected"], "Next": "No", "ResultPath": "$.why"}]},
        "No": {"Type": "Pass", "End": True}}}
    first = go(definition, {"id": 1})
    done = resume(definition, first["snapshot"], first["suspensions"][0]["id"], error="Rejected", cause="not now")
    assert done["output"] == {"id": 1, "why": {"Error": "Rejected", "Cause": "not now"}}


def test_resume_with_failure_is_retried():
    definition = machine(("Ask", {"Type": "Task", "Resource": "module:suspend",
                                  "Retry": [{"ErrorEquals": ["TryAgain"], "IntervalSeconds": 1}]}))
    first = go(definition, {})
    second = resume(definition, first["snapshot"], first["suspensions"][0]["id"], error="TryAgain")
    assert second["status"] == "SUSPENDED"
    assert second["suspensions"][0]["id"] != first["suspensions"][0]["id"]


def test_resume_of_unknown_point_raises():
    first = go(INCSQUARE, {"value": 1})
    with pytest.raises(UnknownSuspension):
        resume(INCSQUARE, first["snapshot"], "p999", {})


def test_resume_does_not_change_the_given_snapshot():
    first = go(INCSQUARE, {"value": 1})
    before = json.dumps(first["snapshot"], sort_keys=True)
    resume(INCSQUARE, first["snapshot"], first["suspensions"][0]["id"], {})
    assert json.dumps(first["snapshot"], sort_keys=True) == before


def test_wait_for_task_token_passes_token_and_uses_result_path_default():
    sent = []

    def notify(payload, context):
        sent.append((payload, context.token))
        return {"ignored": True}

    definition = machine(("Notify", {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                                     "Parameters": {"token.$": "$$.Task.Token", "msg.$": "$.m"}}))
    first = go(definition, {"m": "hi"}, handlers={"arn:aws:states:::sqs:sendMessage": notify},
               token_factory=lambda point: f"secret-{point}")
    [point] = first["suspensions"]
    assert point["kind"] == "task-token" and point["token"] == "secret-" + point["id"]
    assert sent == [({"token": "secret-" + point["id"], "msg": "hi"}, "secret-" + point["id"])]
    assert "secret-" not in json.dumps(first["snapshot"].get("root", {}).get("wait", {}).get("id"))
    done = resume(definition, first["snapshot"], point["id"], {"answer": 42})
    assert done["output"] == {"answer": 42}


def test_task_timeout_is_recorded_on_the_suspension_point():
    definition = machine(("Ask", {"Type": "Task", "Resource": "module:suspend", "TimeoutSeconds": 60,
                                  "HeartbeatSeconds": 10}))
    first = go(definition, {})
    [point] = first["suspensions"]
    assert point["timeoutAt"] == "2023-11-14T22:14:20.000Z"
    assert point["heartbeatAt"] == "2023-11-14T22:13:30.000Z"


def test_suspend_in_parallel_branches_resumes_each_branch_separately():
    definition = machine(("Both", {"Type": "Parallel", "Branches": [
        branch(("AskA", {"Type": "Task", "Resource": "module:suspend", "Parameters": {"who": "a"}})),
        branch(("AskB", {"Type": "Task", "Resource": "module:suspend", "Parameters": {"who": "b"}}),
               ("AfterB", {"Type": "Pass", "Parameters": {"b.$": "$.vote"}})),
        branch(("Quick", {"Type": "Pass", "Result": "c"})),
    ]}))
    first = go(definition, {"req": 1})
    points = {s["parameters"]["who"]: s for s in first["suspensions"]}
    assert {p["branch"] for p in points.values()} == {"Both[0]", "Both[1]"}
    second = resume(definition, roundtrip(first["snapshot"]), points["b"]["id"], {"vote": "yes"})
    assert second["status"] == "SUSPENDED"
    assert [s["id"] for s in second["suspensions"]] == [points["a"]["id"]]
    done = resume(definition, roundtrip(second["snapshot"]), points["a"]["id"], {"vote": "no"})
    assert done == {"status": "SUCCEEDED", "output": [
        {"req": 1, "vote": "no"}, {"b": "yes"}, "c"]}


def test_suspend_inside_map_inside_parallel():
    definition = machine(("Outer", {"Type": "Parallel", "Branches": [
        branch(("Each", {"Type": "Map", "ItemsPath": "$.people", "ItemProcessor": branch(
            ("Ask", {"Type": "Task", "Resource": "module:suspend", "ResultPath": "$.answer"}))})),
        branch(("Other", {"Type": "Pass", "Result": "ran"})),
    ]}))
    first = go(definition, {"people": [{"n": "x"}, {"n": "y"}]})
    assert [s["branch"] for s in first["suspensions"]] == ["Outer[0]/Each[0]", "Outer[0]/Each[1]"]
    snapshot = roundtrip(first["snapshot"])
    ids = [s["id"] for s in first["suspensions"]]
    middle = resume(definition, snapshot, ids[1], "yes-y")
    assert middle["status"] == "SUSPENDED" and len(middle["suspensions"]) == 1
    done = resume(definition, roundtrip(middle["snapshot"]), ids[0], "yes-x")
    assert done["output"] == [[{"n": "x", "answer": "yes-x"}, {"n": "y", "answer": "yes-y"}], "ran"]


def test_failure_in_one_branch_closes_suspension_points_of_the_others():
    definition = machine(("Both", {"Type": "Parallel", "Branches": [
        branch(("Ask", {"Type": "Task", "Resource": "module:suspend"})),
        branch(("Ask2", {"Type": "Task", "Resource": "module:suspend"})),
    ]}))
    first = go(definition, {})
    done = resume(definition, first["snapshot"], first["suspensions"][1]["id"], error="No")
    assert done == {"status": "FAILED", "error": "No", "cause": None}


def test_handlers_returning_suspend_stop_the_execution():
    definition = machine(("Child", {"Type": "Task", "Resource": "test:x"}))
    first = go(definition, {}, handlers={"test:x": lambda p, c: Suspend("child", {"execution": "e1"})})
    assert first["suspensions"][0]["kind"] == "child"


# -- budgets and timeouts -------------------------------------------------------------------

LOOP = {"StartAt": "A", "States": {
    "A": {"Type": "Pass", "Next": "Again"},
    "Again": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "IsPresent": True, "Next": "Done"}],
              "Default": "A"},
    "Done": {"Type": "Succeed"}}}


def test_transition_budget_checkpoints_a_runaway_execution():
    result = go(LOOP, {}, max_transitions=100)
    assert result["status"] == "RUNNING"
    again = proceed(LOOP, roundtrip(result["snapshot"]), max_transitions=100, clock=VirtualClock(START))
    assert again["status"] == "RUNNING"


def test_budget_checkpoint_continues_to_the_same_result():
    definition = machine(*[(f"S{i}", {"Type": "Pass", "Result": i, "ResultPath": f"$.r{i}"}) for i in range(10)])
    straight = go(definition, {})
    partial = go(definition, {}, max_transitions=4)
    assert partial["status"] == "RUNNING"
    finished = proceed(definition, roundtrip(partial["snapshot"]), clock=VirtualClock(START))
    assert finished == straight


def test_execution_timeout_seconds_times_out():
    definition = machine(("W", {"Type": "Wait", "Seconds": 100}), ("After", {"Type": "Pass"}), TimeoutSeconds=50)
    result = go(definition, {})
    assert result["status"] == "TIMED_OUT" and result["error"] == "States.Timeout"


def test_events_are_reported_in_order_with_ids():
    events = []
    go(machine(("A", {"Type": "Pass"}), ("B", {"Type": "Pass"})), {}, listener=events.append)
    assert [e["type"] for e in events] == ["ExecutionStarted", "StateEntered", "PassStateExited",
                                           "StateEntered", "PassStateExited", "ExecutionSucceeded"]
    assert [e["id"] for e in events] == list(range(1, 7))
    assert all(e["timestamp"].endswith("Z") for e in events)
