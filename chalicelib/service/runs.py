"""The continuation service: start, resume, stop and describe executions.

This module knows nothing of HTTP. It runs the interpreter, turns its results
into execution documents, and writes every change to the store as one atomic
commit guarded by the execution's version (optimistic concurrency): two
continuations of one execution redeemed at the same moment both take effect,
one after the other, and a continuation is consumed only by the commit that
also writes the execution's next state.
"""
from __future__ import annotations

import fnmatch
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from . import forms, links
from .asl import InvalidDefinition, SystemClock, load, proceed, resume, run
from .asl.clock import iso_timestamp
from .asl.engine import UnknownSuspension, iter_waits
from .asl.interpreter import Compiled
from .asl.interpreter import cached as cached_definition
from .asl.tasks import as_resolver
from .children import ChildExecutions
from .children import outcome as child_outcome
from .config import ONE_YEAR, Settings
from .continuations import continuation_id, id_hash, is_well_formed, new_execution_id, new_nonce, tag_of
from .mailer import ApprovalEmails
from .resources import default_handlers
from .store import Claim, ClaimRefused, Commit, CommitConflict, ExecutionRecord, NewContinuation, Store

log = logging.getLogger(__name__)

FINISHED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
MAX_COMMIT_ATTEMPTS = 20


class ServiceError(Exception):
    """An error the HTTP layer answers with ``status`` and ``{"error": code, "message": ...}``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def to_json(self) -> dict:
        return {"error": self.code, "message": self.message, **self.extra}


@dataclass
class RunOutcome:
    result: dict
    events: list[dict]
    tokens: dict[str, str]  # point -> nonce of task tokens issued during the run
    waits_before: dict[str, dict]  # what the points open before the run asked (see ``asked``)


class Service:
    def __init__(self, settings: Settings, store: Store, *, clock=None, handlers=None,
                 dispatch: Callable[[str], None] | None = None, base_url: str = ""):
        self.settings = settings
        self.store = store
        self.clock = clock or SystemClock()
        self.handlers = handlers
        self.dispatch = dispatch or (lambda execution_id: None)
        self.base_url = base_url  # where continuation URLs point

    # -- definitions ------------------------------------------------------------

    def compile_definition(self, definition: Any, *, trusted: bool) -> Compiled:
        try:
            compiled = load(definition)
        except InvalidDefinition as invalid:
            raise ServiceError(400, "InvalidDefinition", "The definition is not valid ASL.",
                               problems=[p.to_json() for p in invalid.problems]) from None
        if not trusted:
            refused = disallowed_resources(compiled.definition, self.settings.allowed_resources)
            if refused:
                raise ServiceError(403, "ResourceNotAllowed",
                                   "The definition calls task resources this stage does not allow.",
                                   problems=refused)
        return compiled

    def _stored_definition(self, definition_hash: str) -> Compiled:
        """The definition an execution runs: compiled in this process already, or read from Redis."""
        compiled = cached_definition(definition_hash)
        if compiled is not None:
            return compiled
        text = self.store.get_definition(definition_hash)
        if text is None:
            raise ServiceError(410, "ExecutionExpired", "The execution's definition is no longer stored.")
        return load(text)

    # -- starting ---------------------------------------------------------------

    def start(self, definition: Any, input: Any, *, state_machine: str | None, trusted: bool,
              name: str | None = None, parent: dict | None = None) -> dict:
        """Start an execution; ``parent`` links a child execution to the parent's waiting task."""
        compiled = self.compile_definition(definition, trusted=trusted)
        execution_id = new_execution_id()
        now = self.clock.now()
        outcome = self._run(execution_id, lambda options: run(
            compiled, input, name=name or execution_id, state_machine_name=state_machine or "inline",
            **options))
        record = ExecutionRecord(
            id=execution_id, version=0, status="RUNNING", definition_hash=compiled.hash,
            document={
                "executionId": execution_id,
                "name": name or execution_id,
                "stateMachine": state_machine,
                "status": "RUNNING",
                "input": input,
                "startDate": iso_timestamp(now),
            },
            snapshot=None, open={},
        )
        if parent is not None:
            record.document["parent"] = parent
        commit = self._next(record, compiled, outcome, create=True)
        self._write(commit, compiled)
        if record.status == "RUNNING":
            self.dispatch(execution_id)
        return self.document(record)

    # -- redeeming --------------------------------------------------------------

    def redeem(self, continuation: str, *, result: Any = None, error: str | None = None,
               cause: str | None = None) -> dict:
        """Resume the execution waiting on ``continuation`` (at most once)."""
        claim = self.claim(continuation)
        if error is None:
            self._check_answer(claim, result)
        answer = {"error": error, "cause": cause} if error is not None else {"result": result}
        return self.resume_claimed(claim, answer)

    def _check_answer(self, claim: Claim, result: Any) -> None:
        """Refuse (422) an answer that does not fit the question, and give the claim back.

        Checked after claiming because the claim brings the question along (one round
        trip fewer than reading it first); a refused answer releases the claim at once.
        """
        wait = asked(claim.execution.snapshot).get(claim.point) or {}
        problems = forms.check_answer(forms.question_of(wait.get("parameters")), result)
        if problems:
            self.store.release(claim)
            raise ServiceError(422, "InvalidAnswer", "The answer does not fit the question.",
                               fieldErrors=problems)

    def claim(self, continuation: str) -> Claim:
        if not is_well_formed(continuation):
            raise _not_found(continuation)
        try:
            claim = self.store.claim(tag_of(continuation), id_hash(continuation), self.clock.now(),
                                     self.settings.lease_seconds, new_nonce())
        except ClaimRefused as refused:
            raise _refusal(refused) from None
        self._reveal(claim.execution)
        return claim

    def resume_claimed(self, claim: Claim, answer: dict, outcome: str = "redeemed") -> dict:
        return self._resume(claim.execution, claim.point, answer, claim=claim, outcome=outcome)

    def _resume(self, record: ExecutionRecord, point: str, answer: dict, *,
                claim: Claim | None = None, outcome: str = "redeemed") -> dict:
        """Answer one suspension point and commit; on a version conflict, re-read and re-apply."""
        compiled = self._stored_definition(record.definition_hash)
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
                ran = self._run(record.id, step, snapshot)
            except UnknownSuspension:
                raise ServiceError(410, "ContinuationExpired",
                                   "The execution no longer waits at this point.",
                                   executionId=record.id) from None
            commit = self._next(record, compiled, ran, claim=claim, answer=summary)
            commit.outcome = outcome
            try:
                self._write(commit, compiled)
            except CommitConflict as conflict:
                if conflict.reason == "lost":
                    raise ServiceError(409, "ContinuationAlreadyRedeemed",
                                       "The continuation was redeemed by another request.",
                                       executionId=record.id) from None
                record = self._reload(record.id)
                continue
            self._after_commit(record)
            return self.document(record)
        raise ServiceError(503, "Busy", "The execution is changing too often; try again.")

    def _after_commit(self, record: ExecutionRecord) -> None:
        """Go on after a commit: in the background if RUNNING; resume a waiting parent if ended."""
        if record.status == "RUNNING":
            self.dispatch(record.id)
        parent = record.document.get("parent")
        if parent and record.status in FINISHED:
            try:  # at once if we can; the timer written with the commit retries otherwise
                self._fire("child", parent["executionId"], parent["point"])
            except Exception:  # noqa: BLE001 - the timer will do it
                log.warning("resuming parent %s of %s failed; the timer will retry",
                            parent["executionId"], record.id, exc_info=True)

    # -- heartbeats and timers --------------------------------------------------

    def heartbeat(self, continuation: str) -> dict:
        """Extend a waiting task's heartbeat deadline (as SendTaskHeartbeat does)."""
        info = self.describe_continuation(continuation)
        if info["status"] == "redeemed":
            raise _refusal(ClaimRefused("redeemed", info["executionId"]))
        if info["status"] != "waiting":
            raise _refusal(ClaimRefused("closed" if info["status"] == "closed" else "expired",
                                        info["executionId"], info.get("reason", "")))
        point = self._continuation_fields(continuation)["point"]
        for _ in range(MAX_COMMIT_ATTEMPTS):
            record = self._reload(info["executionId"])
            wait = _open_wait(record, point)
            if wait is None:
                raise _refusal(ClaimRefused("closed", record.id))
            if not wait.get("heartbeatSeconds"):
                return {**info, "heartbeatAt": None}
            now = self.clock.now()
            wait["heartbeatAt"] = now + wait["heartbeatSeconds"]
            commit = Commit(record=record, ttl=self._ttl(record, now), now=now,
                            hidden=self._hidden(record.id, record.open),
                            events=[{"type": "TaskHeartbeat", "timestamp": iso_timestamp(now),
                                     "state": wait["state"]}],
                            timers=[(timer_member("heartbeat", record.id, wait["id"]), wait["heartbeatAt"])])
            try:
                self.store.commit(commit)
            except CommitConflict:
                continue
            return {**info, "heartbeatAt": iso_timestamp(wait["heartbeatAt"])}
        raise ServiceError(503, "Busy", "The execution is changing too often; try again.")

    def tick(self, limit: int = 500) -> dict[str, int]:
        """Fire the timers that are due. Safe to run in several processes at once."""
        counts = {"fired": 0, "rescheduled": 0, "busy": 0}
        for member, _ in self.store.due_timers(self.clock.now(), limit):
            kind, execution_id, point = member.split("|", 2)
            try:
                outcome = self._fire(kind, execution_id, point)
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
            counts["fired"] += 1
        return counts

    def _fire(self, kind: str, execution_id: str, point: str) -> bool | float:
        """Carry out one due timer: True when done, False to retry, or a later due time."""
        now = self.clock.now()
        record = self._load(execution_id)
        if record is None or record.status in FINISHED or record.snapshot is None:
            return True
        if kind == "execution":
            due = record.snapshot.get("timeoutAt") or now
            if due > now:
                return due
            self._stop(record.id, "TIMED_OUT", "States.Timeout",
                       "The execution exceeded its TimeoutSeconds.", "ExecutionTimedOut", "timeout")
            return True
        wait = _open_wait(record, point)
        if wait is None:
            return True
        if kind == "child":
            return self._resume_from_child(record, wait)
        due = {"wait": wait.get("due"), "timeout": wait.get("timeoutAt"),
               "heartbeat": wait.get("heartbeatAt")}.get(kind)
        if due is None:
            return True
        if due > now:  # never early: the deadline moved (heartbeat) or the clock is behind
            return due
        if kind == "wait":
            self._resume(record, point, {"result": None})
            return True
        if kind == "timeout":
            answer = {"error": "States.Timeout", "cause": "The task did not get an answer within its TimeoutSeconds."}
        else:
            answer = {"error": "States.HeartbeatTimeout",
                      "cause": "The task sent no heartbeat within its HeartbeatSeconds."}
        return self._answer_point(record, point, answer, "timeout" if kind == "timeout" else "heartbeat-timeout")

    def _answer_point(self, record: ExecutionRecord, point: str, answer: dict, outcome: str) -> bool:
        """Answer a point that has a continuation, claiming it first (even if expired)."""
        nonce = record.open.get(point, [None])[0]
        if nonce is None:
            return True
        ident = continuation_id(record.id[:4], nonce, self.settings.signing_secret)
        try:
            claim = self.store.claim(tag_of(ident), id_hash(ident), self.clock.now(),
                                     self.settings.lease_seconds, new_nonce(), force=True)
        except ClaimRefused as refused:
            return refused.reason != "busy"  # busy: someone holds it now; retry next tick
        self._reveal(claim.execution)
        self.resume_claimed(claim, answer, outcome=outcome)
        return True

    def _resume_from_child(self, parent: ExecutionRecord, wait: dict) -> bool:
        child = self._load((wait.get("detail") or {}).get("executionId", ""))
        if child is None:
            return self._answer_point(parent, wait["id"], {
                "error": "States.TaskFailed", "cause": "The child execution no longer exists."}, "redeemed")
        if child.status not in FINISHED:
            return True  # it will write a new timer when it ends
        mode = (child.document.get("parent") or {}).get("mode", "sync")
        return self._answer_point(parent, wait["id"], child_outcome(child.document, mode), "redeemed")

    def _stop(self, execution_id: str, status: str, error: str, cause: str, event: str,
              reason: str) -> dict:
        """End an execution from outside (abort, execution timeout); close its continuations."""
        for _ in range(MAX_COMMIT_ATTEMPTS):
            record = self._reload(execution_id)
            if record.status in FINISHED:
                raise ServiceError(409, "ExecutionAlreadyFinished",
                                   f"The execution has already ended ({record.status}).",
                                   executionId=execution_id)
            now = self.clock.now()
            closed = [(self._hash(execution_id, nonce), reason, point)
                      for point, (nonce, _) in record.open.items()]
            about = asked(record.snapshot)
            hidden = self._hidden(execution_id, record.open)
            record.status = status
            record.document.update(status=status, stopDate=iso_timestamp(now), error=error, cause=cause)
            record.snapshot, record.open = None, {}
            commit = Commit(record=record, ttl=self.settings.retention_seconds, closed=closed, about=about,
                            now=now, hidden=hidden,
                            events=[{"type": event, "timestamp": iso_timestamp(now), "error": error,
                                     "cause": cause}])
            try:
                self.store.commit(commit)
            except CommitConflict:
                continue
            return self.document(record)
        raise ServiceError(503, "Busy", "The execution is changing too often; try again.")

    def _ttl(self, record: ExecutionRecord, now: float) -> int:
        """Keep an execution until its last deadline (continuation or timer), plus retention."""
        deadlines = [now] + [expires for _, expires in record.open.values()]
        if record.snapshot is not None:
            deadlines += [wait.get("due", now) for _, wait in iter_waits(record.snapshot)]
        return int(max(deadlines) - now) + self.settings.retention_seconds

    # -- running on (after a budget ran out) ------------------------------------

    def continue_running(self, execution_id: str, seconds: float | None = None) -> dict | None:
        """Run a RUNNING execution on, one request budget at a time, committing each step.

        With ``seconds`` (what is left of a Lambda invocation), stop in time and hand
        the rest to a new invocation, so a long execution is never cut off half-way.
        """
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            record = self._load(execution_id)
            if record is None or record.status != "RUNNING" or record.snapshot is None:
                return None if record is None else self.document(record)
            if deadline is not None and time.monotonic() + self.settings.request_max_seconds > deadline:
                self.dispatch(execution_id)
                return self.document(record)
            compiled = self._stored_definition(record.definition_hash)
            outcome = self._run(record.id, lambda options: proceed(
                compiled, record.snapshot, copy_snapshot=False, **options), record.snapshot)
            try:
                self._write(self._next(record, compiled, outcome), compiled)
            except CommitConflict:
                continue  # someone else changed it (a redemption, an abort): reload
            if record.status != "RUNNING":
                self._after_commit(record)

    # -- stopping ---------------------------------------------------------------

    def abort(self, execution_id: str) -> dict:
        return self._stop(execution_id, "ABORTED", "States.Aborted", "Stopped by a DELETE request.",
                          "ExecutionAborted", "aborted")

    # -- reading ----------------------------------------------------------------

    def describe(self, execution_id: str, with_history: bool = True) -> dict:
        record = self._reload(execution_id)
        document = self.document(record)
        if with_history:
            document["history"] = self._revealed(record, self.store.history(execution_id))
        return document

    def _continuation_fields(self, continuation: str) -> dict:
        fields = None
        if is_well_formed(continuation):
            fields = self.store.continuation(tag_of(continuation), id_hash(continuation))
        if fields is None:
            raise _not_found(continuation)
        return fields

    def describe_continuation(self, continuation: str) -> dict:
        """What a continuation waits for; reads only."""
        fields = self._continuation_fields(continuation)
        record = self._load(fields["exec"])
        expires = float(fields["expiresAt"])
        status = fields["status"]
        if status in ("open", "claimed") and expires <= self.clock.now():
            status = "expired"
        if fields.get("about"):  # answered or closed: what it asked was kept with it
            about = json.loads(fields["about"]) or {}
        else:
            about = asked(record.snapshot if record else None).get(fields["point"]) or {}
        info = {
            "id": continuation,
            "status": {"open": "waiting", "claimed": "waiting"}.get(status, status),
            "executionId": fields["exec"],
            "executionStatus": record.status if record else "EXPIRED",
            "state": about.get("state"),
            "branch": about.get("branch"),
            "kind": about.get("kind"),
            "parameters": about.get("parameters"),
            "expiresAt": iso_timestamp(expires),
        }
        if info["status"] == "waiting":
            info.update(self.continuation_links(continuation, info["parameters"]))
        if fields.get("answer"):
            info["answer"] = json.loads(fields["answer"])
        if fields.get("reason"):
            info["reason"] = fields["reason"]
        return info

    def document(self, record: ExecutionRecord) -> dict:
        """The execution document, with open continuations and timers."""
        document = dict(record.document)
        continuations, timers = [], []
        if record.snapshot is not None:
            for branch, wait in iter_waits(record.snapshot):
                if wait["kind"] == "timer":
                    timers.append({"state": wait["state"], "branch": branch or None,
                                   "purpose": wait["purpose"], "due": iso_timestamp(wait["due"])})
                    continue
                entry = record.open.get(wait["id"])
                if entry is None:
                    continue
                nonce, expires = entry
                ident = continuation_id(record.id[:4], nonce, self.settings.signing_secret)
                continuations.append({
                    "id": ident,
                    "state": wait["state"],
                    "branch": branch or None,
                    "kind": wait["kind"],
                    **self.continuation_links(ident, wait.get("parameters")),
                    "expiresAt": iso_timestamp(expires),
                    "parameters": wait.get("parameters"),
                    **({"detail": wait["detail"]} if wait.get("detail") else {}),
                })
        document["continuations"] = continuations
        if timers:
            document["timers"] = timers
        return document

    def continuation_links(self, continuation: str, parameters: Any) -> dict:
        """``url`` (the continuation's page) and, for a question with Choices, signed ``decisions``."""
        out: dict[str, Any] = {"url": links.page_url(self.base_url, continuation)}
        choices = forms.question_of(parameters).choices
        if choices:
            out["decisions"] = links.decision_urls(self.base_url, continuation, choices,
                                                   self.settings.signing_secret)
        return out

    def answer_trail(self, continuation: str) -> list[str]:
        """The states the execution entered after this continuation was answered (from its history)."""
        fields = self._continuation_fields(continuation)
        events = self.store.history(fields["exec"])
        for index in range(len(events) - 1, -1, -1):
            if events[index].get("type") == "ExecutionResumed" and events[index].get("point") == fields["point"]:
                return [e["state"] for e in events[index + 1:] if e.get("type") == "StateEntered"]
        return []

    def definition_of(self, execution_id: str) -> dict:
        """The definition an execution runs (410 once it is no longer stored)."""
        return self._stored_definition(self._reload(execution_id).definition_hash).definition

    def expiry(self, now: float, timeout_at: float | None) -> float:
        """When a continuation created at ``now`` expires: its task's timeout, else the stage's TTL."""
        return min(timeout_at or now + self.settings.continuation_ttl, now + ONE_YEAR)

    # -- internals --------------------------------------------------------------

    def _hash(self, execution_id: str, nonce: str) -> str:
        return id_hash(continuation_id(execution_id[:4], nonce, self.settings.signing_secret))

    # Task tokens: a definition may pass ``$$.Task.Token`` (a continuation ID) into its data. Redis
    # must not hold usable IDs, so commits store a marker naming the point instead, and loads put
    # the ID back while the point is open (after that the ID is of no use, and the marker stays).

    def _hidden(self, execution_id: str, *opens: dict) -> dict[str, str]:
        """``{ID: marker}`` for the points of ``opens`` (point -> [nonce, ...])."""
        return {continuation_id(execution_id[:4], entry[0], self.settings.signing_secret): token_marker(point)
                for open_ in opens for point, entry in open_.items()}

    def _revealed(self, record: ExecutionRecord, value: Any) -> Any:
        """``value`` with the markers of the record's open points replaced by their IDs."""
        text = json.dumps(value, separators=(",", ":"))
        if TOKEN_MARKER not in text:
            return value
        for ident, marker in self._hidden(record.id, record.open).items():
            text = text.replace(marker, ident)
        return json.loads(text)

    def _reveal(self, record: ExecutionRecord | None) -> ExecutionRecord | None:
        if record is not None and record.open:
            record.snapshot = self._revealed(record, record.snapshot)
            record.history = self._revealed(record, record.history)
        return record

    def _load(self, execution_id: str) -> ExecutionRecord | None:
        return self._reveal(self.store.load(execution_id))

    def _reload(self, execution_id: str) -> ExecutionRecord:
        record = self._load(execution_id) if _plausible_id(execution_id) else None
        if record is None:
            raise ServiceError(404, "ExecutionNotFound", "No execution has this ID (or it has expired).",
                               executionId=execution_id)
        return record

    def _run(self, execution_id: str, step: Callable[[dict], dict], snapshot: dict | None = None) -> RunOutcome:
        """Run ``step`` (which may change ``snapshot`` in place) with the service's options."""
        before = asked(snapshot)
        events: list[dict] = []
        tokens: dict[str, str] = {}
        secret = self.settings.signing_secret

        def token_factory(point: str) -> str:
            nonce = tokens[point] = new_nonce()
            return continuation_id(execution_id[:4], nonce, secret)

        resolver = ApprovalEmails(self, ChildExecutions(self, execution_id, as_resolver(
            default_handlers() if self.handlers is None else self.handlers)))
        result = step(dict(
            handlers=resolver, clock=self.clock,
            inline_wait_limit=self.settings.inline_wait_seconds,
            max_transitions=self.settings.request_max_transitions,
            max_seconds=self.settings.request_max_seconds,
            listener=events.append, token_factory=token_factory,
        ))
        return RunOutcome(result, events, tokens, before)

    def _next(self, record: ExecutionRecord, compiled: Compiled, outcome: RunOutcome, *,
              create: bool = False, claim: Claim | None = None, answer: str = "") -> Commit:
        """Turn a run's result into the commit that stores it (updates ``record``)."""
        result, now = outcome.result, self.clock.now()
        status = result["status"]
        previous_open = dict(record.open)
        timers: list[tuple[str, float]] = []
        redeemed = claim.point if claim else None
        record.status = status
        record.document["status"] = status
        created: list[NewContinuation] = []
        open_now: dict[str, list] = {}
        if status in FINISHED:
            record.snapshot = None
            record.document["stopDate"] = iso_timestamp(now)
            for field in ("output", "error", "cause"):
                if field in result:
                    record.document[field] = result[field]
            ttl = self.settings.retention_seconds
            parent = record.document.get("parent")
            if parent and not create:  # a child that ended later than its start: resume the parent
                timers.append((timer_member("child", parent["executionId"], parent["point"]), now))
        else:
            record.snapshot = result["snapshot"]
            if create and record.snapshot.get("timeoutAt"):
                timers.append((timer_member("execution", record.id), record.snapshot["timeoutAt"]))
            for _, wait in iter_waits(record.snapshot):
                point = wait["id"]
                if point not in outcome.waits_before:
                    timers += wait_timers(record.id, wait)
                if wait["kind"] == "timer":
                    continue
                if point in previous_open and point != redeemed:
                    open_now[point] = previous_open[point]
                    continue
                nonce = outcome.tokens.get(point) or new_nonce()
                expires = self.expiry(now, wait.get("timeoutAt"))
                open_now[point] = [nonce, expires]
                created.append(NewContinuation(
                    key_hash=self._hash(record.id, nonce),
                    fields={"exec": record.id, "point": point, "expiresAt": repr(expires), "status": "open"},
                    ttl=int(expires - now) + self.settings.retention_seconds,
                ))
        closed = [(self._hash(record.id, nonce), "closed", point)
                  for point, (nonce, _) in previous_open.items()
                  if point not in open_now and point != redeemed]
        record.open = open_now
        if status not in FINISHED:
            ttl = self._ttl(record, now)
        tokens = {point: [nonce] for point, nonce in outcome.tokens.items()}
        return Commit(record=record, ttl=ttl, events=outcome.events, create=create, claim=claim,
                      answer=answer, about=outcome.waits_before, created=created, closed=closed,
                      now=now, timers=timers, hidden=self._hidden(record.id, previous_open, open_now, tokens))

    def _write(self, commit: Commit, compiled: Compiled) -> None:
        if commit.record.snapshot is not None:
            commit.definition = (compiled.hash, compiled.text)
        self.store.commit(commit)


