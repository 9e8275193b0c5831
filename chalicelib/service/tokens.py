"""Task tokens inside execution data.

A definition may pass ``$$.Task.Token`` (a continuation ID) into its data. Redis
must not hold usable IDs, so the interpreter never sees one: the token a run
hands out is a *marker*, ``{{TaskToken p3.<seal>}}``, where the seal is an HMAC
(the signing secret) of the execution and the point. The data, the snapshot, the
history and the outbox hold the marker exactly where ``$$.Task.Token`` placed it;
nothing is replaced when a record is stored, so no user text is ever rewritten,
and a commit costs nothing per token.

The real ID appears only on the way out: in a call made to a resource, and in
what is shown (the execution document, its history, a continuation's question).
There one pass over the text shown turns each sealed marker of an open point into
its ID. A marker whose seal does not verify is user text and stays as it is; a
sealed marker that is not revealed (its point is closed, or the reader may not see
it) is shown without its seal as ``{{TaskToken p3}}``, so nobody outside ever sees
a seal and user data can forge no token.

Records of format 1 (see ``chalicelib/store/records.py``) held unsealed markers,
put there by replacing the ID wherever it appeared. :meth:`TaskTokens.upgrade`
seals those of the snapshot once when such a record is read; its older history
events (up to ``record.legacy_events``) and outbox calls without ``"v"`` are read
the old way.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any, Collection

from ..store import ExecutionRecord
from .ids import continuation_id

TOKEN_MARKER = "{{TaskToken "
_SEALED = re.compile(r"\{\{TaskToken (p\d+)\.([A-Za-z0-9_-]{16})\}\}")
_SEALED_OR_LEGACY = re.compile(r"\{\{TaskToken (p\d+)(?:\.([A-Za-z0-9_-]{16}))?\}\}")
_LEGACY = re.compile(r"\{\{TaskToken (p\d+)\}\}")


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class TaskTokens:
    def __init__(self, secret: str):
        self.secret = secret

    def seal(self, execution_id: str, point: str) -> str:
        digest = hmac.new(self.secret.encode(), f"task-token|{execution_id}|{point}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).decode()[:16]

    def marker(self, execution_id: str, point: str) -> str:
        """What the run holds in place of the task token of ``point``."""
        return f"{TOKEN_MARKER}{point}.{self.seal(execution_id, point)}}}}}"

    def token(self, record: ExecutionRecord, point: str) -> str | None:
        entry = record.open.get(point)
        return None if entry is None else continuation_id(record.id[:4], entry[0], self.secret)

    def revealed(self, record: ExecutionRecord, value: Any, points: Collection[str] | None = None,
                 legacy: bool = False) -> Any:
        """``value`` with each sealed marker of an open point (of ``points``, if given) as its ID.

        One pass over ``value``'s JSON, whatever the number of tokens. ``legacy``: also
        unsealed markers (data stored in format 1, where only the service wrote them).
        """
        text = _compact(value)
        if TOKEN_MARKER not in text:
            return value
        seals: dict[str, str] = {}

        def replace(match: re.Match) -> str:
            point, seal = match.group(1), match.group(2)
            if seal is not None:
                expected = seals.get(point) or seals.setdefault(point, self.seal(record.id, point))
                if not hmac.compare_digest(seal, expected):
                    return match.group(0)  # not the service's: user text, left as it is
            token = self.token(record, point) if points is None or point in points else None
            return token or f"{TOKEN_MARKER}{point}}}}}"

        return json.loads((_SEALED_OR_LEGACY if legacy else _SEALED).sub(replace, text))

    def history(self, record: ExecutionRecord, events: list[dict]) -> list[dict]:
        """History events as shown: tokens of open points revealed (older events the old way)."""
        cut = 0
        while cut < len(events) and events[cut].get("id", 0) <= record.legacy_events:
            cut += 1
        older = self.revealed(record, events[:cut], legacy=True) if cut else []
        return older + self.revealed(record, events[cut:])

    def upgrade(self, record: ExecutionRecord | None) -> ExecutionRecord | None:
        """A record read in format 1: seal the markers of its snapshot (once, when read)."""
        if record is None or record.format != 1:
            return record
        if record.snapshot is not None:
            text = _compact(record.snapshot)
            if TOKEN_MARKER in text:
                record.snapshot = json.loads(_LEGACY.sub(
                    lambda match: self.marker(record.id, match.group(1)), text))
        record.legacy_events = max([record.legacy_events] + [e.get("id", 0) for e in record.history])
        if record.snapshot is not None:
            record.legacy_events = max(record.legacy_events, record.snapshot.get("events", 0))
        record.format = 2
        return record
