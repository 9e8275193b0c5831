"""The Step Functions API's views of executions over time: GetExecutionHistory, ListExecutions,
StartSyncExecution.

``GetExecutionHistory`` reads the same events as the REST history (``GET /executions/{id}``)
and names them as AWS does: a state's entry and exit by its type (``TaskStateEntered``,
``ChoiceStateExited``, ...), a task's scheduling, start (the execution waits on it: a
suspension point) and outcome, with AWS's ``*EventDetails``. Events AWS has no type for
(timers, retries scheduled, heartbeats) are left out; ``id`` numbers the events shown,
``previousEventId`` is the one before. A task that waits (a token, a person) reads as AWS's
``.waitForTaskToken`` does: scheduled, started, submitted (its call was made), and
succeeded or failed when it is answered; a task an event answered (``module:event``) has that
event's ``eventId``, ``source`` and ``detailType`` as its ``TaskSucceeded`` output.
"""
from __future__ import annotations

from typing import Any, Iterator

from ..service import ServiceError
from ..service.calls import idempotency_key
from ..service.listing import MAX_LIMIT
from ..service.map_runs import map_run_arn
from .sfn_map_runs import map_run
from .sfn_protocol import (STATUSES, AwsError, Protocol, check_name, epoch, invalid_token, json_text, next_token,
                           page_of, page_size, parse_json_field, read_token)

#: The execution document's statuses an AWS status filter covers (a suspended execution is RUNNING).
FILTERS = {"RUNNING": ("RUNNING", "SUSPENDED"), "SUCCEEDED": ("SUCCEEDED",), "FAILED": ("FAILED",),
           "TIMED_OUT": ("TIMED_OUT",), "ABORTED": ("ABORTED",), "PENDING_REDRIVE": ()}


def states_of(definition: dict) -> dict[str, dict]:
    """Every state by name, nested ones (Parallel branches, Map processors) included."""
    found: dict[str, dict] = {}

    def visit(states: Any) -> None:
        for name, spec in (states or {}).items() if isinstance(states, dict) else ():
            if not isinstance(spec, dict):
                continue
            found.setdefault(name, spec)
            for branch in spec.get("Branches") or []:
                visit(branch.get("States"))
            for key in ("ItemProcessor", "Iterator"):
                if isinstance(spec.get(key), dict):
                    visit(spec[key].get("States"))

    visit(definition.get("States"))
    return found


def split_resource(resource: str) -> tuple[str, str]:
    """AWS's (resourceType, resource): ``arn:aws:states:::lambda:invoke`` is ("lambda", "invoke")."""
    if resource.startswith("arn:aws:states:::"):
        kind, _, rest = resource[len("arn:aws:states:::"):].partition(":")
        return kind, rest or kind
    if resource.startswith("arn:aws:lambda:"):
        return "lambda", resource
    kind, sep, rest = resource.partition(":")
    return (kind, rest) if sep else ("task", resource)


#: The service's events of an activity task (see ``Events.activity``).
ACTIVITY_EVENTS = frozenset({"TaskScheduled", "TaskSucceeded", "ActivityStarted", "ExecutionResumed", "StateFailed"})
TIMEOUTS = ("States.Timeout", "States.HeartbeatTimeout")


