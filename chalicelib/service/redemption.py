"""Continuations: claim one, answer it (at most once), heartbeat it, say what it asks.

Retrying is safe for the caller: the continuation keeps a digest of the answer it
was redeemed with, so the same answer sent again is answered with the execution
(``"replay": true``) and resumes nothing; another answer is 409. An attempt that
fails after claiming gives its claim back when it can; one that crashed leaves a
lease, and until it runs out callers are told ``ContinuationBusy`` and when to retry.

What a continuation asks, and its heartbeats, read its point alone (``Points.read_continuation``): in an
execution whose branches are stored apart, that is the branch it is in, and a heartbeat writes only it.
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from ..asl.clock import iso_timestamp
from ..store import BranchClaim, Claim, ClaimRefused, CommitConflict, PointRead
from . import fanout, holders
from .errors import (PUBLIC_KINDS, ServiceError, busy, continuation_not_found, execution_not_found,
                     internal_continuation, refusal)
from .ids import continuation_id, id_hash, is_well_formed, new_nonce, plausible_id, tag_of
from .points import record_of
from .runs import CONTINUATIONS_SHOWN, MAX_COMMIT_ATTEMPTS, Runs
from .waits import asked, asked_in, point_wait, timer_member

log = logging.getLogger(__name__)


def answer_digest(kind: str, body: bytes) -> str:
    """What identifies an answer: its kind (``result`` or ``failure``) and its exact bytes."""
    return hashlib.sha256(kind.encode() + b"\0" + body).hexdigest()[:32]


def _digest_of(answer: dict) -> str:
    """The digest of an answer given as values (no request body): of its canonical JSON."""
    kind, value = ("failure", [answer["error"], answer.get("cause")]) if "error" in answer else ("result", answer["result"])
    return answer_digest(kind, json.dumps(value, sort_keys=True, separators=(",", ":"),
                                          ensure_ascii=False).encode())


class Redemptions:
    def __init__(self, runs: Runs):
        self.runs = runs
        self.store = runs.store
        self.clock = runs.clock
        self.settings = runs.settings
        self.branches = runs.branches

    def redeem(self, continuation: str, *, result: Any = None, error: str | None = None,
               cause: str | None = None, digest: str | None = None) -> dict:
        """Resume the execution waiting on ``continuation`` (at most once).

        ``digest`` identifies the answer (see :func:`answer_digest`; by default, of its
        canonical JSON): the same answer again is a replay. Either way the answer is
        the holder's view of what became of it (:func:`holders.answer_view`), never the
        execution document.
        """
        answer = {"error": error, "cause": cause} if error is not None else {"result": result}
        digest = digest or _digest_of(answer)
        try:
            claim = self._claim(continuation)
        except ClaimRefused as refused:
            if refused.reason == "redeemed" and refused.digest and refused.digest == digest:
                return self._replay(continuation, refused)
            raise refusal(refused, self.clock.now()) from None
        about = self._asked(claim)
        if about.get("kind") not in PUBLIC_KINDS | {None}:
            self.store.release(claim)
            raise internal_continuation()
        if error is None:
            self._check_answer(claim, about, result)
        document, answered_at = self.resume_claimed(claim, answer, digest=digest)
        return holders.answer_view(continuation, about, document, failed=error is not None,
                                   answered_at=iso_timestamp(answered_at))

    @staticmethod
    def _asked(claim: Claim) -> dict:
        """What the claimed point asks."""
        return _asked_at(claim.point, claim.branch, claim.execution.snapshot if claim.execution else None)

    def _replay(self, continuation: str, refused: ClaimRefused) -> dict:
        """The same answer again (a double click, a retried request): what became of it, marked as a
        replay; nothing resumes. An execution stored branch by branch answers with where its points wait
        (see ``fanout.waiting_document``), whatever the number of branches; another is read whole."""
        execution_id = refused.execution_id or ""
        waiting = self.store.waiting(execution_id, CONTINUATIONS_SHOWN) if plausible_id(execution_id) else None
        if waiting is not None:
            document = fanout.waiting_document(execution_id, waiting, CONTINUATIONS_SHOWN)
        else:
            record = self.runs.load(execution_id)
            document = None if record is None else self.runs.document(record)
        fields = self.store.continuation(tag_of(continuation), id_hash(continuation))
        if document is None or fields is None:  # its records expired before the continuation's
            raise refusal(refused, self.clock.now())
        about = json.loads(fields.get("about") or "null") or {}
        answer = json.loads(fields.get("answer") or "null") or {}
        return holders.answer_view(continuation, about, document, failed="error" in answer,
                                   answered_at=iso_timestamp(float(refused.detail)), replay=True)

    def _check_answer(self, claim: Claim, wait: dict, result: Any) -> None:
        """Refuse (422) an answer that does not fit the question, and give the claim back.

        Checked after claiming because the claim brings the question along (one round
        trip fewer than reading it first); a refused answer releases the claim at once.
        """
        problems = self.runs.questions.check(wait.get("parameters"), result)
        if problems:
            self.store.release(claim)
            raise ServiceError(422, "InvalidAnswer", "The answer does not fit the question.",
                               fieldErrors=problems)

    def claim(self, continuation: str) -> Claim:
        try:
            return self._claim(continuation)
        except ClaimRefused as refused:
            raise refusal(refused, self.clock.now()) from None

    def _claim(self, continuation: str) -> Claim:
        if not is_well_formed(continuation):
            raise continuation_not_found()
        claim = self.store.claim(tag_of(continuation), id_hash(continuation), self.clock.now(),
                                 self.settings.lease_seconds, new_nonce())
        return self._whole(claim)

    def _whole(self, claim: Claim) -> Claim:
        """A claim that brought the record: made whole when its branches are stored apart."""
        if claim.execution is not None:
            self.runs.tokens.upgrade(claim.execution)
            if (claim.execution.snapshot or {}).get("split"):
                claim.execution = self.runs.reload(claim.execution_id)
        return claim

    def resume_claimed(self, claim: Claim, answer: dict, outcome: str = "redeemed",
                       digest: str = "") -> tuple[dict, float]:
        """Resume with a claimed continuation; if that fails before the commit, give the claim back.

        The execution document and when the answer was committed (see ``Runs.resume``)."""
        try:
            if claim.branch is not None:
                return self.branches.resume(claim, answer, outcome=outcome, digest=digest)
            return self.runs.resume(claim.execution, claim.point, answer, claim=claim, outcome=outcome,
                                    digest=digest)
        except Exception:
            self.give_back(claim)
            raise

    def give_back(self, claim: Claim) -> None:
        """Release a claim so a retry works at once. A claim its commit consumed is not released;
        if the store cannot be reached now, the lease runs out instead."""
        try:
            self.store.release(claim)
        except Exception:  # noqa: BLE001 - the lease is the fallback
            log.warning("could not give back a claim of execution %s; its lease will end",
                        claim.execution_id, exc_info=True)

    def answer_point(self, record, point: str, answer: dict, outcome: str) -> bool:
        """Answer a point that has a continuation, claiming it first (even if expired).

        For the service's own answers (timeouts, a child that ended). False: someone
        holds the continuation now, try again later.
        """
        nonce = record.open.get(point, [None])[0]
        if nonce is None:
            return True
        ident = continuation_id(record.id[:4], nonce, self.settings.signing_secret)
        try:
            claim = self.store.claim(tag_of(ident), id_hash(ident), self.clock.now(),
                                     self.settings.lease_seconds, new_nonce(), force=True)
        except ClaimRefused as refused:
            return refused.reason != "busy"
        self.resume_claimed(self._whole(claim), answer, outcome=outcome)
        return True

    def heartbeat(self, continuation: str) -> dict:
        """Extend a waiting task's heartbeat deadline (as SendTaskHeartbeat does): a change of its branch
        alone when it is in one stored apart, else of the whole execution."""
        read = self._read(continuation)
        info = self._described(continuation, read)
        fields = read.fields
        now = self.clock.now()
        if info["kind"] not in PUBLIC_KINDS | {None}:
            raise internal_continuation()
        if info["status"] == "redeemed":
            raise refusal(ClaimRefused("redeemed", info["executionId"], fields.get("answeredAt", "")), now)
        if info["status"] != "waiting":
            raise refusal(ClaimRefused("closed" if info["status"] == "closed" else "expired",
                                       info["executionId"], info.get("reason", "")), now)
        point = read.point
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            if attempt:
                read = self.runs.points.read(read.execution_id, point)
            record = record_of(read)
            if record is None:
                raise execution_not_found(read.execution_id)
            wait = point_wait(read)
            if wait is None:
                raise refusal(ClaimRefused("closed", record.id), now)
            if not wait.get("heartbeatSeconds"):
                return {**info, "heartbeatAt": None}
            now = self.clock.now()
            wait["heartbeatAt"] = now + wait["heartbeatSeconds"]
            wait["heartbeats"] = wait.get("heartbeats", 0) + 1
            # One TaskHeartbeat per waiting task: the latest, counting them all, in place of the one before.
            event = {"type": "TaskHeartbeat", "timestamp": iso_timestamp(now), "state": wait["state"],
                     "point": point, "heartbeats": wait["heartbeats"]}
            timers = [(timer_member("heartbeat", record.id, wait["id"]), wait["heartbeatAt"])]
            try:
                self.runs.points.mark(read, event, timers, now)
            except CommitConflict:
                continue
            return {**info, "heartbeatAt": iso_timestamp(wait["heartbeatAt"])}
        raise busy()

    # -- reading ----------------------------------------------------------------

    def _fields(self, continuation: str) -> dict:
        fields = None
        if is_well_formed(continuation):
            fields = self.store.continuation(tag_of(continuation), id_hash(continuation))
        if fields is None:
            raise continuation_not_found()
        return fields

    def _read(self, continuation: str) -> PointRead:
        """The continuation's fields and its point, as ``Points.read_continuation`` reads them (one script)."""
        read = None
        if is_well_formed(continuation):
            read = self.runs.points.read_continuation(tag_of(continuation), id_hash(continuation))
        if read is None:
            raise continuation_not_found()
        return read

    def describe_continuation(self, continuation: str) -> dict:
        """What a continuation waits for; reads only (its point's branch, when it is in one stored apart)."""
        return self._described(continuation, self._read(continuation))

    def _described(self, continuation: str, read: PointRead) -> dict:
        fields = read.fields
        record = record_of(read)
        expires = float(fields["expiresAt"])
        status = fields["status"]
        if status in ("open", "claimed") and expires <= self.clock.now():
            status = "expired"
        if fields.get("about"):  # answered or closed: what it asked was kept with it
            about = json.loads(fields["about"]) or {}
        else:
            about = _asked_at(read.point, read.branch, read.record.snapshot if read.record else None)
        status = {"open": "waiting", "claimed": "waiting"}.get(status, status)
        if record is not None:  # its own task token, none of another continuation
            about = {**about, "parameters": self.runs.tokens.revealed(record, about.get("parameters"),
                                                                       points={fields["point"]})}
        links = self.runs.questions.links(continuation, about.get("parameters")) if status == "waiting" else {}
        return holders.description(
            continuation, status=status, execution_id=fields["exec"],
            execution_status=record.status if record else "EXPIRED", about=about,
            expires_at=iso_timestamp(expires), links=links,
            answer=json.loads(fields["answer"]) if fields.get("answer") else None, reason=fields.get("reason", ""))

    def answer_trail(self, continuation: str) -> list[str]:
        """The states the execution entered after this continuation was answered (from its history)."""
        fields = self._fields(continuation)
        events = self.store.history(fields["exec"])
        for index in range(len(events) - 1, -1, -1):
            if events[index].get("type") == "ExecutionResumed" and events[index].get("point") == fields["point"]:
                return [e["state"] for e in events[index + 1:] if e.get("type") == "StateEntered"]
        return []


def _asked_at(point: str, branch: BranchClaim | None, snapshot: dict | None) -> dict:
    """What ``point`` asks, in its ``branch`` stored apart or else in the whole ``snapshot`` ({}: nothing now)."""
    if branch is not None:
        return asked_in(branch.frame, fanout.claim_label(branch)).get(point) or {}
    return asked(snapshot).get(point) or {}
