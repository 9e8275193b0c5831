"""The cheap history listener gives the events a plain listener gets, and keeps only the latest."""
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


def test_an_event_log_keeps_the_latest_events_only():
    log = EventLog(4)
    result = run(LOOP, {"n": 0}, clock=VirtualClock(), listener=log)
    events = log.events()
    assert [event["type"] for event in events] == ["ChoiceStateExited", "StateEntered", "SucceedStateExited",
                                                   "ExecutionSucceeded"]
    ids = [event["id"] for event in events]
    assert ids == list(range(ids[0], ids[0] + 4)) and result["status"] == "SUCCEEDED"