class Events:
    """Turns the service's history events into AWS's."""

    def __init__(self, protocol: Protocol, document: dict, definition: dict, with_data: bool):
        self.protocol = protocol
        self.document = document
        self.states = states_of(definition)
        self.with_data = with_data

    def data(self, field: str, value: Any) -> dict:
        """``field`` as JSON text and its ``*Details`` (left out without ``includeExecutionData``)."""
        shown = {field: json_text(value)} if self.with_data else {}
        return {**shown, f"{field}Details": {"truncated": False}}

    def resource(self, state: str | None) -> dict:
        kind, name = split_resource(str(self.states.get(state or "", {}).get("Resource", "")))
        return {"resourceType": kind, "resource": name}

    def map_run_arn(self, state: str, point: str) -> str:
        """The ARN of the map run a Distributed Map started at ``point`` (see ``service.map_runs``)."""
        label = self.states.get(state, {}).get("Label")
        return map_run_arn(self.protocol.arns.execution(self.document), state, label,
                           idempotency_key(self.document["executionId"], point))

    def convert(self, event: dict, following: dict) -> Iterator[tuple[str, str, dict]]:
        """(AWS type, its details member, details) for one of the service's events (or none).

        ``following`` is the next event: a task's call made before it waits is ``TaskSubmitted``,
        and its resumption ``TaskSucceeded`` unless the task fails with the answer.
        """
        kind, state = event.get("type", ""), event.get("state")
        state_type = self.states.get(state or "", {}).get("Type", "Task")
        waits_next = following.get("type") == "ExecutionSuspended" and following.get("state") == state
        if kind in ACTIVITY_EVENTS and state_type == "Task" and ":activity:" in self.resource(state)["resource"]:
            yield from self.activity(kind, event, following)
        elif kind == "ExecutionStarted":
            yield "ExecutionStarted", "executionStartedEventDetails", {
                **self.data("input", event.get("input")),
                "roleArn": f"arn:aws:iam::{self.protocol.config.aws_account_id}:role/"
                           f"{self.document.get('stateMachine') or 'inline'}-role"}
        elif kind == "StateEntered":
            yield f"{state_type}StateEntered", "stateEnteredEventDetails", {
                "name": state, **self.data("input", event.get("input"))}
        elif kind.endswith("StateExited") and state_type != "Fail":
            yield f"{state_type}StateExited", "stateExitedEventDetails", {
                "name": state, **self.data("output", event.get("output"))}
        elif kind == "TaskScheduled":
            yield "TaskScheduled", "taskScheduledEventDetails", {
                **self.resource(state), "region": self.protocol.config.aws_region,
                "parameters": json_text(event.get("parameters"))}
            yield "TaskStarted", "taskStartedEventDetails", self.resource(state)
        elif kind == "TaskSucceeded":
            yield ("TaskSubmitted", "taskSubmittedEventDetails", self.resource(state)) if waits_next \
                else ("TaskSucceeded", "taskSucceededEventDetails", self.resource(state))
        elif kind == "ExecutionSuspended" and event.get("kind") == "map-run":
            yield "MapRunStarted", "mapRunStartedEventDetails", {"mapRunArn": self.map_run_arn(state, event["point"])}
        elif kind == "ExecutionResumed" and state_type == "Map":
            if following.get("type") == "StateFailed" and following.get("state") == state:
                yield "MapRunFailed", "mapRunFailedEventDetails", {
                    k: following[k] for k in ("error", "cause") if following.get(k) is not None}
            else:
                yield "MapRunSucceeded", "", {}
        elif kind == "ExecutionResumed" and state_type == "Task":
            if not (following.get("type") == "StateFailed" and following.get("state") == state):
                answered = "event" in event or "output" in event  # by an event, or with a result
                answered_by = self.data("output", event.get("event", event.get("output"))) if answered else {}
                yield "TaskSucceeded", "taskSucceededEventDetails", {**self.resource(state), **answered_by}
        elif kind == "StateFailed" and state_type in ("Task", "Parallel", "Map"):
            failure = {"error": event.get("error") or "", "cause": event.get("cause") or ""}
            if state_type == "Task":
                yield "TaskFailed", "taskFailedEventDetails", {**self.resource(state), **failure}
            else:
                yield f"{state_type}StateFailed", "", {}
        elif kind in ("ParallelStateStarted", "ParallelStateSucceeded", "MapStateSucceeded"):
            yield kind, "", {}
        elif kind == "MapStateStarted":
            yield kind, "mapStateStartedEventDetails", {"length": event.get("length", 0)}
        elif kind == "ExecutionRedriven":
            yield kind, "executionRedrivenEventDetails", {"redriveCount": event.get("redriveCount", 1)}
        elif kind == "ExecutionSucceeded":
            yield kind, "executionSucceededEventDetails", self.data("output", event.get("output"))
        elif kind in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
            member = {"ExecutionFailed": "executionFailedEventDetails",
                      "ExecutionTimedOut": "executionTimedOutEventDetails",
                      "ExecutionAborted": "executionAbortedEventDetails"}[kind]
            yield kind, member, {k: event[k] for k in ("error", "cause") if event.get(k) is not None}

    def activity(self, kind: str, event: dict, following: dict) -> Iterator[tuple[str, str, dict]]:
        """A task of an activity, as AWS shows it: scheduled, started by a worker (its name), then
        succeeded, failed or timed out; a task of an activity that does not exist fails to be scheduled."""
        state = event.get("state") or ""
        spec = self.states.get(state, {})
        failure = {"error": following.get("error") or "", "cause": following.get("cause") or ""}
        if kind == "TaskScheduled":
            if following.get("type") == "StateFailed" and following.get("state") == state:
                yield "ActivityScheduleFailed", "activityScheduleFailedEventDetails", failure
                return
            limits = {f"{field}InSeconds": spec[key] for field, key in (("timeout", "TimeoutSeconds"),
                                                                       ("heartbeat", "HeartbeatSeconds"))
                      if isinstance(spec.get(key), int) and not isinstance(spec.get(key), bool)}
            yield "ActivityScheduled", "activityScheduledEventDetails", {
                "resource": spec["Resource"], **self.data("input", event.get("parameters")), **limits}
        elif kind == "ActivityStarted":
            yield kind, "activityStartedEventDetails", {k: event[k] for k in ("workerName",) if event.get(k)}
        elif kind == "ExecutionResumed":
            if following.get("type") == "StateFailed" and following.get("state") == state:
                kind = "ActivityTimedOut" if following.get("error") in TIMEOUTS else "ActivityFailed"
                yield kind, kind[0].lower() + kind[1:] + "EventDetails", failure
            else:
                yield "ActivitySucceeded", "activitySucceededEventDetails", \
                    self.data("output", event["output"]) if "output" in event else {}
        # TaskSucceeded (the task was queued) and StateFailed (shown with the event before it): nothing

    def all(self, events: list[dict]) -> list[dict]:
        out: list[dict] = []
        for index, event in enumerate(events):
            following = events[index + 1] if index + 1 < len(events) else {}
            for kind, member, details in self.convert(event, following):
                entry: dict[str, Any] = {"timestamp": epoch(event["timestamp"]), "type": kind,
                                         "id": len(out) + 1, "previousEventId": len(out)}
                if member:
                    entry[member] = details
                out.append(entry)
        return out


