"""Activity tasks in the service: queued after the commit, handed out once, timed out on the virtual clock."""
from __future__ import annotations

import threading

import pytest

from chalicelib.approvals import make_service as approval_service
from chalicelib.asl import VirtualClock
from chalicelib.config import settings
from chalicelib.service import ServiceError
from chalicelib.store import Store

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z
ARN = "arn:aws:states:us-east-1:000000000000:activity:"


@pytest.fixture
def clock():
    return VirtualClock(START)


def make_service(redis, clock):
    return approval_service(settings(), Store(redis), clock=clock)


@pytest.fixture
def service(store_redis, clock):
    service = make_service(store_redis, clock)
    service.activities.create("add")
    return service


def task(**fields):
    return {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": ARN + "add", "End": True, **fields}}}


def start(service, definition, input=None):
    return service.start(definition, {"x": 1, "y": 2} if input is None else input, state_machine=None,
                         trusted=False)


def status(service, document) -> str:
    return service.describe(document["executionId"], with_history=False)["status"]


def types(service, document) -> list[str]:
    return [event["type"] for event in service.describe(document["executionId"])["history"]]


def test_a_task_is_queued_once_stored_and_handed_out_with_its_input(service):
    document = start(service, task(Parameters={"sum.$": "States.MathAdd($.x, $.y)"}))
    assert document["status"] == "SUSPENDED" and document["continuations"][0]["kind"] == "activity"
    assert service.activities.store.queued("add") == 1
    taken = service.activities.take("add", "w1", 1)
    assert taken == {"taskToken": document["continuations"][0]["id"], "input": '{"sum":3}'}
    history = service.describe(document["executionId"])["history"]
    [started] = [event for event in history if event["type"] == "ActivityStarted"]
    assert started["workerName"] == "w1" and started["state"] == "Work"
    service.redeem(taken["taskToken"], result={"total": 3})
    done = service.describe(document["executionId"], with_history=False)
    assert (done["status"], done["output"]) == ("SUCCEEDED", {"total": 3})


def test_nothing_queued_answers_none_after_the_poll(service):
    assert service.activities.take("add", "w1", 0.3) is None


def test_an_activity_that_does_not_exist_fails_the_task_with_states_runtime(service):
    document = start(service, task(Resource=ARN + "missing"))
    assert (document["status"], document["error"]) == ("FAILED", "States.Runtime")
    assert document["cause"] == ("An error occurred while executing the state 'Work' (entered at the event id #2). "
                                 f"The activity {ARN}missing does not exist.")  # AWS's, as its conformance case


def test_a_task_queued_twice_is_handed_out_once(service):
    """A push made again (the outbox redoes a call whose maker died) queues the task a second time."""
    document = start(service, task())
    service.activities.store.push("add", document["executionId"], "p1", 60)
    assert service.activities.take("add", "w1", 0.5) is not None
    assert service.activities.take("add", "w2", 0.3) is None
    assert types(service, document).count("ActivityStarted") == 1


def test_a_task_whose_execution_ended_while_queued_is_skipped(service):
    first = start(service, task())
    second = start(service, task(), {"x": 5, "y": 5})
    service.abort(first["executionId"])
    taken = service.activities.take("add", "w1", 1)
    assert taken["taskToken"] == second["continuations"][0]["id"]
    assert service.activities.take("add", "w1", 0.2) is None


def test_many_pollers_get_each_task_exactly_once(service, store_redis, clock):
    documents = [start(service, task(), {"x": i, "y": 0}) for i in range(40)]
    got: list[dict] = []
    lock = threading.Lock()

    def poll(worker: str) -> None:
        poller = make_service(store_redis, clock)
        while True:
            taken = poller.activities.take("add", worker, 0.5)
            if taken is None:
                return
            with lock:
                got.append(taken)

    threads = [threading.Thread(target=poll, args=(f"w{i}",)) for i in range(8)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    tokens = [taken["taskToken"] for taken in got]
    assert len(tokens) == 40 and set(tokens) == {d["continuations"][0]["id"] for d in documents}


RETRIED = task(HeartbeatSeconds=10, TimeoutSeconds=300,
               Retry=[{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 1, "IntervalSeconds": 1}])


def test_a_worker_that_took_a_task_and_died_times_out_and_retry_hands_it_to_another(service, clock):
    document = start(service, RETRIED)
    first = service.activities.take("add", "dies", 1)
    clock.advance(9)
    assert service.tick()["fired"] == 0 and status(service, document) == "SUSPENDED"
    clock.advance(2)  # 11 s without a heartbeat: States.HeartbeatTimeout, which States.Timeout retries
    assert service.tick()["fired"] == 1
    second = service.activities.take("add", "lives", 1)
    assert second is not None and second["taskToken"] != first["taskToken"]
    with pytest.raises(ServiceError) as late:
        service.redeem(first["taskToken"], result="too late")
    assert late.value.code == "ContinuationExpired"
    service.redeem(second["taskToken"], result="done")
    done = service.describe(document["executionId"])
    assert (done["status"], done["output"]) == ("SUCCEEDED", "done")
    failed = [event for event in done["history"] if event["type"] == "StateFailed"]
    assert [event["error"] for event in failed] == ["States.HeartbeatTimeout"]
    workers = [event["workerName"] for event in done["history"] if event["type"] == "ActivityStarted"]
    assert workers == ["dies", "lives"]


def test_heartbeats_keep_a_taken_task_alive(service, clock):
    document = start(service, RETRIED)
    taken = service.activities.take("add", "w1", 1)
    for _ in range(5):
        clock.advance(8)
        service.heartbeat(taken["taskToken"])
        service.tick()
    assert status(service, document) == "SUSPENDED"
    service.redeem(taken["taskToken"], result=1)
    assert status(service, document) == "SUCCEEDED"


def test_a_queued_task_has_no_heartbeat_clock_until_a_worker_takes_it(service, clock):
    document = start(service, RETRIED)
    clock.advance(100)  # past HeartbeatSeconds, not TimeoutSeconds: nobody took it yet
    service.tick()
    assert status(service, document) == "SUSPENDED"
    taken = service.activities.take("add", "w1", 1)
    clock.advance(11)
    service.tick()  # now it counts: retried
    assert service.activities.take("add", "w2", 1)["taskToken"] != taken["taskToken"]


def test_timeout_seconds_counts_from_scheduling_and_skips_the_queued_task(service, clock):
    document = start(service, task(TimeoutSeconds=30))
    clock.advance(31)
    service.tick()
    done = service.describe(document["executionId"], with_history=False)
    assert (done["status"], done["error"]) == ("FAILED", "States.Timeout")
    assert service.activities.take("add", "w1", 0.3) is None


def test_the_registry_is_idempotent_by_name(service, clock):
    first, created = service.activities.create("other")
    clock.advance(5)
    again, created_again = service.activities.create("other")
    assert (created, created_again) == (True, False) and again.created == first.created == START
    with pytest.raises(ServiceError) as refused:
        service.activities.create("other", {"type": "CUSTOMER_MANAGED_KMS_KEY", "kmsKeyId": "k"})
    assert refused.value.code == "ActivityAlreadyExists"
    assert service.activities.names(None, 10) == (["add", "other"], False)
    assert service.activities.names(None, 1) == (["add"], True)
    assert service.activities.names("add", 1) == (["other"], False)
    service.activities.delete("other")
    assert service.activities.get("other") is None and service.activities.names(None, 10) == (["add"], False)


def test_tasks_in_parallel_branches_are_handed_out_once_each_and_join(service, clock):
    """Branches of a root Parallel are stored apart: taking a task marks it started in its own branch."""
    def branch(name: str) -> dict:
        return {"StartAt": name, "States": {name: {"Type": "Task", "Resource": ARN + "add", "HeartbeatSeconds": 10,
                                                   "TimeoutSeconds": 300, "End": True}}}

    document = start(service, {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True,
                                                                      "Branches": [branch("A"), branch("B")]}}})
    first = service.activities.take("add", "w1", 1)
    second = service.activities.take("add", "w2", 1)
    assert {first["taskToken"], second["taskToken"]} == {c["id"] for c in document["continuations"]}
    record = service.runs.load(document["executionId"])
    for point in record.open:  # each pushed again: neither is handed out a second time
        service.activities.store.push("add", document["executionId"], point, 60)
    assert service.activities.take("add", "w3", 0.3) is None
    clock.advance(9)
    service.heartbeat(first["taskToken"])
    clock.advance(2)  # the second task's heartbeat lapsed (10 s since w2 took it), the first one's not
    service.tick()
    done = service.describe(document["executionId"])
    assert (done["status"], done["error"]) == ("FAILED", "States.HeartbeatTimeout")  # the branch failed the Parallel
    by_worker = {e["workerName"]: e["state"] for e in done["history"] if e["type"] == "ActivityStarted"}
    [failed] = [e["state"] for e in done["history"] if e["type"] == "StateFailed" and e.get("state") in ("A", "B")]
    assert failed == by_worker["w2"] and sorted(by_worker.values()) == ["A", "B"]


def test_a_hand_off_that_fails_before_its_commit_puts_the_task_back(service, monkeypatch):
    document = start(service, task())
    later = start(service, task(), {"x": 0, "y": 0})
    commit = service.runs.commit

    def unreachable(change):
        raise ConnectionError("the store went away")

    monkeypatch.setattr(service.runs, "commit", unreachable)
    with pytest.raises(ConnectionError):
        service.activities.take("add", "w1", 1)
    monkeypatch.setattr(service.runs, "commit", commit)
    assert service.activities.take("add", "w1", 1)["taskToken"] == document["continuations"][0]["id"]  # still first
    assert service.activities.take("add", "w1", 1)["taskToken"] == later["continuations"][0]["id"]
