"""One state run on its own (TestState): each state type, mocks, Retry and Catch, inspection data.
(The single-state cases of the AWS conformance set: tests/conformance/, run by ``make conformance``.)"""
from __future__ import annotations

import pytest

from chalicelib.asl import InvalidDefinition
from chalicelib.asl.one_state import StateTestRefused, run_one_state
from chalicelib.resources import default_handlers


class Counting:
    """A task resource ``count:add`` that adds ``by`` to ``value`` and counts its calls."""

    def __init__(self):
        self.calls = 0

    def resolve(self, resource: str):
        return self.add if resource == "count:add" else None

    def add(self, payload, context):
        self.calls += 1
        return {"value": payload["value"] + payload.get("by", 1)}


# -- Pass ------------------------------------------------------------------------------------------

PASS = {"Type": "Pass", "InputPath": "$.order", "Parameters": {"id.$": "$.id", "kind": "pass"},
        "ResultPath": "$.shaped", "OutputPath": "$.shaped", "Next": "Ship"}


def test_pass_with_every_step_shown_at_debug():
    result = run_one_state(PASS, {"order": {"id": 7, "qty": 2}}, inspection_level="DEBUG")
    assert result == {
        "status": "SUCCEEDED", "output": {"id": 7, "kind": "pass"}, "nextState": "Ship",
        "inspectionData": {
            "input": {"order": {"id": 7, "qty": 2}},
            "afterInputPath": {"id": 7, "qty": 2},
            "afterParameters": {"id": 7, "kind": "pass"},
            "result": {"id": 7, "kind": "pass"},
            "afterResultPath": {"order": {"id": 7, "qty": 2}, "shaped": {"id": 7, "kind": "pass"}},
        }}


def test_info_shows_no_inspection_data():
    assert run_one_state(PASS, {"order": {"id": 1}}) == {
        "status": "SUCCEEDED", "output": {"id": 1, "kind": "pass"}, "nextState": "Ship"}


def test_a_missing_input_path_fails_with_the_cause_an_execution_gets():
    result = run_one_state(PASS, {"other": 1})
    assert result["status"] == "FAILED" and result["error"] == "States.Runtime"
    assert "Invalid path '$.order'" in result["cause"] and "'TestState'" in result["cause"]


# -- Task ------------------------------------------------------------------------------------------

TASK = {"Type": "Task", "Resource": "count:add", "Parameters": {"value.$": "$.n", "by": 10},
        "ResultSelector": {"total.$": "$.value"}, "ResultPath": "$.sum", "End": True}


def test_a_task_calls_its_resource_once():
    counting = Counting()
    result = run_one_state(TASK, {"n": 5}, handlers=counting, inspection_level="DEBUG")
    assert counting.calls == 1
    assert result == {"status": "SUCCEEDED", "output": {"n": 5, "sum": {"total": 15}}, "inspectionData": {
        "input": {"n": 5}, "afterInputPath": {"n": 5}, "afterParameters": {"value": 5, "by": 10},
        "result": {"value": 15}, "afterResultSelector": {"total": 15},
        "afterResultPath": {"n": 5, "sum": {"total": 15}}}}


def test_a_mocked_task_does_not_call_its_resource():
    counting = Counting()
    result = run_one_state(TASK, {"n": 5}, handlers=counting, mock={"result": {"value": 99}})
    assert counting.calls == 0
    assert result == {"status": "SUCCEEDED", "output": {"n": 5, "sum": {"total": 99}}}


