"""Durable time: long Waits, Retry back-off, task timeouts, heartbeats, execution timeouts."""
from __future__ import annotations

import json
import threading
import time

import pytest

from chalicelib.service import catalog
from chalicelib.asl import TaskFailed, VirtualClock
from chalicelib.asl.clock import iso_timestamp
from chalicelib.config import settings
from chalicelib.approvals import make_service as approval_service
from chalicelib.service import ServiceError
from chalicelib.store import TIMERS_KEY, Store

from ..conftest import REDIS_URL
from ..crash_worker import kill_at


START = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.fixture
def clock():
    return VirtualClock(START)


def make_service(redis_client, clock, **kwargs):
    return approval_service(settings(), Store(redis_client), clock=clock, **kwargs)


@pytest.fixture
def service(store_redis, clock):
    return make_service(store_redis, clock)


def machine(*states):
    names = [n for n, _ in states]
    out = {}
    for i, (name, spec) in enumerate(states):
        spec = dict(spec)
        if spec["Type"] not in ("Succeed", "Fail", "Choice") and "Next" not in spec:
            spec.setdefault("End", True) if i + 1 == len(states) else spec.setdefault("Next", names[i + 1])
        out[name] = spec
    return {"StartAt": names[0], "States": out}


def start(service, definition, input=None):
    return service.start(definition, {} if input is None else input, state_machine=None, trusted=True)


def refused(call, *args, **kwargs) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value


def history_types(service, execution_id):
    return [e["type"] for e in service.describe(execution_id)["history"]]


WAIT_AN_HOUR = machine(("Wait", {"Type": "Wait", "Seconds": 3600}), ("After", {"Type": "Pass", "Result": "woke"}))


def test_long_wait_suspends_with_a_timer_and_fires_on_time_never_early(service, clock):
    document = start(service, WAIT_AN_HOUR)
    assert document["status"] == "SUSPENDED"
    assert document["timers"] == [{"state": "Wait", "branch": None, "purpose": "wait",
                                   "due": "2027-01-15T09:00:00.000Z"}]
    assert document["continuations"] == []
    clock.advance(3599)
    assert service.tick()["fired"] == 0
    assert service.describe(document["executionId"])["status"] == "SUSPENDED"
    clock.advance(1)
    assert service.tick()["fired"] == 1
    done = service.describe(document["executionId"])
    assert (done["status"], done["output"]) == ("SUCCEEDED", "woke")


def test_the_timer_set_expires_only_after_its_last_timer(service, clock, store_redis):
    start(service, WAIT_AN_HOUR)
    first = store_redis.ttl(TIMERS_KEY)
    assert 3600 < first <= 3600 + settings().retention_seconds
    start(service, machine(("Wait", {"Type": "Wait", "Seconds": 30 * 86400}), ("After", {"Type": "Pass"})))
    assert store_redis.ttl(TIMERS_KEY) >= 30 * 86400 + settings().retention_seconds - 5
    start(service, WAIT_AN_HOUR)  # a nearer timer never shortens it
    assert store_redis.ttl(TIMERS_KEY) >= 30 * 86400


def test_short_wait_runs_inline(service, clock):
    document = start(service, machine(("Wait", {"Type": "Wait", "Seconds": 3}), ("After", {"Type": "Pass"})))
    assert document["status"] == "SUCCEEDED"
    assert clock.now() == START + 3


@pytest.mark.parametrize("spec, data", [
    ({"SecondsPath": "$.s"}, {"s": 86400}),
    ({"Timestamp": "2027-01-16T08:00:00Z"}, {}),
    ({"TimestampPath": "$.t"}, {"t": "2027-01-16T08:00:00Z"}),
])
def test_wait_variants_become_timers(service, clock, spec, data):
    document = start(service, machine(("Wait", {"Type": "Wait", **spec}), ("After", {"Type": "Pass"})), data)
    assert document["timers"][0]["due"] == "2027-01-16T08:00:00.000Z"
    clock.set(START + 86400)
    service.tick()
    assert service.describe(document["executionId"])["status"] == "SUCCEEDED"


