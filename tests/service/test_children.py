"""Child executions (states:startExecution) end to end through the service."""
from __future__ import annotations

import json

from chalicelib import run
from chalicelib.asl import VirtualClock

from ..api.test_api import get, post, start

REQUEST = {"item": "chair", "requester": "ria", "reason": "broken"}


def waiting_child(parent: dict) -> str:
    [waiting] = parent["continuations"]
    assert waiting["kind"] == "child"
    return waiting["detail"]["executionId"]


def test_parent_waits_for_a_child_that_suspends_and_resumes_when_it_ends(client):
    parent = start(client, "purchase", REQUEST)
    assert parent["status"] == "SUSPENDED"
    child = get(client, "/executions/" + waiting_child(parent))[1]
    assert (child["status"], child["stateMachine"]) == ("SUSPENDED", "approval")
    assert child["input"] == REQUEST
    assert child["parent"]["executionId"] == parent["executionId"]
    [question] = child["continuations"]
    status, child_done = post(client, f"/continuations/{question['id']}", {"decision": "approve"})
    assert status == 200 and child_done["status"] == "SUCCEEDED"
    final = get(client, "/executions/" + parent["executionId"])[1]
    assert final["status"] == "SUCCEEDED"
    assert final["output"] == {"ordered": "chair", "approval": final["output"]["approval"]}
    assert final["output"]["approval"].endswith(":approval:" + child["executionId"])


def test_rejected_child_takes_the_parent_to_cancelled(client):
    parent = start(client, "purchase", REQUEST)
    child = get(client, "/executions/" + waiting_child(parent))[1]
    post(client, f"/continuations/{child['continuations'][0]['id']}", {"decision": "reject"})
    assert get(client, "/executions/" + parent["executionId"])[1]["output"] == {"cancelled": "chair"}


def test_failed_child_fails_the_parent_task_with_task_failed(client):
    parent = start(client, "purchase", REQUEST)
    child = get(client, "/executions/" + waiting_child(parent))[1]
    post(client, f"/continuations/{child['continuations'][0]['id']}/failure", {"error": "Oops", "cause": "x"})
    final = get(client, "/executions/" + parent["executionId"])[1]
    assert (final["status"], final["error"]) == ("FAILED", "States.TaskFailed")
    cause = json.loads(final["cause"])
    assert (cause["Status"], cause["Error"], cause["Cause"]) == ("FAILED", "Oops", "x")


def inline_parent(resource: str) -> dict:
    return {"StartAt": "Child", "States": {"Child": {
        "Type": "Task", "Resource": resource, "End": True,
        "Parameters": {"StateMachineArn": "arn:aws:states:local:000000000000:stateMachine:incsquare",
                       "Input": {"value": 1}, "Name": "kid"}}}}


def test_start_without_sync_returns_the_child_arn_and_goes_on(client, monkeypatch):
    monkeypatch.setenv("ALLOWED_RESOURCES", "module:*,arn:aws:states:::states:startExecution*")
    status, parent = post(client, "/executions", {"definition": inline_parent(
        "arn:aws:states:::states:startExecution")})
    assert status == 200 and parent["status"] == "SUCCEEDED"
    assert set(parent["output"]) == {"ExecutionArn", "StartDate"}
    assert ":execution:incsquare:" in parent["output"]["ExecutionArn"]


def test_sync_child_that_ends_at_once_gives_its_description(client, monkeypatch):
    monkeypatch.setenv("ALLOWED_RESOURCES", "module:*,arn:aws:states:::states:startExecution*")
    definition = inline_parent("arn:aws:states:::states:startExecution.sync")
    definition["States"]["Child"]["Parameters"]["StateMachineArn"] = "approval"
    definition["States"]["Child"]["Parameters"]["Input"] = {"item": 1}  # fails at once: no $.requester
    status, parent = post(client, "/executions", {"definition": definition})
    assert parent["status"] == "FAILED" and parent["error"] == "States.TaskFailed"
    assert json.loads(parent["cause"])["Status"] == "FAILED"


def test_unknown_child_state_machine(client, monkeypatch):
    monkeypatch.setenv("ALLOWED_RESOURCES", "module:*,arn:aws:states:::states:startExecution*")
    definition = inline_parent("arn:aws:states:::states:startExecution.sync:2")
    definition["States"]["Child"]["Parameters"]["StateMachineArn"] = "nope"
    status, parent = post(client, "/executions", {"definition": definition})
    assert parent["error"] == "StepFunctions.StateMachineDoesNotExistException"


def test_child_resource_is_not_allowed_for_inline_definitions_by_default(client):
    status, error = post(client, "/executions", {"definition": inline_parent(
        "arn:aws:states:::states:startExecution")})
    assert status == 403 and error["error"] == "ResourceNotAllowed"


def test_child_resources_need_the_service():
    result = run(inline_parent("arn:aws:states:::states:startExecution"), {}, clock=VirtualClock())
    assert result["status"] == "FAILED" and "startExecution" in result["cause"]
