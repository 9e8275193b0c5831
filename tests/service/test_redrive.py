"""Redrive: an execution that ended FAILED, TIMED_OUT or ABORTED runs again from where it stopped,
through the service on a real Redis, with a virtual clock. A counting task resource shows what ran again."""
from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from chalicelib.approvals import make_service as approval_service
from chalicelib.asl import TaskFailed, VirtualClock
from chalicelib.config import settings
from chalicelib.resources import default_handlers
from chalicelib.service import ServiceError
from chalicelib.store import Store

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z
DAY = 86400


class Work:
    """The resource ``count:work``: answers ``{"done": item}`` and counts its calls per item; an item in
    ``broken`` fails with ``Broken``, one in ``slow`` first takes two minutes (of the virtual clock). Each
    call notes the execution's stored status and redriveCount at that moment."""

    def __init__(self, clock: VirtualClock):
        self.clock = clock
        self.calls: Counter = Counter()
        self.payloads: list = []
        self.broken: set = set()
        self.slow: set = set()
        self.stored_at_call: list = []
        self.store: Store | None = None

    def __call__(self, payload, context):
        item = payload["item"]
        self.calls[item] += 1
        self.payloads.append(payload)
        record = self.store.load(context.execution["Name"])
        self.stored_at_call.append((record.status, record.document.get("redriveCount")) if record else None)
        if item in self.slow:
            self.slow.discard(item)
            self.clock.advance(120)
        if item in self.broken:
            raise TaskFailed("Broken", f"item {item} is broken")
        return {"done": item}


@pytest.fixture
def clock():
    return VirtualClock(START)


@pytest.fixture
def work(clock):
    return Work(clock)


def make(redis_client, clock, work, **overrides):
    store = Store(redis_client)
    work.store = store
    config = dataclasses.replace(settings(), **overrides)
    return approval_service(config, store, clock=clock, handlers=default_handlers({"count:work": work}))


@pytest.fixture
def service(redis_client, clock, work):
    return make(redis_client, clock, work)


def task(item, **more):
    return {"Type": "Task", "Resource": "count:work", "Parameters": {"item": item}, **more}


def start(service, definition, input=None):
    return service.start(definition, {} if input is None else input, state_machine=None, trusted=True)


def refusal(call, *args, **kwargs) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value


def history(service, execution_id):
    return [event["type"] for event in service.describe(execution_id)["history"]]


CHAIN = {"StartAt": "Prepare", "States": {
    "Prepare": {**task("prepare"), "Assign": {"order.$": "$.done"}, "ResultPath": "$.prepared", "Next": "Charge"},
    "Charge": {"Type": "Task", "Resource": "count:work", "Parameters": {"item": "charge", "order.$": "$order",
                                                                          "prepared.$": "$.prepared"},
               "ResultPath": "$.charged", "Next": "Finish"},
    "Finish": {"Type": "Pass", "Result": "finished", "ResultPath": "$.finish", "End": True}}}


def test_a_failed_execution_runs_again_from_the_state_that_failed(service, work):
    work.broken.add("charge")
    failed = start(service, CHAIN, {"id": 7})
    assert (failed["status"], failed["error"]) == ("FAILED", "Broken")
    assert service.redrive_status(failed["executionId"]) == ("REDRIVABLE", None)
    work.broken.clear()
    redriven = service.redrive(failed["executionId"])
    assert redriven["executionId"] == failed["executionId"] and redriven["name"] == failed["name"]
    assert redriven["status"] == "SUCCEEDED"
    assert redriven["output"] == {"id": 7, "prepared": {"done": "prepare"}, "charged": {"done": "charge"},
                                  "finish": "finished"}
    assert "error" not in redriven and "cause" not in redriven
    assert (redriven["redriveCount"], redriven["redriveDate"]) == (1, "2027-01-15T08:00:00.000Z")
    assert work.calls == {"prepare": 1, "charge": 2}  # what succeeded did not run again
    # the state ran again with the input it had, and the variable assigned before the failure
    assert work.payloads[1] == work.payloads[2] == {"item": "charge", "order": "prepare",
                                                    "prepared": {"done": "prepare"}}
    types = history(service, failed["executionId"])
    assert types.index("ExecutionFailed") < types.index("ExecutionRedriven") < types.index("ExecutionSucceeded")
    redriven_event = next(e for e in service.describe(failed["executionId"])["history"]
                          if e["type"] == "ExecutionRedriven")
    assert redriven_event["redriveCount"] == 1