def test_timer_survives_a_process_restart(store_redis, clock):
    document = start(make_service(store_redis, clock), WAIT_AN_HOUR)
    assert store_redis.zcard(TIMERS_KEY) == 1
    later = VirtualClock(START + 3600)  # a new process, a new client, the same Redis
    assert make_service(store_redis, later).tick()["fired"] == 1
    assert make_service(store_redis, later).describe(document["executionId"])["status"] == "SUCCEEDED"


def test_long_retry_backoff_becomes_a_timer(store_redis, clock):
    calls = []

    def flaky(payload, context):
        calls.append(clock.now())
        if len(calls) < 3:
            raise TaskFailed("Busy", "try later")
        return {"ok": True}

    service = make_service(store_redis, clock, handlers={"test:flaky": flaky})
    definition = machine(("Call", {"Type": "Task", "Resource": "test:flaky", "Retry": [
        {"ErrorEquals": ["Busy"], "IntervalSeconds": 60, "BackoffRate": 2, "MaxDelaySeconds": 100}]}))
    document = start(service, definition)
    assert document["timers"][0]["purpose"] == "retry"
    clock.advance(60)
    service.tick()
    assert service.describe(document["executionId"])["timers"][0]["due"] == "2027-01-15T08:02:40.000Z"
    clock.advance(100)
    service.tick()
    assert service.describe(document["executionId"])["output"] == {"ok": True}
    assert [t - START for t in calls] == [0, 60, 160]


APPROVAL_INPUT = {"item": "desk", "requester": "lee", "reason": "new hire"}


def test_unanswered_task_times_out_and_catch_takes_the_timeout_path(service, clock):
    document = start(service, catalog.load_text("approval"), APPROVAL_INPUT)
    ident = document["continuations"][0]["id"]
    clock.advance(7 * 86400)
    error = refused(service.redeem, ident, result={"decision": "approve"})
    assert (error.status, error.code) == (410, "ContinuationExpired")  # before the ticker runs, too
    assert service.tick()["fired"] == 1
    done = service.describe(document["executionId"])
    assert done["status"] == "SUCCEEDED"
    assert done["output"] == {"outcome": "rejected", "reason": "no decision in time", "request": APPROVAL_INPUT}
    assert refused(service.redeem, ident, result={}).status == 410
    info = service.describe_continuation(ident)
    assert (info["status"], info["reason"]) == ("closed", "timeout")


def test_answered_task_drops_its_timeout_timer(service, clock, store_redis):
    document = start(service, catalog.load_text("approval"), APPROVAL_INPUT)
    service.redeem(document["continuations"][0]["id"], result={"decision": "approve"})
    clock.advance(8 * 86400)
    counts = service.tick()
    assert counts["fired"] == 1  # the timer is removed without effect
    assert service.describe(document["executionId"])["output"]["outcome"] == "approved"
    assert store_redis.zcard(TIMERS_KEY) == 0


def test_timeout_racing_a_redemption_has_exactly_one_outcome(store_redis, clock):
    for round_ in range(6):
        service = make_service(store_redis, clock)
        definition = {"StartAt": "Ask", "States": {
            "Ask": {"Type": "Task", "Resource": "module:suspend", "TimeoutSeconds": 10, "Next": "Done",
                    "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Late"}]},
            "Done": {"Type": "Pass", "Result": "answered", "End": True},
            "Late": {"Type": "Pass", "Result": "timed out", "End": True}}}
        document = start(service, definition)
        ident = document["continuations"][0]["id"]
        clock.advance(10 if round_ % 2 else 9.999)
        results = []
        barrier = threading.Barrier(2)

        def human():
            barrier.wait()
            try:
                results.append(("human", make_service(store_redis, clock).redeem(ident, result={})["output"]))
            except ServiceError as error:
                results.append(("human-refused", error.status))

        def ticker():
            barrier.wait()
            results.append(("ticker", make_service(store_redis, clock).tick()))

        threads = [threading.Thread(target=human), threading.Thread(target=ticker)]
        [t.start() for t in threads]
        [t.join(20) for t in threads]
        final = service.describe(document["executionId"])
        assert final["status"] == "SUCCEEDED"
        assert final["output"] in ("answered", "timed out")
        human_won = ("human", "answered") in results
        assert human_won == (final["output"] == "answered")
        resumed = [e for e in final["history"] if e["type"] == "ExecutionResumed"]
        assert len(resumed) == 1
        clock.advance(100)  # leave nothing due for the next round
        make_service(store_redis, clock).tick()


