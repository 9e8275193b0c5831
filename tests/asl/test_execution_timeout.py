"""The execution's top-level TimeoutSeconds, enforced while a state runs, as AWS does.

A Wait, Retry back-off, Task, Parallel or Map that outlives the deadline ends the
execution at the deadline as TIMED_OUT (``States.Timeout``), whatever state it is
in and whatever its Retry and Catch say; its ExecutionTimedOut event has the
deadline's time.
"""
from __future__ import annotations

import pytest

from chalicelib import proceed, resume
from chalicelib.asl import TaskFailed, VirtualClock
from chalicelib.asl.clock import iso_timestamp

from ..asl_helpers import START, go, roundtrip
from ..asl_helpers import chain as machine

TIMED_OUT = {"status": "TIMED_OUT", "error": "States.Timeout", "cause": "The execution exceeded its TimeoutSeconds."}


def at(seconds: float) -> str:
    """The timestamp ``seconds`` after START (2023-11-14T22:13:20Z), as events write it."""
    return iso_timestamp(START + seconds)


def timed(definition, input=None, **options):
    """Run on a virtual clock; the result, the events and the clock."""
    clock = options.pop("clock", None) or VirtualClock(START)
    events: list[dict] = []
    result = go(definition, {} if input is None else input, clock=clock, listener=events.append, **options)
    return result, events, clock


def ended(events: list[dict]) -> tuple[str, str]:
    return events[-1]["type"], events[-1]["timestamp"]


def test_a_last_wait_that_outlives_the_timeout_ends_at_the_deadline():
    """The issue's example: it used to SUCCEED after 3 s."""
    definition = {"TimeoutSeconds": 1, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3, "End": True}}}
    result, events, clock = timed(definition)
    assert result == TIMED_OUT
    assert ended(events) == ("ExecutionTimedOut", at(1))
    assert clock.now() == START + 1  # it slept until the deadline, not until the Wait's end
    assert "WaitStateExited" not in [e["type"] for e in events]


def test_a_wait_then_more_states_times_out_at_the_deadline_not_when_the_wait_ends():
    definition = machine(("W", {"Type": "Wait", "Seconds": 3}), ("After", {"Type": "Pass"}), TimeoutSeconds=2)
    result, events, clock = timed(definition)
    assert result == TIMED_OUT and ended(events) == ("ExecutionTimedOut", at(2)) and clock.now() == START + 2


@pytest.mark.parametrize("seconds, status", [(4, "SUCCEEDED"), (5, "TIMED_OUT")])
def test_an_execution_that_ends_before_its_deadline_succeeds(seconds, status):
    definition = machine(("W", {"Type": "Wait", "Seconds": seconds}), TimeoutSeconds=5)
    assert timed(definition)[0]["status"] == status


def test_a_wait_by_timestamp_past_the_deadline_times_out():
    definition = machine(("W", {"Type": "Wait", "Timestamp": "2023-11-14T22:14:00Z"}), TimeoutSeconds=10)
    result, events, _ = timed(definition)
    assert result == TIMED_OUT and ended(events) == ("ExecutionTimedOut", at(10))


def slow_handler(clock: VirtualClock, seconds: float, outcome=None):
    """A handler that takes ``seconds`` of the virtual clock, then returns its input (or raises)."""
    def handler(payload, context):
        clock.advance(seconds)
        if isinstance(outcome, Exception):
            raise outcome
        return payload
    return handler


def test_a_last_task_that_outlives_the_timeout_times_out_and_its_result_is_void():
    clock = VirtualClock(START)
    definition = machine(("Work", {"Type": "Task", "Resource": "slow:work"}), TimeoutSeconds=5)
    result, events, _ = timed(definition, clock=clock, handlers={"slow:work": slow_handler(clock, 10)})
    assert result == TIMED_OUT
    assert [e["type"] for e in events][-2:] == ["TaskScheduled", "ExecutionTimedOut"]
    assert ended(events) == ("ExecutionTimedOut", at(5))


