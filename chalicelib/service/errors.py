"""The errors the service answers with, and how a refused claim reads to a caller."""
from __future__ import annotations

from typing import Any

from ..store import ClaimRefused


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


def busy() -> ServiceError:
    return ServiceError(503, "Busy", "The execution is changing too often; try again.")


def continuation_not_found() -> ServiceError:
    return ServiceError(404, "ContinuationNotFound", "No continuation has this ID.")


#: Suspension kinds a person or an outside worker answers; any other (``child``) only the service does.
PUBLIC_KINDS = frozenset({"suspend", "task-token"})


def internal_continuation() -> ServiceError:
    return ServiceError(403, "ContinuationInternal",
                        "Only the service itself answers this continuation (it waits on a child execution).")


def execution_not_found(execution_id: str) -> ServiceError:
    return ServiceError(404, "ExecutionNotFound", "No execution has this ID (or it has expired).",
                        executionId=execution_id)


def refusal(refused: ClaimRefused) -> ServiceError:
    """What a caller is told when a continuation could not be claimed."""
    execution = {"executionId": refused.execution_id} if refused.execution_id else {}
    if refused.reason == "missing":
        return continuation_not_found()
    if refused.reason in ("redeemed", "busy"):
        return ServiceError(409, "ContinuationAlreadyRedeemed",
                            f"The continuation was already redeemed (execution {refused.execution_id}).",
                            **execution)
    if refused.reason == "closed":
        why = {"aborted": "the execution was aborted"}.get(refused.detail, "the execution no longer waits here")
        return ServiceError(410, "ContinuationExpired", f"The continuation no longer works: {why}.",
                            **execution)
    return ServiceError(410, "ContinuationExpired", "The continuation has expired.", **execution)
