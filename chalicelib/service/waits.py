"""The open suspension points of a snapshot: what each asks, and the timers it needs."""
from __future__ import annotations

from ..asl.engine import frame_waits, iter_waits
from ..store import PointRead


def asked(snapshot: dict | None) -> dict[str, dict]:
    """What each open suspension point asks: its state, branch, kind and parameters."""
    return _asked(iter_waits(snapshot or {}))


def asked_in(frame: dict, branch: str) -> dict[str, dict]:
    """What each open suspension point of one branch's ``frame`` (named ``branch``) asks (see ``asked``)."""
    return _asked(frame_waits(frame, branch, inline=False))


def _asked(waits) -> dict[str, dict]:
    return {wait["id"]: {"state": wait["state"], "branch": branch or None, "kind": wait["kind"],
                         "parameters": wait.get("parameters")}
            for branch, wait in waits}


def open_wait(snapshot: dict | None, point: str) -> dict | None:
    for _, wait in iter_waits(snapshot or {}):
        if wait["id"] == point:
            return wait
    return None


def point_wait(read: PointRead) -> dict | None:
    """The open wait of the point ``read`` names, in its branch or in the whole record (None: it waits no
    more); changed in place by a heartbeat or a hand-off before they store it."""
    if read.branch is not None:
        return next((wait for _, wait in frame_waits(read.branch.frame, "", inline=False)
                     if wait["id"] == read.point), None)
    return open_wait(read.record.snapshot if read.record else None, read.point)


def timer_member(kind: str, execution_id: str, point: str = "") -> str:
    """A timer in the store's timer set: ``<kind>|<executionId>|<point>``."""
    return f"{kind}|{execution_id}|{point}"


def wait_timers(execution_id: str, wait: dict) -> list[tuple[str, float]]:
    """The timers an open suspension point needs: its due time, timeout and heartbeat."""
    point = wait["id"]
    if wait["kind"] == "timer":
        return [(timer_member("wait", execution_id, point), wait["due"])]
    timers = []
    if wait.get("timeoutAt"):
        timers.append((timer_member("timeout", execution_id, point), wait["timeoutAt"]))
    if wait.get("heartbeatAt"):
        timers.append((timer_member("heartbeat", execution_id, point), wait["heartbeatAt"]))
    return timers
