"""Clocks: all time the interpreter sees goes through one of these.

``SystemClock`` is real time. ``VirtualClock`` starts at a given instant and
moves only when something sleeps on it, so Wait states and Retry intervals
take no real time in tests and conformance runs.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    def __init__(self, start: float | None = None):
        self._now = time.time() if start is None else float(start)

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._now += seconds

    def advance(self, seconds: float) -> None:
        self.sleep(seconds)

    def set(self, instant: float) -> None:
        self._now = float(instant)


def iso_timestamp(epoch: float) -> str:
    """An instant as Step Functions writes it: ``2024-05-01T12:00:00.123Z``."""
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
