"""Running the interpreter and committing what it did: the core every operation shares.

Every change is written to the store as one atomic commit guarded by the
execution's version (optimistic concurrency): two continuations of one
execution redeemed at the same moment both take effect, one after the other,
and a continuation is consumed only by the commit that also writes the
execution's next state.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..asl import SystemClock, resume
from ..asl.clock import iso_timestamp
from ..asl.engine import UnknownSuspension, iter_waits
from ..asl.history import EventLog
from ..asl.interpreter import Compiled
from ..asl.tasks import as_resolver
from ..config import ONE_YEAR, Settings
from ..resources import default_handlers
from ..store import BranchCommit, Claim, Commit, CommitConflict, ExecutionRecord, NewContinuation, Store
from . import fanout, names
from .calls import DeferTokenCalls, Effect, PendingCalls
from .children import ChildExecutions
from .definitions import stored_definition
from .events import EventWaits
from .errors import ServiceError, busy, execution_not_found, no_longer_waits, redeemed_by_another
from .ids import continuation_id, id_hash, new_nonce, plausible_id
from .listing import encode_token
from .questions import Questions
from .statuses import FINISHED
from .tokens import TaskTokens
from .waits import asked, timer_member, wait_timers

log = logging.getLogger(__name__)

MAX_COMMIT_ATTEMPTS = 20
CONTINUATIONS_SHOWN = 100  # open continuations an execution document lists (a page); at most MAX_LIMIT


def continuation_expiry(settings: Settings, now: float, timeout_at: float | None) -> float:
    """When a continuation created at ``now`` expires: its task's timeout, else the stage's TTL."""
    return min(timeout_at or now + settings.continuation_ttl, now + ONE_YEAR)


@dataclass
class RunOutcome:
    result: dict
    events: list[dict]
    tokens: dict[str, str]  # point -> nonce of task tokens issued during the run
    waits_before: dict[str, dict]  # what the points open before the run asked (see ``asked``)
    effects: list[Effect] = field(default_factory=list)  # task-token calls to make after the commit


class Resolvers:
    """Resolves a Task's resource with the first of ``resolvers`` that knows it."""

    def __init__(self, resolvers: Iterable):
        self.resolvers = tuple(resolvers)

    def resolve(self, resource: str):
        for resolver in self.resolvers:
            handler = resolver.resolve(resource)
            if handler is not None:
                return handler
        return None


