"""A cheap history listener: keeps the latest events as tuples and writes them out only when read.

Building an event dict and formatting its timestamp on every transition cost
the service four times the interpreter's own time on a long loop, while it
keeps only the latest ``HISTORY_LIMIT`` events. The runner hands an
:class:`EventLog` the raw parts instead (id, type, instant, state, details);
``events()`` builds the dicts of what is kept, as a plain listener gets them.

The execution's first event, ``ExecutionStarted``, is always kept: with a limit, a run
keeps it and the latest ``limit - 1`` events after it.
"""
from __future__ import annotations

from collections import deque
from typing import Any

from .clock import iso_timestamp


class EventLog:
    """A listener that keeps ``ExecutionStarted`` and the latest events, ``limit`` in all (all with None)."""

    def __init__(self, limit: int | None = None):
        self._limit = limit
        self._first: list[dict] = []
        self._items: deque = deque(maxlen=limit)
        self.add = self._items.append  # the runner's fast path: (id, type, instant, state, details)

    def __call__(self, event: dict) -> None:
        """A finished event dict, as any listener takes it."""
        if event.get("type") == "ExecutionStarted" and not self._items and not self._first:
            self._first.append(event)  # kept apart: no number of later events pushes it out
            return
        self._items.append(event)

    def events(self) -> list[dict]:
        out: list[dict] = list(self._first)
        items = list(self._items)
        if self._limit is not None:
            room = self._limit - len(out)
            items = items[max(0, len(items) - room):] if room > 0 else []
        last_instant, last_text = None, ""
        for item in items:
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
