"""The store's Lua scripts, when Redis has lost them (a restart, a failover): loaded again, and each
command of a pipeline runs once."""
from __future__ import annotations

from chalicelib.asl import VirtualClock
from chalicelib.config import settings
from chalicelib.service import Service
from chalicelib.store import Store

ASK = {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "module:suspend", "End": True}}}


def test_a_commit_that_ran_is_not_run_again_when_another_script_of_its_pipeline_was_lost(redis_client):
    """On a Redis Cluster the definition's key and the execution's keys are on different nodes; one of
    them may have lost the scripts while the other ran the commit. Only the failed command runs again:
    a commit run twice would find its own execution and refuse (a start answered with an error)."""
    store = Store(redis_client)
    service = Service(settings(), store, clock=VirtualClock(1_800_000_000.0))
    unknown = "0" * 40
    store._keep.sha = unknown  # the definition's script is lost, the commit's is not
    document = service.start(ASK, {"n": 1}, state_machine=None, trusted=True)
    assert document["status"] == "SUSPENDED"
    assert store._keep.sha != unknown  # loaded again
    described = service.describe(document["executionId"])
    assert [event["type"] for event in described["history"]].count("ExecutionStarted") == 1
    [waiting] = document["continuations"]
    assert service.redeem(waiting["id"], result={"ok": True})["output"] == {"n": 1, "ok": True}