def get_execution_history(protocol: Protocol, params: dict) -> dict:
    document = protocol.execution(params["executionArn"])
    described = protocol.service.describe(document["executionId"])
    definition = protocol.service.definition_of(document["executionId"])
    events = Events(protocol, document, definition, params.get("includeExecutionData", True)).all(
        described["history"])
    if params.get("reverseOrder"):
        events.reverse()
    page, token = page_of(events, params)
    return {"events": page, **({"nextToken": token} if token else {})}


def list_executions(protocol: Protocol, params: dict) -> dict:
    """Newest first from the per-machine, per-status index of ``GET /executions``; a RUNNING filter
    lists the suspended executions, then the running ones (a token says which and where). With
    ``mapRunArn`` instead of ``stateMachineArn``: the run's child executions."""
    if ("stateMachineArn" in params) == ("mapRunArn" in params):
        raise AwsError("ValidationException", "Exactly one of stateMachineArn and mapRunArn must be given.")
    if "mapRunArn" in params:
        return list_map_run_children(protocol, params)
    [machine] = protocol.arns.parse(params["stateMachineArn"], "stateMachine", 1)
    if protocol.service.machines.get(machine) is None and machine != "inline":
        raise AwsError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{params['stateMachineArn']}'")
    limit = page_size(params, most=min(1000, MAX_LIMIT))
    statuses = FILTERS[params["statusFilter"]] if "statusFilter" in params else (None,)
    # the token: the step (which status of the filter) and the service's own token within it
    where = read_token(params, lambda w: isinstance(w, dict) and type(w.get("s")) is int
                       and 0 <= w["s"] < len(statuses) and isinstance(w.get("t", ""), str)) or {"s": 0}
    items: list[dict] = []
    step, token = where["s"], where.get("t")
    while step < len(statuses) and len(items) < limit:
        try:
            page = protocol.service.list_executions(state_machine=machine, status=statuses[step],
                                                    limit=limit - len(items), next_token=token)
        except ServiceError as error:
            if error.code == "InvalidRequest":
                raise invalid_token() from None
            raise
        items += page["executions"]
        token = page["nextToken"]
        if token is None:
            step += 1
    out: dict[str, Any] = {"executions": [_listed(protocol, item) for item in items]}
    if step < len(statuses):
        out["nextToken"] = next_token({"s": step, **({"t": token} if token else {})})
    return out