class Runs:
    """Loads executions, runs the interpreter on them and commits the result.

    ``resolvers`` are consulted before ``handlers`` (the approval email, say);
    ``start_child`` and ``on_finished`` are set by :class:`~chalicelib.service.Service`.
    """

    def __init__(self, settings: Settings, store: Store, *, clock=None, handlers=None,
                 dispatch: Callable[[str], None] | None = None, questions: Questions | None = None,
                 resolvers: Iterable = ()):
        self.settings = settings
        self.store = store
        self.clock = clock or SystemClock()
        self.handlers = handlers
        self.dispatch = dispatch or (lambda execution_id: None)
        self.questions = questions or Questions()
        self.resolvers = tuple(resolvers)
        self.tokens = TaskTokens(settings.signing_secret)
        self.calls = PendingCalls(self)
        self.start_child: Callable[..., dict] | None = None
        self.events = None  # the ``events`` part, set by Service: it resolves ``module:event``
        self.activities = None  # the ``activities`` part, set by Service: it resolves activity ARNs
        self.map_runs = None  # the ``map_runs`` part, set by Service: it runs Distributed Maps
        self.branches = None  # the ``branches`` part, set by Service: it answers points in branches stored apart
        self.points = None  # the ``points`` part, set by Service: it reads one point of an execution
        self.on_finished: Callable[[ExecutionRecord], None] = lambda record: None

    # -- reading ----------------------------------------------------------------

    def load(self, execution_id: str) -> ExecutionRecord | None:
        """The execution as one record, its branches stored apart put back in place (see ``fanout``)."""
        return fanout.assemble(self.tokens.upgrade(self.store.load(execution_id)))

    def reload(self, execution_id: str) -> ExecutionRecord:
        record = self.load(execution_id) if plausible_id(execution_id) else None
        if record is None:
            raise execution_not_found(execution_id)
        return record

    def definition(self, definition_hash: str) -> Compiled:
        return stored_definition(self.store, definition_hash)

    def key_hash(self, execution_id: str, nonce: str) -> str:
        """What the store keys the continuation of ``nonce`` by."""
        return id_hash(continuation_id(execution_id[:4], nonce, self.settings.signing_secret))

    def expiry(self, now: float, timeout_at: float | None, deadline: float | None = None) -> float:
        """When a continuation expires: see :func:`continuation_expiry`, and never after the
        execution's own ``deadline`` (its top-level TimeoutSeconds), when it ends TIMED_OUT."""
        expires = continuation_expiry(self.settings, now, timeout_at)
        return expires if deadline is None else min(expires, deadline)

    # -- running ----------------------------------------------------------------

    def run(self, execution_id: str, step: Callable[[dict], Any], snapshot: dict | None = None,
            before: dict[str, dict] | None = None, **extra: Any) -> RunOutcome:
        """Run ``step`` (which may change ``snapshot`` in place) with the service's options and ``extra``;
        ``before`` is what the points open before it asked (by default, those of ``snapshot``)."""
        before = asked(snapshot) if before is None else before
        events = EventLog(self.store.history_limit)  # the store keeps no more than these
        tokens: dict[str, str] = {}

        def token_factory(point: str) -> str:  # the run holds a marker; the ID is revealed on the way out
            tokens[point] = new_nonce()
            return self.tokens.marker(execution_id, point)

        effects: list[Effect] = []
        base = self.questions.base_url
        result = step(dict(
            handlers=DeferTokenCalls(self.resolver(execution_id, base), execution_id, base, effects),
            clock=self.clock,
            inline_wait_limit=self.settings.inline_wait_seconds,
            max_transitions=self.settings.request_max_transitions,
            max_seconds=self.settings.request_max_seconds,
            transition_limit=self.settings.execution_max_transitions,
            listener=events, token_factory=token_factory, redrivable=True, **extra,
        ))
        return RunOutcome(result, events.events(), tokens, before, effects)

    def resolver(self, execution_id: str, base: str) -> Resolvers:
        """What the Task states of ``execution_id`` call, with links pointing at ``base``."""
        handlers = as_resolver(default_handlers() if self.handlers is None else self.handlers)
        resolvers = [r.at_base(base) if hasattr(r, "at_base") else r for r in self.resolvers]
        events = [] if self.events is None else [EventWaits(self.events, execution_id)]
        activities = [] if self.activities is None else [self.activities.resolver(execution_id)]
        if self.map_runs is not None:
            activities.append(self.map_runs.starter(execution_id))
        return Resolvers([ChildExecutions(self.start_child, execution_id), *events, *activities, *resolvers,
                          handlers])

    def resume(self, record: ExecutionRecord, point: str, answer: dict, *,
               claim: Claim | None = None, outcome: str = "redeemed", digest: str = "") -> tuple[dict, float]:
        """Answer one suspension point and commit; on a version conflict, re-read and re-apply.

        Returns the execution document and when the answer was committed (the ``answeredAt``
        the continuation keeps)."""
        compiled = self.definition(record.definition_hash)
        summary = json.dumps({**answer, "at": iso_timestamp(self.clock.now())}, separators=(",", ":"))
        for _ in range(MAX_COMMIT_ATTEMPTS):
            if record.snapshot is None or record.status in FINISHED:
                raise ServiceError(410, "ContinuationExpired",
                                   f"The execution has ended ({record.status}).",
                                   executionId=record.id)
            snapshot = record.snapshot

            def step(options, snapshot=snapshot):
                if "error" in answer:
                    return resume(compiled, snapshot, point, error=answer["error"],
                                  cause=answer.get("cause"), copy_snapshot=False, **options)
                return resume(compiled, snapshot, point, answer.get("result"),
                              copy_snapshot=False, **options)

            try:
                ran = self.run(record.id, step, snapshot)
            except UnknownSuspension:
                raise no_longer_waits(record.id) from None
            self.note_event(ran, answer, point)
            commit = self.next_commit(record, compiled, ran, claim=claim, answer=summary)
            commit.outcome, commit.digest = outcome, digest
            try:
                self.write(commit, compiled, ran)
            except CommitConflict as conflict:
                if conflict.reason == "lost":
                    raise redeemed_by_another(record.id) from None
                record = self.reload(record.id)
                continue
            self.after_commit(record)
            return self.document(record), commit.now
        raise busy()

    @staticmethod
    def note_event(ran: RunOutcome, answer: dict, point: str) -> None:
        """An answer that is an event: which event answered which task, on the task's resumption."""
        if answer.get("event"):
            for event in ran.events:
                if event.get("type") == "ExecutionResumed" and event.get("point") == point:
                    event["event"] = answer["event"]
                    break

    def after_commit(self, record: ExecutionRecord) -> None:
        """Go on after a commit: in the background if RUNNING; tell ``on_finished`` if it ended."""
        if record.status == "RUNNING":
            self.dispatch(record.id)
        elif record.status in FINISHED:
            self.on_finished(record)

    # -- committing -------------------------------------------------------------

    def next_commit(self, record: ExecutionRecord, compiled: Compiled, outcome: RunOutcome, *,
                    create: bool = False, claim: Claim | None = None, answer: str = "") -> Commit:
        """Turn a run's result into the commit that stores it (updates ``record``)."""
        result, now = outcome.result, self.clock.now()
        status = result["status"]
        previous_open = dict(record.open)
        timers: list[tuple[str, float]] = []
        redeemed = claim.point if claim else None
        record.status = status
        record.document["status"] = status
        waits: list = []
        if status in FINISHED:
            record.redrive = kept_for_redrive(result.get("snapshot"), record.redrive,
                                              self.settings.redrive_max_bytes)
            record.snapshot = None
            record.document["stopDate"] = _stop_date(outcome.events, now)
            for field in ("output", "error", "cause"):
                if field in result:
                    record.document[field] = result[field]
            ttl = self.settings.retention_seconds
            parent = record.document.get("parent")
            if parent and not create:  # a child that ended later than its start: resume the parent
                timers.append((timer_member("child", parent["executionId"], parent["point"]), now))
            if record.document.get("mapRun") and not create:  # a map run's child: its run records it
                timers.append((timer_member("mapchild", record.id), now))
        else:
            record.snapshot = result["snapshot"]
            if create and record.snapshot.get("timeoutAt"):
                timers.append((timer_member("execution", record.id), record.snapshot["timeoutAt"]))
            waits = list(iter_waits(record.snapshot))
        open_now, created, closed, more_timers = self.continuations(
            record.id, waits, previous_open, redeemed, outcome, now,
            record.snapshot.get("timeoutAt") if record.snapshot else None)
        timers += more_timers
        record.open = open_now
        if status == "RUNNING":  # picked up again if the process that goes on with it dies
            timers.append((timer_member("running", record.id), now + self.stalled_after))
        if status not in FINISHED:
            ttl = self.ttl(record, now)
        return Commit(record=record, ttl=ttl, events=outcome.events, create=create, claim=claim,
                      answer=answer, about=outcome.waits_before, created=created, closed=closed,
                      now=now, timers=timers)

    def continuations(self, execution_id: str, waits: list, previous_open: dict, redeemed: str | None,
                      outcome: RunOutcome, now: float, deadline: float | None):
        """What a run did to the continuations, from the ``waits`` open after it: the open points
        (point -> [nonce, expiresAt]), the continuations to create and to close, and the timers the
        points that opened need."""
        timers: list[tuple[str, float]] = []
        created: list[NewContinuation] = []
        open_now: dict[str, list] = {}
        for _, wait in waits:
            point = wait["id"]
            if point not in outcome.waits_before:
                timers += wait_timers(execution_id, wait)
            if wait["kind"] == "timer":
                continue
            if point in previous_open and point != redeemed:
                open_now[point] = previous_open[point]
                continue
            nonce = outcome.tokens.get(point) or new_nonce()
            expires = self.expiry(now, wait.get("timeoutAt"), deadline)
            open_now[point] = [nonce, expires]
            created.append(NewContinuation(
                key_hash=self.key_hash(execution_id, nonce),
                fields={"exec": execution_id, "point": point, "expiresAt": repr(expires), "status": "open"},
                ttl=int(expires - now) + self.settings.retention_seconds,
            ))
        closed = [(self.key_hash(execution_id, nonce), "closed", point)
                  for point, (nonce, _) in previous_open.items()
                  if point not in open_now and point != redeemed]
        return open_now, created, closed, timers

    def write(self, commit: Commit, compiled: Compiled, outcome: RunOutcome) -> None:
        """Commit with the run's task-token calls in its outbox, then make them (see ``calls``).

        The resource may have answered its token already, so ``commit.record`` is
        re-read afterwards: the caller answers with what is stored, not a stale SUSPENDED.
        """
        if commit.record.snapshot is not None or (commit.record.redrive or {}).get("snapshot"):
            commit.definition = (compiled.hash, compiled.text)  # kept as long as the execution may go on
        effects = self.calls.add_to(commit, outcome.effects, outcome.tokens)
        self.commit(commit)
        if effects:
            self.calls.perform(commit.record, effects, outcome.tokens)
            commit.record.__dict__.update(self.reload(commit.record.id).__dict__)

    def commit(self, commit: Commit) -> dict[str, int] | None:
        """Store ``commit``; an execution started with a name keeps it as long as its records.

        A record whose root Parallel or Map waits for enough branches is stored with them apart
        (``fanout.split``); a :class:`BranchCommit` changes one such branch and answers where the
        execution's points wait now (see ``Store.commit_branch``).

        The name is kept at least ``commit.ttl`` in the commit's pipeline, ahead of the
        commit script (stored again if it had lapsed), and its time to live is only ever
        raised: the name never lapses before the records, even when the process dies
        right after the commit, so a retried start cannot make a second execution of
        that name. It may outlive them; a start finds the records gone and takes the
        name over (see ``Executions._reserve``). No round trip is added to the commit.
        """
        record = commit.record
        if isinstance(commit, BranchCommit):  # the name and its holder were noted when the branches were split
            name = commit.branch.meta.get("name")
            commit.name = tuple(name) if name else None
            return self.store.commit_branch(commit, CONTINUATIONS_SHOWN)
        commit.name = self.name_of(record, commit.now)
        root = (record.snapshot or {}).get("root") or {}
        compiled = self.definition(record.definition_hash) if root.get("group") else None
        commit.split = fanout.split(record, commit.name, compiled)
        self.store.commit(commit)
        return None

    @staticmethod
    def name_of(record: ExecutionRecord, now: float) -> tuple[str, str] | None:
        """An execution started with a name: (the name, what its key holds)."""
        name = record.document.get("name")
        if not name or name == record.id:
            return None
        machine = names.machine_of(record.document.get("stateMachine"), record.definition_hash)
        return name, names.holder(record.id, machine, record.document.get("input"), now)

    @property
    def stalled_after(self) -> float:
        """How long a RUNNING execution may go without a commit before it counts as stranded.

        Whoever goes on with it commits at least once a request budget; a process that
        died after a commit, before handing the execution to the background (or whose
        background invocation was lost), leaves it RUNNING with no one running it. Its
        ``running`` timer, moved on by every commit, then hands it out again.
        """
        return self.settings.request_max_seconds + self.settings.lease_seconds

    def ttl(self, record: ExecutionRecord, now: float) -> int:
        """Keep an execution until its last deadline (continuation or timer), plus retention."""
        deadlines = [now] + [expires for _, expires in record.open.values()]
        if record.snapshot is not None:
            deadlines += [wait.get("due", now) for _, wait in iter_waits(record.snapshot)]
        return int(max(deadlines) - now) + self.settings.retention_seconds

    # -- documents --------------------------------------------------------------

    def document(self, record: ExecutionRecord, limit: int = CONTINUATIONS_SHOWN, offset: int = 0) -> dict:
        """The execution document, with open continuations and timers (task tokens revealed).

        It lists at most ``limit`` open continuations, from the ``offset``-th on (in branch
        order), and only those get their ID, links and signatures computed; when there are
        more, ``continuationsNextToken`` and ``continuationsNext`` lead to the rest.
        """
        document = dict(record.document)
        continuations, timers, map_runs = [], [], []
        count = 0
        if record.snapshot is not None:
            for branch, wait in iter_waits(record.snapshot):
                if wait["kind"] == "map-run" and self.map_runs is not None:
                    map_runs.append(self.map_runs.summary(wait, branch or None))
                if wait["kind"] == "timer":
                    timers.append({"state": wait["state"], "branch": branch or None,
                                   "purpose": wait["purpose"], "due": iso_timestamp(wait["due"])})
                    continue
                entry = record.open.get(wait["id"])
                if entry is None:
                    continue
                count += 1
                if count <= offset or len(continuations) >= limit:
                    continue
                nonce, expires = entry
                ident = continuation_id(record.id[:4], nonce, self.settings.signing_secret)
                continuations.append({
                    "id": ident,
                    "state": wait["state"],
                    "branch": branch or None,
                    "kind": wait["kind"],
                    **self.questions.links(ident, wait.get("parameters")),
                    "expiresAt": iso_timestamp(expires),
                    "parameters": wait.get("parameters"),
                    **({"detail": wait["detail"]} if wait.get("detail") else {}),
                })
        document["continuations"] = continuations
        document["continuationsCount"] = count
        shown = offset + len(continuations)
        if count > shown:
            token = encode_token((shown, record.id))
            document["continuationsNextToken"] = token
            size = "" if limit == CONTINUATIONS_SHOWN else f"&limit={limit}"
            document["continuationsNext"] = (f"{self.questions.base_url}/executions/{record.id}"
                                             f"?nextToken={token}{size}")
        if timers:
            document["timers"] = timers
        if map_runs:
            document["mapRuns"] = map_runs
        return self.tokens.revealed(record, document)




def kept_for_redrive(snapshot: dict | None, previous: dict | None, max_bytes: int) -> dict | None:
    """What the record of an execution that ends keeps for a redrive: its snapshot where it stopped (if
    at most ``max_bytes`` of JSON) and the client tokens of earlier redrives; None when neither."""
    kept = {}
    if snapshot is not None and len(json.dumps(snapshot, separators=(",", ":"), default=str)) <= max_bytes:
        kept["snapshot"] = snapshot
    if (previous or {}).get("tokens"):
        kept["tokens"] = previous["tokens"]
    return kept or None


def _stop_date(events: list[dict], now: float) -> str:
    """When the run ended the execution: the commit's time, which is also when an answer that ended it
    counts as given (``answeredAt``); a timeout's is the deadline its event carries."""
    if events and events[-1].get("type") == "ExecutionTimedOut":
        return events[-1]["timestamp"]
    return iso_timestamp(now)

