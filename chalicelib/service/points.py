"""One point of an execution read, and answered without a claim, alone (see ``Store.read_point``).

What acts on one point (a continuation's question, a heartbeat, an activity task handed out, a timer
of the point, a task-token call that failed, an event wait) reads it here instead of loading the
execution: in an execution whose branches are stored apart (``fanout``), that is the branch the point
is in, whatever the number of branches; else the whole record, made whole as ``Runs.load`` makes it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..store import Commit, ExecutionRecord, PointRead
from . import fanout
from .errors import no_longer_waits
from .ids import plausible_id

if TYPE_CHECKING:  # runs imports the parts that read points through it
    from .runs import Runs


class Points:
    def __init__(self, runs: "Runs"):
        self.runs = runs

    def read(self, execution_id: str, point: str, reserve: bool = False) -> PointRead:
        """The point: the branch stored apart it is in, or else the whole record. ``reserve``: it is to
        be answered without a claim (``resume``), so IDs are reserved for the run of its branch."""
        if not plausible_id(execution_id):
            return PointRead(execution_id, point, None)
        return self._made_whole(self.runs.store.read_point(execution_id, point, reserve))

    def read_continuation(self, tag: str, key_hash: str) -> PointRead | None:
        """A continuation's fields and its point, read as ``read`` reads one (None: no such continuation)."""
        read = self.runs.store.read_continuation(tag, key_hash)
        return None if read is None else self._made_whole(read)

    def _made_whole(self, read: PointRead) -> PointRead:
        read.record = fanout.assemble(self.runs.tokens.upgrade(read.record))
        return read

    def mark(self, read: PointRead, event: dict, timers: list[tuple[str, float]], now: float) -> None:
        """Store the point's wait as the caller changed it in place (nothing ran: a heartbeat, an activity
        task handed out) with ``event``, a history event without an ID that takes the place of the
        point's earlier one of its type, and ``timers``: in its branch alone when it is in one stored
        apart (a mark, see ``Store``), else in a commit of the whole record. Raises CommitConflict when
        what was read changed meanwhile."""
        if read.branch is not None:
            self.runs.branches.touch(read, [event], timers, now)
            return
        record = read.record
        record.history = [earlier for earlier in record.history
                          if not (earlier.get("type") == event["type"] and earlier.get("point") == read.point)]
        self.runs.commit(Commit(record=record, ttl=self.runs.ttl(record, now), now=now, events=[event],
                                timers=timers))

    def resume(self, read: PointRead, answer: dict) -> None:
        """Answer the point ``read`` names without a claim (nobody is told the document): in its branch
        (read again, with IDs reserved for its run), or on the whole record."""
        if read.branch is not None:
            read = self.read(read.execution_id, read.point, reserve=True)
        if read.branch is not None:
            self.runs.branches.resume(read, answer, document=False)
            return
        if read.record is None:
            raise no_longer_waits(read.execution_id)
        self.runs.resume(read.record, read.point, answer)


def record_of(read: PointRead) -> ExecutionRecord | None:
    """The record as far as ``read`` read it (None: gone): the whole one or, for a point in a branch stored
    apart (or in none), a SUSPENDED one with no snapshot and that branch's open points, which is what
    revealing the point's task token and claiming it need."""
    if read.branch is None and not read.apart:
        return read.record
    return ExecutionRecord(id=read.execution_id, version=0, status="SUSPENDED",
                           definition_hash=read.branch.meta["definition"] if read.branch else "", document={},
                           snapshot=None, open=dict(read.branch.open) if read.branch else {})