TOKEN_MARKER = "{{TaskToken "


def token_marker(point: str) -> str:
    return f"{TOKEN_MARKER}{point}}}}}"


def timer_member(kind: str, execution_id: str, point: str = "") -> str:
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


def disallowed_resources(definition: dict, patterns: tuple[str, ...]) -> list[dict]:
    """Task states (at any depth) whose Resource matches none of ``patterns``."""
    refused = []

    def visit(states: dict) -> None:
        for name, spec in (states or {}).items():
            if not isinstance(spec, dict):
                continue
            if spec.get("Type") == "Task":
                resource = str(spec.get("Resource", ""))
                if not any(fnmatch.fnmatchcase(resource, p) for p in patterns):
                    refused.append({"state": name, "field": "Resource",
                                    "message": f"State '{name}': resource '{resource}' is not allowed"})
            for child in spec.get("Branches") or []:
                visit(child.get("States"))
            for key in ("ItemProcessor", "Iterator"):
                if isinstance(spec.get(key), dict):
                    visit(spec[key].get("States"))

    visit(definition.get("States"))
    return refused


def asked(snapshot: dict | None) -> dict[str, dict]:
    """What each open suspension point asks: its state, branch, kind and parameters."""
    return {wait["id"]: {"state": wait["state"], "branch": branch or None, "kind": wait["kind"],
                         "parameters": wait.get("parameters")}
            for branch, wait in iter_waits(snapshot or {})}