HEARTBEAT = machine(("Work", {"Type": "Task", "Resource": "module:suspend", "TimeoutSeconds": 3600,
                              "HeartbeatSeconds": 60}))


def test_heartbeat_extends_and_lapse_fails_with_heartbeat_timeout(service, clock):
    document = start(service, HEARTBEAT)
    ident = document["continuations"][0]["id"]
    clock.advance(50)
    beat = service.heartbeat(ident)
    assert beat["heartbeatAt"] == "2027-01-15T08:01:50.000Z"
    clock.advance(20)  # the first heartbeat deadline (60 s) has passed, the extended one (110 s) not
    assert service.tick() == {"fired": 0, "rescheduled": 0, "busy": 0, "calls": 0, "swept": 0}
    assert service.describe(document["executionId"])["status"] == "SUSPENDED"
    clock.advance(41)
    service.tick()
    done = service.describe(document["executionId"])
    assert (done["status"], done["error"]) == ("FAILED", "States.HeartbeatTimeout")
    assert refused(service.heartbeat, ident).status == 410


@pytest.mark.parametrize("beats", [1100])
def test_heartbeats_keep_one_event_per_task_and_never_evict_execution_started(service, clock, beats):
    """1,100 heartbeats (past HISTORY_LIMIT, 1,000): one TaskHeartbeat, the latest, counting them all;
    the history still starts with ExecutionStarted and still holds every other event."""
    document = start(service, HEARTBEAT, {"order": 7})
    ident = document["continuations"][0]["id"]
    before = service.describe(document["executionId"])["history"]
    for _ in range(beats):
        clock.advance(1)
        service.heartbeat(ident)
    history = service.describe(document["executionId"])["history"]
    assert history[0]["type"] == "ExecutionStarted" and history[0]["input"] == {"order": 7}
    beats_seen = [event for event in history if event["type"] == "TaskHeartbeat"]
    assert len(beats_seen) == 1 and beats_seen[0]["heartbeats"] == beats
    assert beats_seen[0]["timestamp"] == "2027-01-15T08:18:20.000Z"  # the last one, 1,100 s after the start
    assert history[:-1] == before
    done = service.redeem(ident, result={"ok": True})
    assert done["status"] == "SUCCEEDED"
    after = service.describe(document["executionId"])["history"]
    assert after[0]["type"] == "ExecutionStarted" and after[-1]["type"] == "ExecutionSucceeded"


def test_heartbeats_of_two_waiting_tasks_keep_one_event_each(service, clock):
    definition = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": name, "States": {name: {"Type": "Task", "Resource": "module:suspend", "HeartbeatSeconds": 60,
                                            "End": True}}} for name in ("A", "B")]}}}
    document = start(service, definition)
    first, second = (c["id"] for c in document["continuations"])
    for _ in range(3):
        service.heartbeat(first)
        service.heartbeat(second)
    service.heartbeat(first)
    history = service.describe(document["executionId"])["history"]
    beats = sorted((e["state"], e["heartbeats"]) for e in history if e["type"] == "TaskHeartbeat")
    assert beats == [("A", 4), ("B", 3)]


def test_heartbeat_on_unknown_or_used_continuations(service):
    assert refused(service.heartbeat, "x" * 26).status == 404
    document = start(service, HEARTBEAT)
    ident = document["continuations"][0]["id"]
    service.redeem(ident, result={})
    assert refused(service.heartbeat, ident).status == 409


def test_execution_timeout_seconds_ends_as_timed_out(service, clock):
    definition = machine(("Ask", {"Type": "Task", "Resource": "module:suspend"}))
    definition["TimeoutSeconds"] = 100
    document = start(service, definition)
    ident = document["continuations"][0]["id"]
    clock.advance(99)
    service.tick()
    assert service.describe(document["executionId"])["status"] == "SUSPENDED"
    clock.advance(1)
    service.tick()
    done = service.describe(document["executionId"])
    assert (done["status"], done["error"]) == ("TIMED_OUT", "States.Timeout")
    assert "ExecutionTimedOut" in [e["type"] for e in done["history"]]
    assert refused(service.redeem, ident, result={}).status == 410


