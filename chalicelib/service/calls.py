"""Pending calls: the outbox that makes every task-token call happen, at least once.

A ``.waitForTaskToken`` call (HTTP, Lambda, SQS, SNS, the approval email, a child
execution, a ``module:`` handler) is made after the commit that stores the
continuation its token names. That same commit stores the call in the
execution's outbox (``asl:{t}:o:<executionId>``: the record's hash slot and TTL),
together with a ``call`` timer ``LEASE_SECONDS`` ahead; the call is removed once
made. A process that dies after the commit, during the call or before the
removal leaves it there, and once its lease has ended the timer sweep (``tick``)
or the next ``GET`` of the execution takes it (one script, so one taker) and makes
it again. So no stored execution waits on a call nobody made, and no call is made
for an execution that was not stored.

A call reads the point it is for alone (``Points.read``: in an execution whose branches are
stored apart, the branch it is in), and a call that fails resumes that point there.

A call may thus be made twice. Each carries an idempotency key derived from the
execution and the suspension point (``TaskContext.idempotency_key``), the same on
every try, which resources pass on where their target takes one.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable

from ..asl import Suspend, TaskContext, TaskFailed
from ..asl.engine import task_failure
from .errors import ServiceError
from .ids import continuation_id
from .points import record_of
from .waits import point_wait, timer_member

log = logging.getLogger(__name__)


def idempotency_key(execution_id: str, point: str) -> str:
    """The key of one task's call: its execution and suspension point (letters, digits, ``-`` and ``_``)."""
    return f"{execution_id}-{point}"


@dataclass
class Effect:
    """A task-token call held back until its continuation is stored."""

    point: str
    handler: Callable
    payload: Any
    context: TaskContext
    base: str  # where the run's links pointed (see ``Questions.base_url``)

    def stored(self) -> str:
        """What the outbox keeps to make the call again in another process (tokens as markers, ``v`` 2)."""
        context = self.context
        return json.dumps({"v": 2,
            "point": self.point, "resource": context.resource, "state": context.state,
            "timeout": context.timeout_seconds, "heartbeat": context.heartbeat_seconds,
            "waits": context.waits_for_token, "key": context.idempotency_key, "base": self.base,
            "payload": self.payload,
        }, separators=(",", ":"))


class DeferTokenCalls:
    """Resolves like ``resolver``, but records task-token calls in ``effects`` instead of making them.

    Whoever receives a task token may answer it at once, so the call is made only
    once the commit has stored the continuation the token names. A handler with a
    true ``waits_for_token`` attribute (the approval email) is one whichever way its
    resource is spelled: it answers ``Suspend`` and is made after the commit too.
    """

    def __init__(self, resolver, execution_id: str, base: str, effects: list[Effect]):
        self.resolver, self.execution_id, self.base, self.effects = resolver, execution_id, base, effects

    def resolve(self, resource: str):
        handler = self.resolver.resolve(resource)
        if handler is None:
            return None

        def deferred(payload, context: TaskContext):
            if not (context.waits_for_token or getattr(handler, "waits_for_token", False)):
                return handler(payload, context)
            context.idempotency_key = idempotency_key(self.execution_id, context.point)  # issues the token
            self.effects.append(Effect(context.point, handler, payload, context, self.base))
            if context.waits_for_token:
                return None
            suspension = getattr(handler, "suspension", None)  # its own kind of wait (``events``)
            return suspension(payload, context) if suspension else Suspend("task-token")
        return deferred


class PendingCalls:
    """Stores a run's calls with its commit, makes them, and finishes those whose maker died."""

    def __init__(self, runs):
        self.runs = runs
        self.store = runs.store

    def add_to(self, commit, effects: list[Effect], tokens: dict[str, str]) -> list[Effect]:
        """Put the calls of the points still open after ``commit`` into it; those calls."""
        record = commit.record
        kept = [effect for effect in effects if effect.point in record.open and effect.point in tokens]
        if kept:
            due = commit.now + self.runs.settings.lease_seconds
            commit.calls = [(tokens[effect.point], effect.stored()) for effect in kept]
            commit.timers = (commit.timers or []) + [
                (timer_member("call", record.id, effect.point), due) for effect in kept]
        return kept

    def perform(self, record, effects: list[Effect], tokens: dict[str, str]) -> None:
        """Make the calls the commit of ``record`` just stored, in order, with the real task tokens."""
        for effect in effects:
            effect.context._point = (effect.point, self.runs.tokens.token(record, effect.point))
            self._make(record.id, effect.point, tokens[effect.point], effect.handler,
                       self.runs.tokens.revealed(record, effect.payload), effect.context)

    def finish(self, execution_id: str) -> tuple[int, bool | float]:
        """Make the execution's pending calls whose lease has ended.

        (How many were made, True when none is left or else when to look again.)
        """
        now = self.runs.clock.now()
        lease = self.runs.settings.lease_seconds
        later: list[float] = []
        made = 0
        for nonce, since in self.store.pending_calls(execution_id).items():
            if since + lease > now:  # its maker may still be at it
                later.append(since + lease)
                continue
            text = self.store.take_call(execution_id, nonce, now, lease)
            if text is None:  # another taker was first
                later.append(now + lease)
                continue
            call = json.loads(text)
            read = self.runs.points.read(execution_id, call["point"])
            record = record_of(read)
            if (record is None or point_wait(read) is None
                    or (record.open.get(call["point"]) or [None])[0] != nonce):
                self.store.remove_call(execution_id, nonce)  # answered, ended or moved on: nothing to call
                continue
            token = continuation_id(execution_id[:4], nonce, self.runs.settings.signing_secret)
            context_object = read.branch.meta["context"] if read.branch else record.snapshot["context"]
            context = TaskContext(resource=call["resource"], state=call["state"],
                                  execution=context_object["Execution"],
                                  timeout_seconds=call["timeout"], heartbeat_seconds=call["heartbeat"],
                                  waits_for_token=call["waits"], idempotency_key=call["key"],
                                  _point=(call["point"], token))
            handler = self.runs.resolver(execution_id, call["base"]).resolve(call["resource"])
            if handler is None:
                handler = _unavailable(call["resource"])
            log.info("making pending call %s of execution %s again", call["key"], execution_id)
            self._make(execution_id, call["point"], nonce, handler,
                       self.runs.tokens.revealed(record, call["payload"], legacy="v" not in call), context)
            made += 1
        return made, (min(later) if later else True)

    def _make(self, execution_id: str, point: str, nonce: str, handler: Callable, payload: Any,
              context: TaskContext) -> None:
        """Call; a call that fails fails its waiting task (Retry and Catch apply); then remove it."""
        try:
            handler(payload, context)
        except Exception as exc:  # noqa: BLE001 - a resource's failure is the task's
            failure = task_failure(exc)
            read = self.runs.points.read(execution_id, point)
            current = record_of(read)
            if current is not None and point in current.open and point_wait(read) is not None:
                try:
                    self.runs.points.resume(read, {"error": failure.error, "cause": failure.cause})
                except ServiceError:
                    pass  # answered or ended meanwhile: the task is no longer waiting
        self.store.remove_call(execution_id, nonce)


def _unavailable(resource: str) -> Callable:
    def fail(payload, context):
        raise TaskFailed("States.Runtime", f"No handler is configured for the resource '{resource}'.")
    return fail
