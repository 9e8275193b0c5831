"""Child executions: ``arn:aws:states:::states:startExecution`` (and ``.sync``, ``.sync:2``).

The child is a state machine from ``state_machines/`` started in this same
service. Without ``.sync`` the parent gets the child's ARN and goes on. With
``.sync`` the parent waits: if the child ends at once its description is the
task's result; otherwise the parent suspends (kind ``child``) and the child's
record remembers which suspension point of which parent to resume when it ends.
``.waitForTaskToken`` works as for any resource: the parent passes
``$$.Task.Token`` in the child's input and waits until it is redeemed. Such a
start may be made again after a crash (see ``calls``): without a ``Name`` the
child is named after the call's idempotency key, and starting is idempotent by
name, so there is still one child.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from ..asl import Suspend, TaskContext, TaskFailed
from ..config import settings
from . import catalog
from .statuses import FINISHED

START = "arn:aws:states:::states:startExecution"
MODES = {START: "async", START + ".sync": "sync", START + ".sync:2": "sync:2"}


def execution_arn(document: dict) -> str:
    """The child's ARN as the Step Functions API names it (the stage's region and account, its name)."""
    machine = document.get("stateMachine") or "inline"
    return f"{_prefix()}execution:{machine}:{document.get('name') or document['executionId']}"


def state_machine_arn(name: str) -> str:
    return f"{_prefix()}stateMachine:{name}"


def _prefix() -> str:
    config = settings()
    return f"arn:aws:states:{config.aws_region}:{config.aws_account_id}:"


def description(document: dict, mode: str) -> dict:
    """The child as DescribeExecution shows it (.sync: Input/Output as JSON text)."""
    as_text = mode != "sync:2"

    def shown(value: Any) -> Any:
        return json.dumps(value, separators=(",", ":")) if as_text else value

    out = {
        "ExecutionArn": execution_arn(document),
        "Input": shown(document.get("input")),
        "InputDetails": {"Included": True},
        "Name": document.get("name"),
        "StartDate": document.get("startDate"),
        "StateMachineArn": state_machine_arn(document.get("stateMachine") or "inline"),
        "Status": document["status"],
        "StopDate": document.get("stopDate"),
    }
    if document["status"] == "SUCCEEDED":
        out["Output"] = shown(document.get("output"))
        out["OutputDetails"] = {"Included": True}
    else:
        out["Error"] = document.get("error")
        out["Cause"] = document.get("cause")
    return out


def outcome(document: dict, mode: str) -> dict:
    """How the parent's task ends: ``{"result": ...}`` or ``{"error": ..., "cause": ...}``."""
    described = description(document, mode)
    if document["status"] == "SUCCEEDED":
        return {"result": described}
    return {"error": "States.TaskFailed", "cause": json.dumps(described, separators=(",", ":"))}


class ChildExecutions:
    """A resolver for the startExecution resources of the execution ``parent_id``.

    ``start`` starts an execution as the service does (``Executions.start``).
    """

    def __init__(self, start: Callable[..., dict] | None, parent_id: str):
        self.start_execution = start
        self.parent_id = parent_id

    def resolve(self, resource: str):
        mode = MODES.get(resource)
        if mode is None or self.start_execution is None:
            return None
        return lambda payload, context: self.start(mode, payload, context)

    def start(self, mode: str, payload: Any, context: TaskContext) -> Any:
        if not isinstance(payload, dict) or not isinstance(payload.get("StateMachineArn"), str):
            raise TaskFailed("StepFunctions.InvalidArnException", "StateMachineArn must be a string")
        arn = payload["StateMachineArn"]
        name = arn.rsplit(":", 1)[-1]
        text = catalog.load_text(name)
        if text is None:
            raise TaskFailed("StepFunctions.StateMachineDoesNotExistException",
                             f"State Machine Does Not Exist: '{arn}'")
        child_input = payload.get("Input", {})
        if isinstance(child_input, str):
            try:
                child_input = json.loads(child_input)
            except ValueError:
                pass
        parent = None if mode == "async" else {"executionId": self.parent_id, "point": context.point,
                                                "mode": mode}
        document = self.start_execution(text, child_input, state_machine=name, trusted=True,
                                      name=payload.get("Name") or context.idempotency_key, parent=parent)
        if mode == "async":
            return {"ExecutionArn": execution_arn(document), "StartDate": document["startDate"]}
        if document["status"] in FINISHED:
            ended = outcome(document, mode)
            if "error" in ended:
                raise TaskFailed(ended["error"], ended["cause"])
            return ended["result"]
        return Suspend("child", {"executionId": document["executionId"]})