def list_map_run_children(protocol: Protocol, params: dict) -> dict:
    """A map run's STANDARD child executions, oldest first, from the run's index of the children its
    workers started (an EXPRESS run's children are not executions: none). A ``statusFilter`` keeps
    the page's children that have the status, so a page may hold fewer than ``maxResults``."""
    run_id, found = map_run(protocol, params["mapRunArn"])
    page, token = page_of(protocol.service.map_runs.children(run_id), params)
    wanted = FILTERS[params["statusFilter"]] if "statusFilter" in params else None
    out: dict[str, Any] = {"executions": [
        {**_listed(protocol, item), "mapRunArn": found["mapRunArn"], "itemCount": item["itemCount"]}
        for item in protocol.service.map_runs.child_summaries(run_id, page)
        if wanted is None or item["status"] in wanted]}
    if token is not None:
        out["nextToken"] = token
    return out


def _listed(protocol: Protocol, item: dict) -> dict:
    entry = {"executionArn": protocol.arns.execution(item),
             "stateMachineArn": protocol.arns.state_machine(item.get("stateMachine") or "inline"),
             "name": item["name"], "status": STATUSES.get(item["status"], item["status"]),
             "startDate": epoch(item["startDate"])}
    if item.get("stopDate"):
        entry["stopDate"] = epoch(item["stopDate"])
    return entry


SYNC_CAUSE = ("The execution did not end within the request: it waits for an answer (a suspension point), a "
              "timer or a longer run, which a synchronous execution cannot; it was stopped.")


def start_sync_execution(protocol: Protocol, params: dict) -> dict:
    """Start and answer the outcome. An execution that suspends or outlives the request's budget is
    stopped as TIMED_OUT (States.Timeout), as an express execution that runs past its limit; it is
    never handed to the background, so nothing runs on after the answer."""
    [machine] = protocol.arns.parse(params["stateMachineArn"], "stateMachine", 1)
    name = params.get("name")
    if name is not None:
        check_name(name)
    input = parse_json_field(params.get("input", "{}"), "InvalidExecutionInput", "execution input")
    document = protocol.start(machine, params["stateMachineArn"], input, name, dispatch=False)
    if document["status"] in ("SUSPENDED", "RUNNING"):
        try:
            document = protocol.service.executions.stop(
                document["executionId"], "TIMED_OUT", "States.Timeout", SYNC_CAUSE, "ExecutionTimedOut", "timed out")
        except ServiceError as error:
            if error.code != "ExecutionAlreadyFinished":
                raise
            document = protocol.service.describe(document["executionId"], with_history=False)
    out: dict[str, Any] = {
        "executionArn": protocol.arns.execution(document),
        "stateMachineArn": protocol.arns.state_machine(machine),
        "name": document["name"], "status": document["status"],
        "startDate": epoch(document["startDate"]), "stopDate": epoch(document["stopDate"]),
        "input": json_text(document.get("input")), "inputDetails": {"included": True},
        "billingDetails": {"billedMemoryUsedInMB": 0, "billedDurationInMilliseconds": 0},
    }
    if document["status"] == "SUCCEEDED":
        out["output"] = json_text(document.get("output"))
        out["outputDetails"] = {"included": True}
    if document["status"] == "ABORTED":
        out["status"] = "FAILED"
    for field in ("error", "cause"):
        if document.get(field) is not None:
            out[field] = document[field]
    return out


OPERATIONS = {
    "GetExecutionHistory": get_execution_history,
    "ListExecutions": list_executions,
    "StartSyncExecution": start_sync_execution,
}
