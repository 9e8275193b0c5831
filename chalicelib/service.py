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
from dataclasses import dataclass
from typing import Any, Callable

from . import catalog
from .asl import InvalidDefinition, SystemClock, load, proceed, resume, run
from .asl.clock import iso_timestamp
from .asl.engine import UnknownSuspension, iter_waits
from .asl.interpreter import Compiled
from .config import ONE_YEAR, Settings
from .continuations import continuation_id, id_hash, is_well_formed, new_execution_id, new_nonce, tag_of
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
        text = self.store.get_definition(definition_hash)
        if text is None:
            raise ServiceError(410, "ExecutionExpired", "The execution's definition is no longer stored.")
        return load(text)

    # -- starting ---------------------------------------------------------------

    def start(self, definition: Any, input: Any, *, state_machine: str | None, trusted: bool,
              name: str | None = None) -> dict:
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
        answer = {"error": error, "cause": cause} if error is not None else {"result": result}
        return self.resume_claimed(claim, answer)

    def claim(self, continuation: str) -> Claim:
        if not is_well_formed(continuation):
            raise _not_found(continuation)
        try:
            return self.store.claim(tag_of(continuation), id_hash(continuation), self.clock.now(),
                                    self.settings.lease_seconds, new_nonce())
        except ClaimRefused as refused:
            raise _refusal(refused) from None

    def resume_claimed(self, claim: Claim, answer: dict) -> dict:
        record = claim.execution
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
                    return resume(compiled, snapshot, claim.point, error=answer["error"],
                                  cause=answer.get("cause"), copy_snapshot=False, **options)
                return resume(compiled, snapshot, claim.point, answer.get("result"),
                              copy_snapshot=False, **options)

            try:
                outcome = self._run(record.id, step)
            except UnknownSuspension:
                raise ServiceError(410, "ContinuationExpired",
                                   "The execution no longer waits at this point.",
                                   executionId=record.id) from None
            commit = self._next(record, compiled, outcome, claim=claim, answer=summary)
            try:
                self._write(commit, compiled)
            except CommitConflict as conflict:
                if conflict.reason == "lost":
                    raise ServiceError(409, "ContinuationAlreadyRedeemed",
                                       "The continuation was redeemed by another request.",
                                       executionId=record.id) from None
                record = self._reload(record.id)
                continue
            if record.status == "RUNNING":
                self.dispatch(record.id)
            return self.document(record)
        raise ServiceError(503, "Busy", "The execution is changing too often; try again.")

    def release(self, claim: Claim) -> None:
        self.store.release(claim)

    # -- running on (after a budget ran out) ------------------------------------

    def continue_running(self, execution_id: str, rounds: int | None = None) -> dict | None:
        """Run a RUNNING execution on, one budget at a time, committing each step."""
        done = 0
        while rounds is None or done < rounds:
            record = self.store.load(execution_id)
            if record is None or record.status != "RUNNING" or record.snapshot is None:
                return None if record is None else self.document(record)
            compiled = self._stored_definition(record.definition_hash)
            outcome = self._run(record.id, lambda options: proceed(
                compiled, record.snapshot, copy_snapshot=False, **options))
            try:
                self._write(self._next(record, compiled, outcome), compiled)
            except CommitConflict:
                continue  # someone else changed it (a redemption, an abort): reload
            done += 1
        record = self.store.load(execution_id)
        return None if record is None else self.document(record)

    # -- stopping ---------------------------------------------------------------

    def abort(self, execution_id: str) -> dict:
        for _ in range(MAX_COMMIT_ATTEMPTS):
            record = self._reload(execution_id)
            if record.status in FINISHED:
                raise ServiceError(409, "ExecutionAlreadyFinished",
                                   f"The execution has already ended ({record.status}).",
                                   executionId=execution_id)
            closed = [(point, nonce) for point, (nonce, _) in record.open.items()]
            now = self.clock.now()
            record.status = "ABORTED"
            record.document.update(status="ABORTED", stopDate=iso_timestamp(now),
                                   error="States.Aborted", cause="Stopped by a DELETE request.")
            record.snapshot, record.open = None, {}
            commit = Commit(
                record=record, ttl=self.settings.retention_seconds,
                events=[{"type": "ExecutionAborted", "timestamp": iso_timestamp(now)}],
                closed=[(self._hash(execution_id, nonce), "aborted") for _, nonce in closed], now=now)
            try:
                self.store.commit(commit)
            except CommitConflict:
                continue
            return self.document(record)
        raise ServiceError(503, "Busy", "The execution is changing too often; try again.")

    # -- reading ----------------------------------------------------------------

    def describe(self, execution_id: str, with_history: bool = True) -> dict:
        record = self._reload(execution_id)
        document = self.document(record)
        if with_history:
            document["history"] = self.store.history(execution_id)
        return document

    def describe_continuation(self, continuation: str) -> dict:
        """What a continuation waits for; reads only."""
        if not is_well_formed(continuation):
            raise _not_found(continuation)
        fields = self.store.continuation(tag_of(continuation), id_hash(continuation))
        if fields is None:
            raise _not_found(continuation)
        record = self.store.load(fields["exec"])
        expires = float(fields["expiresAt"])
        status = fields["status"]
        if status in ("open", "claimed") and expires <= self.clock.now():
            status = "expired"
        info = {
            "id": continuation,
            "status": {"open": "waiting", "claimed": "waiting"}.get(status, status),
            "executionId": fields["exec"],
            "executionStatus": record.status if record else "EXPIRED",
            "state": fields.get("state"),
            "branch": fields.get("branch") or None,
            "kind": fields.get("kind"),
            "parameters": json.loads(fields.get("parameters") or "null"),
            "expiresAt": iso_timestamp(expires),
        }
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
                    "url": f"{self.base_url}/continuations/{ident}",
                    "expiresAt": iso_timestamp(expires),
                    "parameters": wait.get("parameters"),
                })
        document["continuations"] = continuations
        if timers:
            document["timers"] = timers
        return document

    # -- internals --------------------------------------------------------------

    def _hash(self, execution_id: str, nonce: str) -> str:
        return id_hash(continuation_id(execution_id[:4], nonce, self.settings.signing_secret))

    def _reload(self, execution_id: str) -> ExecutionRecord:
        record = self.store.load(execution_id) if _plausible_id(execution_id) else None
        if record is None:
            raise ServiceError(404, "ExecutionNotFound", "No execution has this ID (or it has expired).",
                               executionId=execution_id)
        return record

    def _run(self, execution_id: str, step: Callable[[dict], dict]) -> RunOutcome:
        events: list[dict] = []
        tokens: dict[str, str] = {}
        secret = self.settings.signing_secret

        def token_factory(point: str) -> str:
            nonce = tokens[point] = new_nonce()
            return continuation_id(execution_id[:4], nonce, secret)

        result = step(dict(
            handlers=self.handlers, clock=self.clock,
            inline_wait_limit=self.settings.inline_wait_seconds,
            max_transitions=self.settings.request_max_transitions,
            max_seconds=self.settings.request_max_seconds,
            listener=events.append, token_factory=token_factory,
        ))
        return RunOutcome(result, events, tokens)

    def _next(self, record: ExecutionRecord, compiled: Compiled, outcome: RunOutcome, *,
              create: bool = False, claim: Claim | None = None, answer: str = "") -> Commit:
        """Turn a run's result into the commit that stores it (updates ``record``)."""
        result, now = outcome.result, self.clock.now()
        status = result["status"]
        previous_open = dict(record.open)
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
        else:
            record.snapshot = result["snapshot"]
            latest = now
            for branch, wait in iter_waits(record.snapshot):
                if wait["kind"] == "timer":
                    continue
                point = wait["id"]
                if point in previous_open and point != redeemed:
                    open_now[point] = previous_open[point]
                    latest = max(latest, previous_open[point][1])
                    continue
                nonce = outcome.tokens.get(point) or new_nonce()
                expires = min(wait.get("timeoutAt") or now + self.settings.continuation_ttl, now + ONE_YEAR)
                latest = max(latest, expires)
                open_now[point] = [nonce, expires]
                created.append(NewContinuation(
                    key_hash=self._hash(record.id, nonce),
                    fields={"exec": record.id, "point": point, "state": wait["state"], "kind": wait["kind"],
                            "branch": branch, "expiresAt": repr(expires), "status": "open",
                            "parameters": json.dumps(wait.get("parameters"), separators=(",", ":"))},
                    ttl=int(expires - now) + self.settings.retention_seconds,
                ))
            ttl = int(latest - now) + self.settings.retention_seconds
        closed = [(self._hash(record.id, nonce), "closed")
                  for point, (nonce, _) in previous_open.items()
                  if point not in open_now and point != redeemed]
        record.open = open_now
        return Commit(record=record, ttl=ttl, events=outcome.events, create=create, claim=claim,
                      answer=answer, created=created, closed=closed, now=now)

    def _write(self, commit: Commit, compiled: Compiled) -> None:
        if commit.record.snapshot is not None:
            self.store.put_definition(compiled.hash, compiled.text, commit.ttl)
        self.store.commit(commit)


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
