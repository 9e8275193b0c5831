"""The errors the service answers with, and how a refused claim reads to a caller."""
from __future__ import annotations

import math
from typing import Any

from ..asl.clock import iso_timestamp
from ..store import ClaimRefused


class ServiceError(Exception):
    """An error the HTTP layer answers with ``status`` and ``{"error": code, "message": ...}``.

    ``headers`` go on the HTTP answer (``Retry-After``, say).
    """

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                 **extra: Any):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def to_json(self) -> dict:
        return {"error": self.code, "message": self.message, **self.extra}


def busy() -> ServiceError:
    return ServiceError(503, "Busy", "The execution is changing too often; try again.")


def continuation_not_found() -> ServiceError:
    return ServiceError(404, "ContinuationNotFound", "No continuation has this ID.")


#: Suspension kinds a person or an outside worker answers; any other (``child``) only the service does.
PUBLIC_KINDS = frozenset({"suspend", "task-token", "activity"})


def internal_continuation() -> ServiceError:
    return ServiceError(403, "ContinuationInternal",
                        "Only the service itself answers this continuation (it waits on a child execution).")


def redeemed_by_another(execution_id: str) -> ServiceError:
    """A claimed continuation whose commit found it redeemed by another request meanwhile."""
    return ServiceError(409, "ContinuationAlreadyRedeemed", "The continuation was redeemed by another request.",
                        executionId=execution_id)


def no_longer_waits(execution_id: str) -> ServiceError:
    """A point answered after the execution moved on from it."""
    return ServiceError(410, "ContinuationExpired", "The execution no longer waits at this point.",
                        executionId=execution_id)


def execution_not_found(execution_id: str) -> ServiceError:
    return ServiceError(404, "ExecutionNotFound", "No execution has this ID (or it has expired).",
                        executionId=execution_id)


def refusal(refused: ClaimRefused, now: float) -> ServiceError:
    """What a caller is told when a continuation could not be claimed."""
    execution = {"executionId": refused.execution_id} if refused.execution_id else {}
    if refused.reason == "missing":
        return continuation_not_found()
    if refused.reason == "redeemed":
        when = {"answeredAt": iso_timestamp(float(refused.detail))} if refused.detail else {}
        at = f" at {when['answeredAt']}" if when else ""
        return ServiceError(409, "ContinuationAlreadyRedeemed",
                            f"The continuation was already redeemed{at} (execution {refused.execution_id}); "
                            "only the same answer, sent again, is answered with the execution.",
                            **execution, **when)
    if refused.reason == "busy":
        return continuation_busy(refused.execution_id, float(refused.detail or now) - now)
    if refused.reason == "closed":
        why = {"aborted": "the execution was aborted"}.get(refused.detail, "the execution no longer waits here")
        return ServiceError(410, "ContinuationExpired", f"The continuation no longer works: {why}.",
                            **execution)
    return ServiceError(410, "ContinuationExpired", "The continuation has expired.", **execution)


def continuation_busy(execution_id: str | None, seconds: float) -> ServiceError:
    """Another attempt holds the continuation under a lease: it may still commit, or it failed and
    its lease has to run out. Either way the answer is not known yet, so: try again."""
    wait = max(1, math.ceil(seconds))
    return ServiceError(409, "ContinuationBusy",
                        f"Another request is answering this continuation; try again in {wait} s.",
                        headers={"Retry-After": str(wait)}, retryAfterSeconds=wait,
                        **({"executionId": execution_id} if execution_id else {}))
