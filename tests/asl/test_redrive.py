"""The interpreter's part of a redrive: a snapshot where an execution stopped, made to run again there."""
from __future__ import annotations

from collections import Counter

from chalicelib.asl import TaskFailed, VirtualClock, proceed, redrive, run


def flaky(broken: set, calls: Counter):
    def handler(payload, context):
        calls[payload["item"]] += 1
        if payload["item"] in broken:
            raise TaskFailed("Broken", "broken")
        return {"done": payload["item"], "redriveCount": context.execution["RedriveCount"]}
    return {"count:flaky": handler}


def test_a_redrivable_result_carries_the_snapshot_where_it_failed():
    calls, broken = Counter(), {"b"}
    definition = {"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "count:flaky", "Parameters": {"item": "a"}, "ResultPath": "$.a",
              "Assign": {"seen": True}, "Next": "B"},
        "B": {"Type": "Task", "Resource": "count:flaky", "Parameters": {"item": "b", "seen.$": "$seen"},
              "ResultPath": "$.b", "Retry": [{"ErrorEquals": ["Broken"], "MaxAttempts": 1}], "End": True}}}
    handlers = flaky(broken, calls)
    plain = run(definition, {}, handlers=handlers, clock=VirtualClock())
    assert "snapshot" not in plain  # only when asked for
    failed = run(definition, {}, handlers=handlers, clock=VirtualClock(), redrivable=True)
    assert failed["status"] == "FAILED" and failed["snapshot"]["root"]["at"] == "B"
    assert calls == {"a": 2, "b": 4}  # two runs, each B tried twice (Retry)
    broken.clear()
    snapshot = redrive(definition, failed["snapshot"], clock=VirtualClock())
    assert snapshot["status"] == "RUNNING" and snapshot["context"]["Execution"]["RedriveCount"] == 1
    done = proceed(definition, snapshot, handlers=handlers, clock=VirtualClock())
    assert done == {"status": "SUCCEEDED", "output": {"a": {"done": "a", "redriveCount": 0},
                                                      "b": {"done": "b", "redriveCount": 1}}}
    assert calls == {"a": 2, "b": 5}


def test_a_failure_retried_restarts_a_parallel_from_its_first_branch():
    calls, broken = Counter(), {"b"}
    attempts = {"n": 0}

    def once_broken(payload, context):
        attempts["n"] += 1
        return flaky(broken if attempts["n"] == 2 else set(), calls)["count:flaky"](payload, context)

    definition = {"StartAt": "P", "States": {"P": {
        "Type": "Parallel", "End": True, "Retry": [{"ErrorEquals": ["Broken"], "MaxAttempts": 1}],
        "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "count:flaky",
                                                       "Parameters": {"item": "a"}, "End": True}}},
                     {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": "count:flaky",
                                                       "Parameters": {"item": "b"}, "End": True}}}]}}}
    done = run(definition, {}, handlers={"count:flaky": once_broken}, clock=VirtualClock())
    assert done["status"] == "SUCCEEDED" and calls == {"a": 2, "b": 2}
