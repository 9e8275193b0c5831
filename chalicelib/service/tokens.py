"""Task tokens inside execution data.

A definition may pass ``$$.Task.Token`` (a continuation ID) into its data. Redis
must not hold usable IDs, so commits store a marker naming the point instead, and
loads put the ID back while the point is open (after that the ID is of no use,
and the marker stays).
"""
from __future__ import annotations

import json
from typing import Any

from ..store import ExecutionRecord
from .ids import continuation_id

TOKEN_MARKER = "{{TaskToken "


def token_marker(point: str) -> str:
    return f"{TOKEN_MARKER}{point}}}}}"


class TaskTokens:
    def __init__(self, secret: str):
        self.secret = secret

    def hidden(self, execution_id: str, *opens: dict) -> dict[str, str]:
        """``{ID: marker}`` for the points of ``opens`` (point -> [nonce, ...])."""
        return {continuation_id(execution_id[:4], entry[0], self.secret): token_marker(point)
                for open_ in opens for point, entry in open_.items()}

    def revealed(self, record: ExecutionRecord, value: Any) -> Any:
        """``value`` with the markers of the record's open points replaced by their IDs."""
        text = json.dumps(value, separators=(",", ":"))
        if TOKEN_MARKER not in text:
            return value
        for ident, marker in self.hidden(record.id, record.open).items():
            text = text.replace(marker, ident)
        return json.loads(text)

    def reveal(self, record: ExecutionRecord | None) -> ExecutionRecord | None:
        """``record`` with the IDs of its open points back in its snapshot and history."""
        if record is not None and record.open:
            record.snapshot = self.revealed(record, record.snapshot)
            record.history = self.revealed(record, record.history)
        return record
