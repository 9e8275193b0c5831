"""The cheap history listener gives the events a plain listener gets, and keeps only ExecutionStarted and
the latest."""
from __future__ import annotations

from chalicelib.asl import VirtualClock, run
from chalicelib.asl.history import EventLog

LOOP = {"StartAt": "Check", "States": {
    "Check": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": 5, "Next": "Done"}],
              "Default": "Increment"},
    "Increment": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "Check"},
    "Done": {"Type": "Succeed"}}}


def test_an_event_log_holds_what_a_plain_listener_gets():
    plain: list = []
    run(LOOP, {"n": 0}, clock=VirtualClock(1_700_000_000.25), listener=plain.append)
    log = EventLog()
    run(LOOP, {"n": 0}, clock=VirtualClock(1_700_000_000.25), listener=log)
    assert log.events() == plain
    assert plain[2] == {"id": 3, "type": "ChoiceStateExited", "timestamp": "2023-11-14T22:13:20.250Z",
                        "state": "Check", "output": {"n": 0}}


def test_an_event_log_keeps_execution_started_and_the_latest_events_only():
    log = EventLog(4)
    result = run(LOOP, {"n": 0}, clock=VirtualClock(), listener=log)
    events = log.events()
    assert [event["type"] for event in events] == ["ExecutionStarted", "StateEntered", "SucceedStateExited",
                                                   "ExecutionSucceeded"]
    ids = [event["id"] for event in events]
    assert ids[0] == 1 and ids[1:] == list(range(ids[1], ids[1] + 3)) and ids[1] > 2
    assert events[0]["input"] == {"n": 0} and result["status"] == "SUCCEEDED"


def test_an_event_log_of_one_keeps_how_the_execution_started():
    log = EventLog(1)
    run(LOOP, {"n": 0}, clock=VirtualClock(), listener=log)
    assert [event["type"] for event in log.events()] == ["ExecutionStarted"]
