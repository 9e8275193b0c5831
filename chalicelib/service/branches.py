"""Answering a point in a branch stored apart (see ``fanout``): that branch alone is read, run and written.

The claim brings the branch (a unit, at any depth), what its run needs besides it (the root's state
and variables and those of each unit it is inside, the context, the deadline) and a block of event and point IDs reserved for the run, so branches of one
execution answered at the same moment run and commit side by side without conflicting. The branch's
commit (``Store.commit_branch``) checks only the branch's own version and stores its new frame, or
its output once it ended, and counts it off the units still open in its group.

The whole execution is assembled and run on, with this branch's run in its place, when the branch
cannot be committed alone: it is the last one open in its group and ended (the join of that group),
it failed (the Parallel or Map fails, or counts a tolerated failure), it ended in a Map that has
iterations left to start, or
its run stopped short (budget, deadline, an inline wait). A branch that changed between the claim
and the commit (two points in one branch answered at once) is answered again on the whole execution.

A point without a claim is answered the same way (a Wait's timer, a task-token call that failed: the
branch read by ``Store.read_point``, its IDs reserved), and a change that runs nothing (``touch``: a
heartbeat, an activity task handed out) writes the branch's frame as changed, without a claim; the
caller falls back to the whole execution when it conflicts.
"""
from __future__ import annotations

import json
from collections import Counter

from ..asl.clock import iso_timestamp
from ..asl.engine import UnknownSuspension, frame_waits
from ..asl.interpreter import proceed, resume_branch
from ..store import BranchCommit, Claim, CommitConflict, ExecutionRecord, PointRead
from . import fanout
from .errors import ServiceError
from .points import record_of
from .runs import CONTINUATIONS_SHOWN, RunOutcome, Runs
from .waits import asked, asked_in

#: IDs a branch's run keeps clear of the end of its reserved block: one step may take a few.
_ID_MARGIN = (1024, 16)