RETRIED = {"Type": "Task", "Resource": "count:add",
           "Retry": [{"ErrorEquals": ["Other"], "MaxAttempts": 5},
                     {"ErrorEquals": ["Flaky"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 2}],
           "Catch": [{"ErrorEquals": ["Other"], "Next": "Never"},
                     {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Recover"}],
           "End": True}
FLAKY = {"errorOutput": {"error": "Flaky", "cause": "try later"}}


def test_an_error_a_retrier_takes_is_retriable_with_the_back_off_it_would_wait():
    first = run_one_state(RETRIED, {"n": 1}, mock=FLAKY, inspection_level="DEBUG")
    assert (first["status"], first["error"], first["cause"]) == ("RETRIABLE", "Flaky", "try later")
    assert first["inspectionData"]["errorDetails"] == {"retryIndex": 1, "retryBackoffIntervalSeconds": 2}
    assert "nextState" not in first and "output" not in first
    second = run_one_state(RETRIED, {"n": 1}, mock=FLAKY, inspection_level="DEBUG", retrier_retry_count=1)
    assert second["inspectionData"]["errorDetails"] == {"retryIndex": 1, "retryBackoffIntervalSeconds": 6}


def test_once_the_retries_are_spent_the_catcher_takes_it():
    result = run_one_state(RETRIED, {"n": 1}, mock=FLAKY, inspection_level="DEBUG", retrier_retry_count=2)
    assert result["status"] == "CAUGHT_ERROR" and result["nextState"] == "Recover"
    assert result["output"] == {"n": 1, "failure": {"Error": "Flaky", "Cause": "try later"}}
    assert result["inspectionData"]["errorDetails"] == {"catchIndex": 1}


def test_an_error_nothing_handles_fails():
    bare = {key: value for key, value in RETRIED.items() if key not in ("Retry", "Catch")}
    assert run_one_state(bare, {"n": 1}, mock=FLAKY) == {"status": "FAILED", "error": "Flaky", "cause": "try later"}


def test_a_terminal_error_is_neither_retried_nor_caught():
    result = run_one_state(RETRIED, {"n": 1}, handlers={"count:add": lambda payload, context: "x" * 300_000})
    assert (result["status"], result["error"]) == ("FAILED", "States.DataLimitExceeded")


def test_a_task_that_waits_for_its_token_needs_a_mock():
    waiting = {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
               "Parameters": {"token.$": "$$.Task.Token"}, "ResultPath": "$.reply", "End": True}
    with pytest.raises(StateTestRefused, match="mock"):
        run_one_state(waiting, {}, handlers={"arn:aws:states:::sqs:sendMessage": lambda p, c: {}})
    assert run_one_state(waiting, {"a": 1}, mock={"result": {"ok": True}}) == {
        "status": "SUCCEEDED", "output": {"a": 1, "reply": {"ok": True}}}


def test_a_suspend_needs_a_mock_which_is_its_result():
    suspend = {"Type": "Task", "Resource": "module:suspend", "ResultPath": "$.answer", "End": True}
    with pytest.raises(StateTestRefused, match="mock"):
        run_one_state(suspend, {"a": 1}, handlers=default_handlers())
    assert run_one_state(suspend, {"a": 1}, mock={"result": {"ok": True}}) == {
        "status": "SUCCEEDED", "output": {"a": 1, "answer": {"ok": True}}}


def test_jsonata_task_arguments_output_and_variables():
    task = {"QueryLanguage": "JSONata", "Type": "Task", "Resource": "count:add",
            "Arguments": {"value": "{% $states.input.n * $factor %}"},
            "Output": {"got": "{% $states.result.value %}"}, "Assign": {"last": "{% $states.result.value %}"},
            "Next": "After"}
    result = run_one_state(task, {"n": 4}, handlers=Counting(), variables={"factor": 3}, inspection_level="TRACE")
    assert result == {"status": "SUCCEEDED", "output": {"got": 13}, "nextState": "After", "inspectionData": {
        "input": {"n": 4}, "afterArguments": {"value": 12}, "result": {"value": 13},
        "variables": {"factor": 3, "last": 13}}}


# -- Choice, Wait, Succeed, Fail ----------------------------------------------------------------------

CHOICE = {"Type": "Choice", "InputPath": "$.order",
          "Choices": [{"Variable": "$.total", "NumericGreaterThan": 100, "Next": "Review"},
                      {"Variable": "$.total", "NumericGreaterThan": 0, "Next": "Ship"}],
          "Default": "Reject"}


@pytest.mark.parametrize("total, next_state", [(500, "Review"), (5, "Ship"), (0, "Reject")])
def test_choice_names_the_next_state(total, next_state):
    result = run_one_state(CHOICE, {"order": {"total": total}}, inspection_level="DEBUG")
    assert result == {"status": "SUCCEEDED", "output": {"total": total}, "nextState": next_state,
                      "inspectionData": {"input": {"order": {"total": total}}, "afterInputPath": {"total": total}}}


def test_choice_without_a_match_or_default_fails():
    no_default = {key: value for key, value in CHOICE.items() if key != "Default"}
    assert run_one_state(no_default, {"order": {"total": -1}}) == {
        "status": "FAILED", "error": "States.NoChoiceMatched", "cause": "No Matches!"}


def test_wait_takes_no_time_and_goes_on():
    result = run_one_state({"Type": "Wait", "Seconds": 86400, "Next": "Later"}, {"a": 1})
    assert result == {"status": "SUCCEEDED", "output": {"a": 1}, "nextState": "Later"}


def test_wait_with_a_negative_seconds_path_fails():
    result = run_one_state({"Type": "Wait", "SecondsPath": "$.s", "End": True}, {"s": -1})
    assert result["status"] == "FAILED" and result["error"] == "States.Runtime"
    assert "negative value" in result["cause"]


def test_succeed_and_fail():
    assert run_one_state({"Type": "Succeed", "OutputPath": "$.keep"}, {"keep": [1], "drop": 2}) == {
        "status": "SUCCEEDED", "output": [1]}
    assert run_one_state({"Type": "Fail", "ErrorPath": "$.e", "Cause": "because"}, {"e": "Bad"}) == {
        "status": "FAILED", "error": "Bad", "cause": "because"}


# -- Parallel and Map ------------------------------------------------------------------------------

PARALLEL = {"Type": "Parallel", "Parameters": {"value.$": "$.n"}, "ResultSelector": {"both.$": "$[*].value"},
            "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "count:add", "End": True}}},
                         {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": "count:add",
                                                           "Parameters": {"value.$": "$.value", "by": 2},
                                                           "End": True}}}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}], "End": True}


