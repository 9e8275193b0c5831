"""A cheap history listener: keeps the latest events as tuples and writes them out only when read.

Building an event dict and formatting its timestamp on every transition cost
the service four times the interpreter's own time on a long loop, while it
keeps only the latest ``HISTORY_LIMIT`` events. The runner hands an
:class:`EventLog` the raw parts instead (id, type, instant, state, details);
``events()`` builds the dicts of what is kept, as a plain listener gets them.
"""
from __future__ import annotations

from collections import deque
from typing import Any

from .clock import iso_timestamp


class EventLog:
    """A listener that keeps the latest ``limit`` events (all with None)."""

    def __init__(self, limit: int | None = None):
        self._items: deque = deque(maxlen=limit)
        self.add = self._items.append  # the runner's fast path: (id, type, instant, state, details)

    def __call__(self, event: dict) -> None:
        """A finished event dict, as any listener takes it."""
        self._items.append(event)

    def events(self) -> list[dict]:
        out: list[dict] = []
        last_instant, last_text = None, ""
        for item in self._items:
            if isinstance(item, dict):
                out.append(item)
                continue
            event_id, event_type, instant, state, details = item
            if instant != last_instant:
                last_instant, last_text = instant, iso_timestamp(instant)
            event: dict[str, Any] = {"id": event_id, "type": event_type, "timestamp": last_text}
            if state is not None:
                event["state"] = state
            event.update(details)
            out.append(event)
        return out