class Branches:
    def __init__(self, runs: Runs):
        self.runs = runs
        self.settings = runs.settings
        self.clock = runs.clock

    def resume(self, at: Claim | PointRead, answer: dict, outcome: str = "redeemed",
               digest: str = "", document: bool = True) -> tuple[dict | None, float]:
        """Answer the point ``at`` names (claimed, or read with IDs reserved) in its branch; the document as a
        holder's answer reads it, and when the answer was committed (see ``Runs.resume``). Without
        ``document`` (nobody is answered: a timer) a branch committed alone answers None, not reading the
        execution again after its task-token calls."""
        branch = at.branch
        meta = branch.meta
        compiled = self.runs.definition(meta["definition"])
        summary = json.dumps({**answer, "at": iso_timestamp(self.clock.now())}, separators=(",", ":"))
        label = fanout.claim_label(branch)
        as_read = json.dumps(branch.frame, sort_keys=True)
        frame = branch.frame
        before = asked_in(frame, label)
        snapshot = {"version": meta["version"], "status": "SUSPENDED", "events": branch.events[0],
                    "seq": branch.points[0], "transitions": branch.transitions, "started": meta["started"],
                    "timeoutAt": meta["timeoutAt"], "context": meta["context"], "root": meta["root"]}
        ceilings = (branch.events[1] - _ID_MARGIN[0], branch.points[1] - _ID_MARGIN[1])

        def step(options):
            if "error" in answer:
                return resume_branch(compiled, snapshot, branch.path, frame, at.point, error=answer["error"],
                                     cause=answer.get("cause"), ancestors=branch.ancestors, **options)
            return resume_branch(compiled, snapshot, branch.path, frame, at.point, answer.get("result"),
                                 ancestors=branch.ancestors, **options)

        try:
            ran = self.runs.run(at.execution_id, step, before=before, id_ceilings=ceilings)
        except UnknownSuspension:
            raise ServiceError(410, "ContinuationExpired", "The execution no longer waits at this point.",
                               executionId=at.execution_id) from None
        self.runs.note_event(ran, answer, at.point)
        ended = ran.result == "succeeded"
        more = branch.ancestors[-1]["more"] if branch.ancestors else meta["more"]  # its Map has iterations to start
        if ran.result == "blocked" or (ended and not more):
            commit = self._commit(at, ran, frame, snapshot, outcome, digest, summary, label)
            try:
                waiting = self._write(commit, compiled, ran)
            except CommitConflict as conflict:
                if conflict.reason == "lost":
                    raise ServiceError(409, "ContinuationAlreadyRedeemed",
                                       "The continuation was redeemed by another request.",
                                       executionId=at.execution_id) from None
                if conflict.reason != "last":  # the branch changed since the claim: answer it on the whole
                    return self._again(at, answer, outcome, digest)
            else:
                if not document:
                    return None, commit.now
                if waiting is None:  # a task-token call made after the commit may have moved it on
                    return self.runs.document(self.runs.reload(at.execution_id)), commit.now
                return fanout.waiting_document(at.execution_id, waiting, CONTINUATIONS_SHOWN), commit.now
        return self._join(at, answer, ran, frame, snapshot, as_read, outcome, digest, summary)

    def touch(self, read: PointRead, marks: list[dict], timers: list[tuple[str, float]], now: float) -> None:
        """Store the frame of ``read``'s branch as the caller changed it (nothing ran: no point opened or
        closed), with history events without an ID (``marks``) and timers; raises CommitConflict when
        the branch changed since it was read."""
        branch = read.branch
        frame = branch.frame
        waits = list(frame_waits(frame, fanout.claim_label(branch), inline=False))
        commit = BranchCommit(
            record=record_of(read), ttl=self._ttl(now, branch.open, waits), events=[], now=now,
            timers=timers, branch=branch, marks=marks, frame=frame, used=(branch.events[0], branch.points[0], 0))
        self.runs.commit(commit)

    def _ttl(self, now: float, open_now: dict, waits: list) -> int:
        """How long the execution's keys are kept at least, from a branch's open points and waits."""
        deadlines = [now] + [expires for _, expires in open_now.values()] + [wait.get("due", now) for _, wait in waits]
        return int(max(deadlines) - now) + self.settings.retention_seconds

    def _commit(self, at: Claim | PointRead, ran: RunOutcome, frame: dict, snapshot: dict, outcome: str, digest: str,
                summary: str, label: str) -> BranchCommit:
        branch, now = at.branch, self.clock.now()
        waits = list(frame_waits(frame, label, inline=False)) if ran.result == "blocked" else []
        claim = _claim_of(at)  # a point answered without a claim closes its continuation, as on the whole
        open_now, created, closed, timers = self.runs.continuations(
            at.execution_id, waits, branch.open, claim.point if claim else None, ran, now, branch.meta["timeoutAt"])
        states_before = Counter(ran.waits_before[point]["state"] for point in branch.open if point in ran.waits_before)
        states_now = Counter(wait["state"] for _, wait in waits if wait["id"] in open_now)
        record = ExecutionRecord(id=at.execution_id, version=0, status="SUSPENDED",
                                 definition_hash=branch.meta["definition"], document={}, snapshot=None, open=open_now)
        ended = ran.result != "blocked"
        # every point a wait is at, a timer's too, is indexed to its branch (see ``Store``)
        points_now = [wait["id"] for _, wait in waits]
        return BranchCommit(
            record=record, ttl=self._ttl(now, open_now, waits), events=ran.events,
            claim=claim, branch=branch, answer=summary, digest=digest, outcome=outcome, about=ran.waits_before,
            created=created, closed=closed, now=now, timers=timers, frame=None if ended else frame,
            output=frame.get("output") if ended else None,
            opened=[point for point in points_now if point not in ran.waits_before],
            left=[point for point in ran.waits_before if point not in points_now],
            waiting={state: states_now[state] - states_before[state] for state in states_now | states_before},
            used=(snapshot["events"], snapshot["seq"], snapshot["transitions"] - branch.transitions))

    def _write(self, commit: BranchCommit, compiled, ran: RunOutcome) -> dict[str, int] | None:
        """Commit the branch with its task-token calls, then make them; None when calls were made."""
        commit.definition = (compiled.hash, compiled.text)
        effects = self.runs.calls.add_to(commit, ran.effects, ran.tokens)
        waiting = self.runs.commit(commit)
        if effects:
            self.runs.calls.perform(commit.record, effects, ran.tokens)
            return None
        return waiting

    def _join(self, at: Claim | PointRead, answer: dict, ran: RunOutcome, frame: dict, snapshot: dict, as_read: str,
              outcome: str, digest: str, summary: str) -> tuple[dict, float]:
        """Run the whole execution on with this branch's run in its place, and commit it whole."""
        branch = at.branch
        record = self.runs.reload(at.execution_id)
        whole = record.snapshot
        group, index, slot = fanout.slot_at(whole["root"], branch.path) if whole else (None, 0, None)
        if slot is None or json.dumps(slot, sort_keys=True) != as_read:  # it changed meanwhile
            return self._again(at, answer, outcome, digest, record)
        compiled = self.runs.definition(record.definition_hash)
        before = asked(whole)
        fanout.put_branch(group, index, frame)
        # the IDs reserved for this run and not used go back unless another run reserved after them
        # (the commit checks that none did since the record was read)
        for counter, (_, reserved_to) in (("events", branch.events), ("seq", branch.points)):
            whole[counter] = snapshot[counter] if whole[counter] == reserved_to else whole[counter]
        whole["transitions"] = whole.get("transitions", 0) + snapshot["transitions"] - branch.transitions
        rest = self.runs.run(record.id, lambda options: proceed(compiled, whole, copy_snapshot=False, **options),
                             before=before)
        joined = RunOutcome(rest.result, ran.events + rest.events, {**ran.tokens, **rest.tokens}, before,
                            ran.effects + rest.effects)
        commit = self.runs.next_commit(record, compiled, joined, claim=_claim_of(at), answer=summary)
        commit.outcome, commit.digest = outcome, digest
        try:
            self.runs.write(commit, compiled, joined)
        except CommitConflict as conflict:
            if conflict.reason == "lost":
                raise ServiceError(409, "ContinuationAlreadyRedeemed",
                                   "The continuation was redeemed by another request.",
                                   executionId=record.id) from None
            return self._again(at, answer, outcome, digest)
        self.runs.after_commit(record)
        return self.runs.document(record), commit.now

    def _again(self, at: Claim | PointRead, answer: dict, outcome: str, digest: str,
               record: ExecutionRecord | None = None) -> tuple[dict, float]:
        """Answer on the whole execution, read again (as any answer whose commit conflicted)."""
        record = record or self.runs.reload(at.execution_id)
        return self.runs.resume(record, at.point, answer, claim=_claim_of(at), outcome=outcome, digest=digest)


def _claim_of(at: Claim | PointRead) -> Claim | None:
    """The claim of the point answered, if it was claimed."""
    return at if isinstance(at, Claim) else None