def test_parallel_runs_its_branches_without_a_mock():
    counting = Counting()
    result = run_one_state(PARALLEL, {"n": 1}, handlers=counting)
    assert counting.calls == 2
    assert result == {"status": "SUCCEEDED", "output": {"both": [2, 3]}}


def test_a_mocked_parallel_runs_no_branch():
    counting = Counting()
    result = run_one_state(PARALLEL, {"n": 1}, handlers=counting, inspection_level="DEBUG",
                           mock={"result": [{"value": 7}, {"value": 8}]})
    assert counting.calls == 0
    assert result["output"] == {"both": [7, 8]}
    assert result["inspectionData"]["afterParameters"] == {"value": 1}
    caught = run_one_state(PARALLEL, {"n": 1}, handlers=counting, mock={"errorOutput": {"error": "Boom"}})
    assert (caught["status"], caught["nextState"], caught["output"]) == ("CAUGHT_ERROR", "Failed", {"Error": "Boom"})
    assert counting.calls == 0


MAP = {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "ToleratedFailureCount": 1,
       "ItemSelector": {"value.$": "$$.Map.Item.Value", "at.$": "$$.Map.Item.Index"},
       "ItemProcessor": {"StartAt": "Add", "States": {"Add": {"Type": "Task", "Resource": "count:add", "End": True}}},
       "ResultPath": "$.added", "End": True}


