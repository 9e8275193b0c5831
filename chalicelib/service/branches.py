"""Answering a point in a branch stored apart (see ``fanout``): that branch alone is read, run and written.

The claim brings the branch (a unit, at any depth), what its run needs besides it (the root's state
and variables and those of each unit it is inside, the context, the deadline) and a block of event and point IDs reserved for the run, so branches of one
execution answered at the same moment run and commit side by side without conflicting. The branch's
commit (``Store.commit_branch``) checks only the branch's own version and stores its new frame, or
its output once it ended, and counts it off the units still open in its group.

In a Map with iterations left to start whose inputs are kept apart (``fanout``), an iteration that
ends starts the next one in its place, in the same commit, as the Map would: the claim brings the
next index and its input, the new iteration runs until it waits at suspension points, and the
commit stores both, checking that no other commit started that iteration meanwhile (one that did
moves this one on to the next, run again, a few times at most). An iteration that fails in a Map
that tolerates failures is counted in its commit, while the failures stay within the tolerance.

The whole execution is assembled and run on, with this branch's run in its place, when the branch
cannot be committed alone: it is the last one open in its group and ended (the join of that group),
it failed (the Parallel or Map fails, or the Map's failures pass what it tolerates), it ended in a
Map whose next iteration cannot start alone (its ItemSelector failed, it does not wait at suspension
points, the inputs are not kept apart), or its run stopped short (budget, deadline, an inline wait).
A branch that changed between the claim and the commit (two points in one branch answered at once)
is answered again on the whole execution.

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
from ..asl.interpreter import proceed, resume_branch, start_iteration
from ..store import BranchCommit, Claim, CommitConflict, ExecutionRecord, NextMoved, PointRead, StartedIteration
from ..store.records import inflate
from ..store.store import group_of, unit_path
from . import fanout
from .errors import no_longer_waits, redeemed_by_another
from .points import record_of
from .runs import CONTINUATIONS_SHOWN, RunOutcome, Runs
from .waits import asked, asked_in, point_wait

#: IDs a branch's run keeps clear of the end of its reserved block: one step may take a few.
_ID_MARGIN = (1024, 16)
#: Commits that start a Map's next iteration tried, each finding it started by another, before the
#: answer goes to the whole execution.
MAX_START_ATTEMPTS = 5


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
            raise no_longer_waits(at.execution_id) from None
        self.runs.note_event(ran, answer, at.point)
        ran_to = (snapshot["events"], snapshot["seq"], snapshot["transitions"])  # the counters after its run
        group = branch.ancestors[-1] if branch.ancestors else meta  # what its group's Parallel or Map keeps
        failed = ran.result == "failed" and group.get("tolerated") is not None
        left = ran.result == "succeeded" or failed  # it leaves its place in the Map
        next_index, next_input = branch.next, branch.next_input
        if ran.result == "blocked" or (left and (next_index is not None or not group["more"])):
            for _ in range(MAX_START_ATTEMPTS):
                started = None
                if left and next_index is not None and next_index < group["items"]:
                    started = self._start(at, compiled, snapshot, ran_to, next_index, next_input, ceilings)
                    if started is None:  # it cannot go on alone: the whole execution starts it
                        break
                commit = self._commit(at, ran, frame, snapshot, outcome, digest, summary, label, failed, started)
                try:
                    waiting = self._write(commit, compiled, ran, started)
                except NextMoved as moved:  # another commit started that iteration: start the next one
                    next_index, next_input = moved.next_index, moved.next_input
                    continue
                except CommitConflict as conflict:
                    if conflict.reason == "lost":
                        raise redeemed_by_another(at.execution_id) from None
                    if conflict.reason not in ("last", "tolerance"):  # the branch changed since the claim
                        return self._again(at, answer, outcome, digest)
                    break
                if not document:
                    return None, commit.now
                if waiting is None:  # a task-token call made after the commit moved it on
                    return self.runs.document(self.runs.reload(at.execution_id)), commit.now
                return fanout.waiting_document(at.execution_id, waiting, CONTINUATIONS_SHOWN), commit.now
        snapshot["events"], snapshot["seq"], snapshot["transitions"] = ran_to
        return self._join(at, answer, ran, frame, snapshot, as_read, outcome, digest, summary)

    def _start(self, at: Claim | PointRead, compiled, snapshot: dict, ran_to: tuple[int, int, int], index: int,
               stored_input: bytes | None, ceilings: tuple[int, int]) -> tuple[int, dict, RunOutcome] | None:
        """Start the Map's iteration ``index`` after the answered one's run (``ran_to``), as the Map would:
        (index, its frame, its run) when it waits at suspension points, else None (its ItemSelector
        failed, or it ended or stopped short: the whole execution is run on instead)."""
        if not stored_input:
            return None
        snapshot["events"], snapshot["seq"], snapshot["transitions"] = ran_to
        value = inflate(stored_input)
        path = unit_path(group_of(at.branch.path), index)
        holder: dict = {}

        def step(options):
            holder["outcome"], holder["frame"] = start_iteration(compiled, snapshot, path, value,
                                                                 ancestors=at.branch.ancestors, **options)
            return holder["outcome"]

        run = self.runs.run(at.execution_id, step, before={}, id_ceilings=ceilings)
        return (index, holder["frame"], run) if run.result == "blocked" else None

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
                summary: str, label: str, failed: bool = False,
                started: tuple[int, dict, RunOutcome] | None = None) -> BranchCommit:
        """The commit of the branch's run (and of the iteration it ``started``, once it ended)."""
        branch, now = at.branch, self.clock.now()
        waits = list(frame_waits(frame, label, inline=False)) if ran.result == "blocked" else []
        claim = _claim_of(at)  # a point answered without a claim closes its continuation, as on the whole
        open_now, created, closed, timers = self.runs.continuations(
            at.execution_id, waits, branch.open, claim.point if claim else None, ran, now, branch.meta["timeoutAt"])
        states_before = Counter(ran.waits_before[point]["state"] for point in branch.open if point in ran.waits_before)
        states_now = Counter(wait["state"] for _, wait in waits if wait["id"] in open_now)
        ended = ran.result != "blocked"
        # every point a wait is at, a timer's too, is indexed to its branch (see ``Store``)
        points_now = [wait["id"] for _, wait in waits]
        opened = [point for point in points_now if point not in ran.waits_before]
        left = [point for point in ran.waits_before if point not in points_now]
        events, iteration = ran.events, None
        if started is not None:  # the branch ended (no point of its own is open): the new iteration's are
            index, new_frame, new_run = started
            path = unit_path(group_of(branch.path), index)
            new_waits = list(frame_waits(new_frame, fanout.branch_label(branch.meta, branch.ancestors, path),
                                         inline=False))
            open_now, new_created, _, new_timers = self.runs.continuations(
                at.execution_id, new_waits, {}, None, new_run, now, branch.meta["timeoutAt"])
            created, timers, events = created + new_created, timers + new_timers, events + new_run.events
            states_now.update(wait["state"] for _, wait in new_waits if wait["id"] in open_now)
            waits += new_waits
            iteration = StartedIteration(index, path, new_frame, open_now, [wait["id"] for _, wait in new_waits])
        record = ExecutionRecord(id=at.execution_id, version=0, status="SUSPENDED",
                                 definition_hash=branch.meta["definition"], document={}, snapshot=None, open=open_now)
        output = ({"Error": frame.get("error"), "Cause": frame.get("cause")} if failed
                  else frame.get("output") if ended else None)
        return BranchCommit(
            record=record, ttl=self._ttl(now, open_now, waits), events=events,
            claim=claim, branch=branch, answer=summary, digest=digest, outcome=outcome, about=ran.waits_before,
            created=created, closed=closed, now=now, timers=timers, frame=None if ended else frame,
            output=output, opened=opened, left=left,
            waiting={state: states_now[state] - states_before[state] for state in states_now | states_before},
            used=(snapshot["events"], snapshot["seq"], snapshot["transitions"] - branch.transitions),
            failed=failed, started=iteration)

    def _write(self, commit: BranchCommit, compiled, ran: RunOutcome,
               started: tuple[int, dict, RunOutcome] | None = None) -> dict[str, int] | None:
        """Commit the branch (and the iteration it started) with their task-token calls, then make them;
        where the execution's points wait (see ``Store.commit_branch``), or None when a call moved it on
        (it answered its task at once, or failed): then only the execution read again tells."""
        commit.definition = (compiled.hash, compiled.text)
        tokens, made = ran.tokens, ran.effects
        if started is not None:
            tokens, made = {**tokens, **started[2].tokens}, made + started[2].effects
        effects = self.runs.calls.add_to(commit, made, tokens)
        waiting = self.runs.commit(commit)
        if effects:
            self.runs.calls.perform(commit.record, effects, tokens)
            for effect in effects:  # each call's task read alone: does its branch still wait there?
                read = self.runs.points.read(commit.record.id, effect.point)
                if read.branch is None or point_wait(read) is None:
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
        if any(event.get("id", 0) > branch.events[0] for event in record.history):
            # a commit since the claim holds events after this run's IDs, which would follow them in the
            # history: answered on the whole, the run takes IDs after them
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
                raise redeemed_by_another(record.id) from None
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