def test_the_redriven_task_is_called_only_once_the_redrive_is_stored(service, work):
    work.broken.add("charge")
    failed = start(service, CHAIN)
    work.broken.clear()
    service.redrive(failed["executionId"])
    # the start's calls come before its first commit; the redriven one after the redrive's commit
    assert work.stored_at_call == [None, None, ("RUNNING", 1)]


def test_an_execution_that_fails_again_is_redriven_again(service, work):
    work.broken.add("charge")
    failed = start(service, CHAIN)
    again = service.redrive(failed["executionId"])
    assert (again["status"], again["error"], again["redriveCount"]) == ("FAILED", "Broken", 1)
    work.broken.clear()
    done = service.redrive(failed["executionId"])
    assert (done["status"], done["redriveCount"]) == ("SUCCEEDED", 2)
    assert work.calls == {"prepare": 1, "charge": 3}


def test_a_timed_out_execution_runs_again_with_a_new_deadline(service, work, clock):
    timed = {"TimeoutSeconds": 60, **CHAIN}
    work.slow.add("charge")  # the first call takes 120 s: past the execution's 60
    out = start(service, timed)
    assert (out["status"], out["error"]) == ("TIMED_OUT", "States.Timeout")
    assert service.redrive_status(out["executionId"])[0] == "REDRIVABLE"
    redriven = service.redrive(out["executionId"])
    assert (redriven["status"], redriven["redriveCount"]) == ("SUCCEEDED", 1)
    assert work.calls == {"prepare": 1, "charge": 2}


def test_an_aborted_execution_waits_again_where_it_was_stopped(service, work):
    asking = {"StartAt": "Prepare", "States": {
        "Prepare": {**task("prepare"), "ResultPath": "$.prepared", "Next": "Ask"},
        "Ask": {"Type": "Task", "Resource": "module:suspend", "Next": "Finish"},
        "Finish": {"Type": "Pass", "End": True}}}
    waiting = start(service, asking, {"id": 1})
    [first] = waiting["continuations"]
    assert service.abort(waiting["executionId"])["status"] == "ABORTED"
    redriven = service.redrive(waiting["executionId"])
    assert (redriven["status"], redriven["redriveCount"]) == ("SUSPENDED", 1)
    [second] = redriven["continuations"]
    assert second["state"] == "Ask" and second["id"] != first["id"]
    assert refusal(service.redeem, first["id"], result={"ok": 1}).status == 410  # closed by the stop
    done = service.redeem(second["id"], result={"ok": True})
    assert done["status"] == "SUCCEEDED"
    assert service.describe(waiting["executionId"])["output"] == {"id": 1, "prepared": {"done": "prepare"},
                                                                  "ok": True}
    assert work.calls == {"prepare": 1}


MAP = {"StartAt": "Each", "States": {"Each": {
    "Type": "Map", "ItemsPath": "$.items", "ToleratedFailureCount": 2,
    "ItemSelector": {"item.$": "$$.Map.Item.Value"},
    "ItemProcessor": {"StartAt": "Work", "States": {"Work": {
        "Type": "Task", "Resource": "count:work", "End": True}}},
    "End": True}}}


def test_a_map_where_3_of_100_iterations_failed_reruns_only_those_3(service, work):
    work.broken.update({7, 42, 99})
    failed = start(service, MAP, {"items": list(range(100))})
    assert (failed["status"], failed["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    assert sum(work.calls.values()) == 100
    work.broken.clear()
    redriven = service.redrive(failed["executionId"])
    assert redriven["status"] == "SUCCEEDED"
    assert redriven["output"] == [{"done": item} for item in range(100)]
    assert sum(work.calls.values()) == 103
    assert {item for item, calls in work.calls.items() if calls == 2} == {7, 42, 99}


def test_inside_an_iteration_only_the_failed_state_runs_again(service, work):
    nested = {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items",
        "ItemProcessor": {"StartAt": "First", "States": {
            "First": {"Type": "Task", "Resource": "count:work", "Parameters": {"item.$": "States.Format('first {}', $)"},
                      "ResultPath": "$.first", "Next": "Second"},
            "Second": {"Type": "Task", "Resource": "count:work",
                       "Parameters": {"item.$": "States.Format('second {}', $.n)"}, "End": True}}},
        "End": True}}}
    work.broken.add("second 1")
    failed = start(service, nested, {"items": [{"n": 0}, {"n": 1}, {"n": 2}]})
    assert failed["status"] == "FAILED"
    work.broken.clear()
    redriven = service.redrive(failed["executionId"])
    assert redriven["output"] == [{"done": "second 0"}, {"done": "second 1"}, {"done": "second 2"}]
    assert work.calls["second 1"] == 2 and work.calls["second 0"] == work.calls["second 2"] == 1
    assert all(work.calls[key] == 1 for key in work.calls if str(key).startswith("first"))