def test_map_shows_its_items_and_their_inputs():
    counting = Counting()
    result = run_one_state(MAP, {"items": [10, 20, 30]}, handlers=counting, inspection_level="DEBUG")
    assert counting.calls == 3
    assert result["output"] == {"items": [10, 20, 30], "added": [{"value": 11}, {"value": 21}, {"value": 31}]}
    data = result["inspectionData"]
    assert data["afterItemsPath"] == [10, 20, 30]
    assert data["afterItemSelector"] == [{"value": 10, "at": 0}, {"value": 20, "at": 1}, {"value": 30, "at": 2}]
    assert (data["maxConcurrency"], data["toleratedFailureCount"]) == (2, 1)
    assert "afterParameters" not in data


def test_a_mocked_map_runs_no_iteration():
    counting = Counting()
    result = run_one_state(MAP, {"items": [1, 2]}, handlers=counting, mock={"result": ["a", "b"]})
    assert counting.calls == 0
    assert result == {"status": "SUCCEEDED", "output": {"items": [1, 2], "added": ["a", "b"]}}


def test_map_iterations_that_wait_a_little_finish_too():
    waits = dict(MAP, ItemProcessor={"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 5, "End": True}}})
    result = run_one_state(waits, {"items": [1, 2, 3]})
    assert result["output"]["added"] == [{"value": 1, "at": 0}, {"value": 2, "at": 1}, {"value": 3, "at": 2}]


# -- which state, and what is refused -----------------------------------------------------------------

MACHINE = {"StartAt": "First", "States": {
    "First": {"Type": "Pass", "Next": "Fan"},
    "Fan": {"Type": "Map", "ItemProcessor": {"StartAt": "Inner", "States": {
        "Inner": {"Type": "Pass", "Result": "inner", "Next": "Last"},
        "Last": {"Type": "Succeed"}}}, "End": True}}}


def test_state_name_picks_a_state_of_a_machine_at_any_depth():
    assert run_one_state(MACHINE, {"x": 1}, state_name="First") == {
        "status": "SUCCEEDED", "output": {"x": 1}, "nextState": "Fan"}
    assert run_one_state(MACHINE, {"x": 1}, state_name="Inner") == {
        "status": "SUCCEEDED", "output": "inner", "nextState": "Last"}


@pytest.mark.parametrize("definition, options, message", [
    (MACHINE, {}, "stateName"),
    (MACHINE, {"state_name": "Nowhere"}, "not in the definition"),
    (PASS, {"state_name": "First"}, "whole state machine"),
    (PASS, {"mock": {"result": 1}}, "only for a Task, Map or Parallel"),
    (TASK, {"mock": {"result": 1, "errorOutput": {"error": "E"}}}, "either a result or an errorOutput"),
    (TASK, {"mock": {"errorOutput": {"cause": "no error"}}}, "needs an error"),
    (TASK, {"context": {"Execution": {}}}, "only with a mock"),
    (PASS, {"inspection_level": "LOUD"}, "inspectionLevel"),
    (PASS, {"variables": [1]}, "variables"),
    ([], {}, "JSON object"),
])
def test_what_cannot_be_tested_is_refused(definition, options, message):
    with pytest.raises(StateTestRefused, match=message):
        run_one_state(definition, {}, **options)


def test_an_invalid_state_is_an_invalid_definition():
    with pytest.raises(InvalidDefinition):
        run_one_state({"Type": "Pass", "Next": "X", "ResultPath": 5}, {})
    with pytest.raises(InvalidDefinition):
        run_one_state({"Type": "Nope", "End": True}, {})


def test_a_given_context_object_is_what_the_state_reads():
    task = {"Type": "Task", "Resource": "count:add", "Parameters": {"run.$": "$$.Execution.Name"},
            "End": True}
    result = run_one_state(task, {}, mock={"result": {}}, context={"Execution": {"Name": "nightly"}},
                           inspection_level="DEBUG")
    assert result["inspectionData"]["afterParameters"] == {"run": "nightly"}