def _open_wait(record: ExecutionRecord, point: str) -> dict | None:
    for _, wait in iter_waits(record.snapshot or {}):
        if wait["id"] == point:
            return wait
    return None


def _plausible_id(execution_id: str) -> bool:
    return 4 <= len(execution_id) <= 64 and all(c.isalnum() or c in "-_" for c in execution_id)


def _not_found(continuation: str) -> ServiceError:
    return ServiceError(404, "ContinuationNotFound", "No continuation has this ID.")


def _refusal(refused: ClaimRefused) -> ServiceError:
    execution = {"executionId": refused.execution_id} if refused.execution_id else {}
    if refused.reason == "missing":
        return ServiceError(404, "ContinuationNotFound", "No continuation has this ID.")
    if refused.reason in ("redeemed", "busy"):
        return ServiceError(409, "ContinuationAlreadyRedeemed",
                            f"The continuation was already redeemed (execution {refused.execution_id}).",
                            **execution)
    if refused.reason == "closed":
        why = {"aborted": "the execution was aborted"}.get(refused.detail, "the execution no longer waits here")
        return ServiceError(410, "ContinuationExpired", f"The continuation no longer works: {why}.",
                            **execution)
    return ServiceError(410, "ContinuationExpired", "The continuation has expired.", **execution)