def timed_out_at(document: dict, seconds: float) -> bool:
    """TIMED_OUT with States.Timeout, stopped and with its last event at START + ``seconds``."""
    when = iso_timestamp(START + seconds)
    last = document["history"][-1]
    return ((document["status"], document["error"], document["stopDate"]) == ("TIMED_OUT", "States.Timeout", when)
            and (last["type"], last["timestamp"]) == ("ExecutionTimedOut", when))


def test_a_timer_wait_past_the_execution_timeout_ends_at_the_deadline(service, clock):
    definition = machine(("Wait", {"Type": "Wait", "Seconds": 100}))
    definition["TimeoutSeconds"] = 5
    document = start(service, definition)
    assert document["timers"][0]["due"] == "2027-01-15T08:01:40.000Z"
    clock.advance(4)
    service.tick()
    assert service.describe(document["executionId"])["status"] == "SUSPENDED"
    clock.advance(1)
    service.tick()
    assert timed_out_at(service.describe(document["executionId"]), 5)
    clock.advance(200)
    service.tick()  # the Wait's own timer fires into nothing
    assert timed_out_at(service.describe(document["executionId"]), 5)


def test_a_late_tick_still_stops_the_execution_at_its_deadline(service, clock):
    definition = machine(("Wait", {"Type": "Wait", "Seconds": 100}))
    definition["TimeoutSeconds"] = 5
    document = start(service, definition)
    clock.advance(50)
    service.tick()
    assert timed_out_at(service.describe(document["executionId"]), 5)


def test_an_inline_wait_past_the_execution_timeout_times_out_at_once(service, clock):
    definition = {"TimeoutSeconds": 1, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3, "End": True}}}
    document = start(service, definition)
    assert document["status"] == "TIMED_OUT"
    assert timed_out_at(service.describe(document["executionId"]), 1)


def test_a_task_that_outlives_the_execution_timeout_times_out_at_the_deadline(store_redis, clock):
    def slow(payload, context):
        clock.advance(30)
        return payload

    service = make_service(store_redis, clock, handlers={"slow:work": slow})
    definition = machine(("Work", {"Type": "Task", "Resource": "slow:work"}))
    definition["TimeoutSeconds"] = 10
    document = start(service, definition)
    assert document["status"] == "TIMED_OUT"
    assert timed_out_at(service.describe(document["executionId"]), 10)


def test_a_suspended_task_past_the_execution_timeout_refuses_answers_and_closes_on_the_timer(service, clock):
    definition = machine(("Ask", {"Type": "Task", "Resource": "module:suspend", "TimeoutSeconds": 3600}))
    definition["TimeoutSeconds"] = 100
    document = start(service, definition)
    [continuation] = document["continuations"]
    assert continuation["expiresAt"] == "2027-01-15T08:01:40.000Z"  # the execution's deadline, not the task's
    clock.advance(100)
    error = refused(service.redeem, continuation["id"], result={})
    assert (error.status, error.code) == (410, "ContinuationExpired")  # before the ticker runs, too
    assert refused(service.heartbeat, continuation["id"]).status == 410
    service.tick()
    assert timed_out_at(service.describe(document["executionId"]), 100)
    info = service.describe_continuation(continuation["id"])
    assert (info["status"], info["reason"]) == ("closed", "timeout")


def test_a_parallel_whose_branch_waits_times_out_at_the_deadline_closing_every_continuation(service, clock):
    def branch(name, spec):
        return {"StartAt": name, "States": {name: {**spec, "End": True}}}

    definition = machine(("Fork", {"Type": "Parallel", "Branches": [
        branch("Pause", {"Type": "Wait", "Seconds": 600}),
        branch("Ask", {"Type": "Task", "Resource": "module:suspend"})]}))
    definition["TimeoutSeconds"] = 60
    document = start(service, definition)
    assert [t["branch"] for t in document["timers"]] == ["Fork[0]"]
    [continuation] = document["continuations"]
    clock.advance(60)
    service.tick()
    done = service.describe(document["executionId"])
    assert timed_out_at(done, 60) and done["continuations"] == [] and "timers" not in done
    assert service.describe_continuation(continuation["id"])["status"] == "closed"
    inline = machine(("Fork", {"Type": "Parallel", "Branches": [
        branch("Quick", {"Type": "Pass"}), branch("Slow", {"Type": "Wait", "Seconds": 3})]}))
    inline["TimeoutSeconds"] = 2
    fast = start(service, inline)
    assert fast["status"] == "TIMED_OUT"
    assert timed_out_at(service.describe(fast["executionId"]), 60 + 2)


