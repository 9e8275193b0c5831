"""Listing executions: newest first, filtered by state machine and status, a page at a time.

The store keeps an index (see ``Store.page``), so a page costs what it holds, not
what Redis holds. The token that asks for the next page is opaque to callers: the
start time and ID of the last execution listed, base64url-encoded JSON.
"""
from __future__ import annotations

import base64
import binascii
import json
import re

from ..store import STATUSES, ExecutionRecord, Store
from .errors import ServiceError

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
#: What a state machine's name may be (as ``catalog``), so a filter can name any of them.
MACHINE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
#: What each listed execution shows.
FIELDS = ("executionId", "name", "stateMachine", "status", "startDate", "stopDate")


def invalid(message: str) -> ServiceError:
    return ServiceError(400, "InvalidRequest", message)


def encode_token(cursor: tuple[int, str]) -> str:
    text = json.dumps(list(cursor), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_token(token: str) -> tuple[int, str]:
    """The cursor a ``nextToken`` carries (400 InvalidRequest for anything else)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        start, execution_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise invalid("'nextToken' is not a token this service gave.") from None
    if type(start) is not int or not 0 <= start < 2 ** 53 or not isinstance(execution_id, str) \
            or not _ID.match(execution_id):
        raise invalid("'nextToken' is not a token this service gave.")
    return start, execution_id


def summary(record: ExecutionRecord) -> dict:
    """What a list shows of an execution (not its input, output or continuations)."""
    document = record.document
    return {"executionId": record.id, "name": document.get("name") or record.id,
            "stateMachine": document.get("stateMachine"), "status": record.status,
            "startDate": document.get("startDate"), "stopDate": document.get("stopDate")}


def list_executions(store: Store, now: float, *, state_machine: str | None = None, status: str | None = None,
                    limit: int = DEFAULT_LIMIT, next_token: str | None = None) -> dict:
    """``{"executions": [...], "nextToken": ...}``; ``nextToken`` is null on the last page."""
    if state_machine is not None and not MACHINE_NAME.match(state_machine):
        raise invalid("'stateMachine' must be a state machine's name (letters, digits, '.', '_', '-').")
    if status is not None and status not in STATUSES:
        raise invalid(f"'status' must be one of {', '.join(STATUSES)}.")
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"'limit' must be a whole number from 1 to {MAX_LIMIT}.")
    after = decode_token(next_token) if next_token is not None else None
    machine = state_machine.removesuffix(".json") if state_machine else None
    records, last = store.page(now, status=status, machine=machine, after=after, limit=limit)
    return {"executions": [summary(record) for record in records],
            "nextToken": encode_token(last) if last else None}