def test_a_parallel_reruns_only_its_failed_branch(service, work):
    parallel = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "A", "States": {"A": {**task("a"), "End": True}}},
        {"StartAt": "B", "States": {"B": {**task("b"), "End": True}}},
        {"StartAt": "C", "States": {"C": {**task("c"), "End": True}}}]}}}
    work.broken.add("b")
    failed = start(service, parallel)
    assert failed["status"] == "FAILED"
    work.broken.clear()
    redriven = service.redrive(failed["executionId"])
    assert redriven["output"] == [{"done": "a"}, {"done": "b"}, {"done": "c"}]
    assert work.calls == {"a": 1, "b": 2, "c": 1}  # c had not started when b failed


def test_what_is_not_redrivable_is_refused_with_the_reason(service, work, clock):
    done = start(service, {"StartAt": "A", "States": {"A": {**task("a"), "End": True}}})
    refused = refusal(service.redrive, done["executionId"])
    assert (refused.status, refused.code) == (409, "ExecutionNotRedrivable")
    assert refused.message == "Execution is SUCCEEDED and cannot be redriven."
    waiting = start(service, {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "module:suspend",
                                                                   "End": True}}})
    assert refusal(service.redrive, waiting["executionId"]).message == "Execution is RUNNING and cannot be redriven."
    assert service.redrive_status(waiting["executionId"]) == (
        "NOT_REDRIVABLE", "Execution is RUNNING and cannot be redriven")
    assert refusal(service.redrive, "no-such-execution").code == "ExecutionNotFound"


def test_an_execution_is_redrivable_for_14_days_after_it_ended(service, work, clock):
    work.broken.add("charge")
    first, second = start(service, CHAIN), start(service, CHAIN)
    work.broken.clear()
    clock.advance(14 * DAY)
    assert service.redrive(first["executionId"])["status"] == "SUCCEEDED"
    clock.advance(1)
    refused = refusal(service.redrive, second["executionId"])
    assert (refused.code, refused.message) == ("ExecutionNotRedrivable", "Execution redrivable period exceeded.")
    assert service.redrive_status(second["executionId"]) == ("NOT_REDRIVABLE", "Execution redrivable period exceeded")


def test_a_client_token_answers_the_redrive_it_made_for_15_minutes(service, work, clock):
    work.broken.add("charge")
    failed = start(service, CHAIN)
    first = service.redrive(failed["executionId"], client_token="retry-1")
    assert (first["status"], first["redriveCount"]) == ("FAILED", 1)
    again = service.redrive(failed["executionId"], client_token="retry-1")
    assert (again["redriveCount"], again["redriveDate"]) == (1, first["redriveDate"])
    assert work.calls["charge"] == 2  # no second redrive
    clock.advance(15 * 60)
    assert service.redrive(failed["executionId"], client_token="retry-1")["redriveCount"] == 2
    assert service.redrive(failed["executionId"], client_token="other")["redriveCount"] == 3


def test_a_snapshot_larger_than_redrive_max_bytes_is_not_kept(redis_client, clock, work):
    service = make(redis_client, clock, work, redrive_max_bytes=200)
    work.broken.add("charge")
    failed = start(service, CHAIN, {"padding": "x" * 500})
    status, reason = service.redrive_status(failed["executionId"])
    assert status == "NOT_REDRIVABLE" and "REDRIVE_MAX_BYTES" in reason
    assert refusal(service.redrive, failed["executionId"]).code == "ExecutionNotRedrivable"


def test_a_failed_execution_keeps_its_snapshot_and_definition_as_long_as_its_record(service, work, redis_client):
    work.broken.add("charge")
    failed = start(service, CHAIN)
    record = service.store.load(failed["executionId"])
    assert record.snapshot is None and record.redrive["snapshot"]["root"]["at"] == "Charge"
    execution_ttl = redis_client.ttl(service.store.execution_key(failed["executionId"]))
    definition_ttl = redis_client.ttl(service.store.definition_key(record.definition_hash))
    assert 0 < execution_ttl <= definition_ttl
