"""Durable time: firing due timers (Waits, task timeouts, heartbeats, execution timeouts, children,
pending calls whose maker may have died, RUNNING executions nobody went on with).

A timer of one point reads that point alone (``Points.read``): in an execution whose branches are
stored apart, the branch it is in; a Wait's timer there resumes that branch alone."""
from __future__ import annotations

import logging

from ..asl import errors
from ..store import ExecutionRecord
from .children import outcome as child_outcome
from .errors import ServiceError
from .executions import Executions
from .map_runs import MapRuns
from .points import record_of
from .redemption import Redemptions
from .runs import Runs
from .statuses import FINISHED
from .waits import point_wait

log = logging.getLogger(__name__)


class Timers:
    def __init__(self, runs: Runs, executions: Executions, redemptions: Redemptions, map_runs: MapRuns):
        self.map_runs = map_runs
        self.runs = runs
        self.executions = executions
        self.redemptions = redemptions
        self.store = runs.store
        self.clock = runs.clock
        self.settings = runs.settings

    def tick(self, limit: int = 500) -> dict[str, int]:
        """Fire the timers that are due, and sweep a slice of the execution index. Safe to run in
        several processes at once.

        ``calls`` counts the pending calls made again (their maker died); a ``call``
        timer that finds its calls made is not counted as fired. ``swept`` counts the index's
        entries dropped because their executions' records had expired (``Store.sweep_index``).
        """
        counts = {"fired": 0, "rescheduled": 0, "busy": 0, "calls": 0,
                  "swept": self.store.sweep_index(self.clock.now())}
        for member, _ in self.store.due_timers(self.clock.now(), limit):
            kind, execution_id, point = member.split("|", 2)
            try:
                if kind == "call":
                    made, outcome = self.runs.calls.finish(execution_id)
                    counts["calls"] += made
                else:
                    outcome = self.fire(kind, execution_id, point)
            except ServiceError:
                outcome = True  # nothing left to do: the execution ended or moved on
            if outcome is False:
                counts["busy"] += 1  # a redemption holds the continuation: try next tick
                continue
            if outcome is not True:
                ttl = int(outcome - self.clock.now()) + self.settings.retention_seconds
                self.store.add_timers([(member, outcome)], ttl)
                counts["rescheduled"] += 1
                continue
            self.store.remove_timer(member)
            counts["fired"] += kind != "call"
        return counts

    def fire(self, kind: str, execution_id: str, point: str) -> bool | float:
        """Carry out one due timer: True when done, False to retry, or a later due time."""
        if kind == "mapchild":  # a map run's child ended: its run records it
            return self.map_runs.collect(execution_id)
        if kind == "maprun":  # a map run's sweep (it also notices a parent that no longer waits)
            return self.map_runs.sweep(execution_id, point)
        now = self.clock.now()
        if kind in ("running", "execution"):
            return self._fire_execution(kind, execution_id, now)
        read = self.runs.points.read(execution_id, point)
        record = record_of(read)
        wait = point_wait(read)
        if record is None or record.status in FINISHED or wait is None:
            return True
        if kind == "child":
            return self._resume_from_child(record, wait)
        due = {"wait": wait.get("due"), "timeout": wait.get("timeoutAt"),
               "heartbeat": wait.get("heartbeatAt")}.get(kind)
        if due is None:
            return True
        if due > now:  # never early: the deadline moved (heartbeat) or the clock is behind
            return due
        if kind == "heartbeat" and wait["kind"] == "activity" and "startedAt" not in wait:
            return now + wait["heartbeatSeconds"]  # still queued: its heartbeat clock starts with a worker
        if kind == "wait":
            self.runs.points.resume(read, {"result": None})
            return True
        if kind == "timeout":
            answer = {"error": "States.Timeout", "cause": "The task did not get an answer within its TimeoutSeconds."}
        else:
            answer = {"error": "States.HeartbeatTimeout",
                      "cause": "The task sent no heartbeat within its HeartbeatSeconds."}
        return self.redemptions.answer_point(record, point, answer,
                                             "timeout" if kind == "timeout" else "heartbeat-timeout")

    def _fire_execution(self, kind: str, execution_id: str, now: float) -> bool | float:
        """A timer of the whole execution: it went ``running`` for long, or its deadline (``execution``)."""
        record = self.runs.load(execution_id)
        if record is None or record.status in FINISHED or record.snapshot is None:
            return True
        if kind == "running":  # no commit for ``stalled_after``: hand it out again, and look later
            if record.status != "RUNNING":
                return True
            self.runs.dispatch(record.id)
            return now + self.runs.stalled_after
        if kind == "execution":
            due = record.snapshot.get("timeoutAt") or now
            if due > now:
                return due
            self.executions.stop(record.id, "TIMED_OUT", errors.TIMEOUT, errors.EXECUTION_TIMEOUT_CAUSE,
                                 "ExecutionTimedOut", "timeout", at=due)
        return True

    def child_finished(self, child: ExecutionRecord) -> None:
        """A child ended: resume its waiting parent, or record it in its map run, at once if we can
        (its timer does it otherwise)."""
        if child.document.get("mapRun"):
            try:
                self.map_runs.collect(child.id)
            except Exception:  # noqa: BLE001 - the timer will do it
                log.warning("recording map run child %s failed; the timer will retry", child.id, exc_info=True)
            return
        parent = child.document.get("parent")
        if not parent:
            return
        try:
            self.fire("child", parent["executionId"], parent["point"])
        except Exception:  # noqa: BLE001 - the timer will do it
            log.warning("resuming parent %s of %s failed; the timer will retry",
                        parent["executionId"], child.id, exc_info=True)

    def _resume_from_child(self, parent: ExecutionRecord, wait: dict) -> bool:
        child = self.runs.load((wait.get("detail") or {}).get("executionId", ""))
        if child is None:
            return self.redemptions.answer_point(parent, wait["id"], {
                "error": "States.TaskFailed", "cause": "The child execution no longer exists."}, "redeemed")
        if child.status not in FINISHED:
            return True  # it will write a new timer when it ends
        mode = (child.document.get("parent") or {}).get("mode", "sync")
        return self.redemptions.answer_point(parent, wait["id"], child_outcome(child.document, mode), "redeemed")