def test_parallel_branches_wait_in_the_request_at_the_same_time_within_the_execution_timeout(service, clock):
    def branch(name, seconds):
        return {"StartAt": name, "States": {name: {"Type": "Wait", "Seconds": seconds, "End": True}}}

    definition = machine(("Fork", {"Type": "Parallel", "Branches": [branch("Three", 3), branch("Four", 4)]}))
    definition["TimeoutSeconds"] = 5
    document = start(service, definition, {"n": 1})
    assert (document["status"], document["output"]) == ("SUCCEEDED", [{"n": 1}, {"n": 1}])
    assert document["stopDate"] == iso_timestamp(START + 4)


def test_two_tickers_fire_each_of_hundreds_of_timers_exactly_once(store_redis, clock):
    service = make_service(store_redis, clock)
    executions = [start(service, WAIT_AN_HOUR, {"n": i})["executionId"] for i in range(300)]
    assert store_redis.zcard(TIMERS_KEY) == 300
    clock.advance(3600)
    tickers = [make_service(store_redis, clock), make_service(store_redis, clock)]
    totals = []
    barrier = threading.Barrier(2)

    def tick(ticker):
        barrier.wait()
        totals.append(ticker.tick(limit=1000))

    threads = [threading.Thread(target=tick, args=(t,)) for t in tickers]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    assert store_redis.zcard(TIMERS_KEY) == 0
    for execution_id in executions:
        document = service.describe(execution_id)
        assert document["status"] == "SUCCEEDED"
        assert [e["type"] for e in document["history"]].count("ExecutionResumed") == 1


def test_cli_tick_fires_due_timers(redis_client, capsys):
    from chalicelib.__main__ import main

    assert main(["tick"]) == 0
    assert json.loads(capsys.readouterr().out) == {"fired": 0, "rescheduled": 0, "busy": 0, "calls": 0, "swept": 0}


COUNT_TO_100 = {"StartAt": "Init", "States": {
    "Init": {"Type": "Pass", "Result": 0, "ResultPath": "$.i", "Next": "Loop"},
    "Loop": {"Type": "Choice", "Choices": [{"Variable": "$.i", "NumericGreaterThanEquals": 100, "Next": "Done"}],
             "Default": "Add"},
    "Add": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)"}, "Next": "Loop"},
    "Done": {"Type": "Succeed"}}}


def test_a_running_execution_whose_process_died_after_its_commit_is_handed_out_again(redis_client):
    """The start's process is SIGKILLed right after its first commit, before it hands the RUNNING
    execution to the background: the execution's ``running`` timer hands it out once no commit
    came for ``stalled_after`` (and not before), and is dropped once the execution has ended."""
    kill_at("committed", "start", "committed", "stranded", json.dumps(COUNT_TO_100),
            environment={"REDIS_URL": REDIS_URL, "REQUEST_MAX_TRANSITIONS": "20"})

    clock = VirtualClock(time.time())
    dispatched: list[str] = []
    service = make_service(redis_client, clock, dispatch=dispatched.append)
    execution_id = service.executions.find("stranded")
    assert service.describe(execution_id)["status"] == "RUNNING"
    clock.advance(service.runs.stalled_after - 2)
    service.tick()
    assert dispatched == []  # it may still be going on somewhere: not before stalled_after
    clock.advance(3)
    service.tick()
    assert dispatched == [execution_id]
    done = service.continue_running(execution_id)  # what the dispatch starts in the background
    assert (done["status"], done["output"]) == ("SUCCEEDED", {"i": 100})
    clock.advance(service.runs.stalled_after)
    service.tick()
    assert dispatched == [execution_id]
    assert [m for m in redis_client.zrange(TIMERS_KEY, 0, -1) if m.startswith(b"running|")] == []