def test_a_task_that_fails_after_the_deadline_is_not_caught_or_retried():
    clock = VirtualClock(START)
    definition = machine(
        ("Work", {"Type": "Task", "Resource": "slow:work",
                  "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}]}),
        ("Handled", {"Type": "Pass"}), TimeoutSeconds=5)
    handler = slow_handler(clock, 6, TaskFailed("Boom", "too late"))
    result, events, _ = timed(definition, clock=clock, handlers={"slow:work": handler})
    assert result == TIMED_OUT
    assert not {"TaskFailed", "StateRetryScheduled", "StateFailed"} & {e["type"] for e in events}


def test_retry_back_off_past_the_deadline_times_out_at_the_deadline():
    definition = machine(("Work", {"Type": "Task", "Resource": "x:fail",
                                   "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 30}]}),
                         TimeoutSeconds=20)

    def fail(payload, context):
        raise TaskFailed("Boom")

    result, events, clock = timed(definition, handlers={"x:fail": fail})
    assert result == TIMED_OUT and ended(events) == ("ExecutionTimedOut", at(20)) and clock.now() == START + 20


def branch(name: str, spec: dict) -> dict:
    return {"StartAt": name, "States": {name: {**spec, "End": True}}}


def test_a_parallel_whose_branch_waits_past_the_deadline_times_out():
    definition = machine(("Fork", {"Type": "Parallel", "Branches": [
        branch("Quick", {"Type": "Pass"}), branch("Slow", {"Type": "Wait", "Seconds": 3})]}), TimeoutSeconds=2)
    result, events, clock = timed(definition)
    assert result == TIMED_OUT and ended(events) == ("ExecutionTimedOut", at(2)) and clock.now() == START + 2
    assert "ParallelStateSucceeded" not in [e["type"] for e in events]


def test_a_map_whose_iterations_outlive_the_deadline_times_out():
    definition = machine(("Each", {"Type": "Map", "MaxConcurrency": 1,
                                   "ItemProcessor": branch("Pause", {"Type": "Wait", "SecondsPath": "$"})}),
                         TimeoutSeconds=5)
    result, events, clock = timed(definition, [2, 2, 2])
    assert result == TIMED_OUT and ended(events) == ("ExecutionTimedOut", at(5)) and clock.now() == START + 5
    assert timed(definition, [2, 2])[0] == {"status": "SUCCEEDED", "output": [2, 2]}


def test_a_suspended_task_answered_after_the_deadline_times_out_at_the_deadline():
    definition = machine(("Ask", {"Type": "Task", "Resource": "module:suspend"}), TimeoutSeconds=60)
    first, _, clock = timed(definition)
    assert first["status"] == "SUSPENDED" and first["snapshot"]["timeoutAt"] == START + 60
    point = first["suspensions"][0]["id"]
    clock.advance(59)
    in_time = resume(definition, roundtrip(first["snapshot"]), point, {"ok": True}, clock=clock)
    assert in_time == {"status": "SUCCEEDED", "output": {"ok": True}}
    clock.advance(100)
    events: list[dict] = []
    late = resume(definition, roundtrip(first["snapshot"]), point, {"ok": True}, clock=clock,
                  listener=events.append)
    assert late == TIMED_OUT
    assert [(e["type"], e["timestamp"]) for e in events] == [("ExecutionTimedOut", at(60))]


def test_a_long_wait_as_a_timer_resumed_after_the_deadline_times_out_at_the_deadline():
    definition = machine(("W", {"Type": "Wait", "Seconds": 3600}), TimeoutSeconds=60)
    first, _, clock = timed(definition, inline_wait_limit=5)
    assert first["status"] == "SUSPENDED"
    clock.advance(3600)
    events: list[dict] = []
    late = resume(definition, first["snapshot"], first["suspensions"][0]["id"], clock=clock,
                  listener=events.append)
    assert late == TIMED_OUT and ended(events) == ("ExecutionTimedOut", at(60))


# -- branches and iterations wait at the same time, as in AWS ---------------------------------------

def test_parallel_branches_wait_at_the_same_time_so_they_end_within_the_timeout():
    definition = machine(("Fork", {"Type": "Parallel", "Branches": [
        branch("First", {"Type": "Wait", "Seconds": 3}), branch("Second", {"Type": "Wait", "Seconds": 4})]}),
        TimeoutSeconds=5)
    result, events, clock = timed(definition, {"n": 1})
    assert result == {"status": "SUCCEEDED", "output": [{"n": 1}, {"n": 1}]}
    assert clock.now() == START + 4  # the longer branch, not the sum
    exits = [(e["state"], e["timestamp"]) for e in events if e["type"] == "WaitStateExited"]
    assert exits == [("First", at(3)), ("Second", at(4))]
    assert "ExecutionResumed" not in [e["type"] for e in events]


@pytest.mark.parametrize("concurrency, seconds", [(0, 2), (2, 6), (1, 10)])
def test_map_iterations_wait_at_the_same_time_up_to_max_concurrency(concurrency, seconds):
    definition = machine(("Each", {"Type": "Map", "MaxConcurrency": concurrency,
                                   "ItemProcessor": branch("Pause", {"Type": "Wait", "SecondsPath": "$"})}))
    result, _, clock = timed(definition, [2, 2, 2, 2, 2])
    assert result == {"status": "SUCCEEDED", "output": [2, 2, 2, 2, 2]}
    assert clock.now() == START + seconds


def test_retry_back_off_in_branches_runs_at_the_same_time():
    attempts = []

    def flaky(payload, context):
        attempts.append((payload, clock.now() - START))
        if len([a for a in attempts if a[0] == payload]) < 2:
            raise TaskFailed("Busy")
        return payload

    clock = VirtualClock(START)

    def retried(value):
        return {"Type": "Task", "Resource": "x:flaky", "Parameters": {"v": value},
                "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 3}]}

    definition = machine(("Fork", {"Type": "Parallel", "Branches": [branch("A", retried("a")),
                                                                    branch("B", retried("b"))]}))
    result, _, _ = timed(definition, clock=clock, handlers={"x:flaky": flaky})
    assert result == {"status": "SUCCEEDED", "output": [{"v": "a"}, {"v": "b"}]}
    assert sorted(when for _, when in attempts) == [0, 0, 3, 3]


def test_a_branch_that_waits_inline_beside_a_suspended_one_finishes_and_only_the_suspension_is_open():
    definition = machine(("Fork", {"Type": "Parallel", "Branches": [
        branch("Pause", {"Type": "Wait", "Seconds": 2}), branch("Ask", {"Type": "Task", "Resource": "module:suspend"})]}))
    first, _, clock = timed(definition, {"n": 1})
    assert first["status"] == "SUSPENDED" and clock.now() == START + 2
    assert [s["state"] for s in first["suspensions"]] == ["Ask"]
    done = resume(definition, roundtrip(first["snapshot"]), first["suspensions"][0]["id"], {"ok": True}, clock=clock)
    assert done == {"status": "SUCCEEDED", "output": [{"n": 1}, {"n": 1, "ok": True}]}


def test_a_run_that_stops_for_budget_while_iterations_wait_goes_on_from_its_snapshot():
    definition = machine(("Each", {"Type": "Map",
                                   "ItemProcessor": machine(("Pause", {"Type": "Wait", "SecondsPath": "$"}),
                                                            ("Then", {"Type": "Pass"}))}))
    first, _, clock = timed(definition, [1, 2, 3], max_transitions=4)
    assert first["status"] == "RUNNING"
    waiting = [f["wait"] for f in first["snapshot"]["root"]["group"]["active"].values() if "wait" in f]
    assert waiting and all(w["inline"] for w in waiting) and first.get("suspensions") is None
    rest = proceed(definition, roundtrip(first["snapshot"]), clock=clock)
    assert rest == {"status": "SUCCEEDED", "output": [1, 2, 3]} and clock.now() == START + 3
