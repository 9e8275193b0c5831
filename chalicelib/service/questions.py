"""What the service asks of whoever presents its questions (the approval pages).

The service stores and answers continuations; what a question looks like, which
answers fit it and where its links point belong to the presentation above it.
That layer passes a ``Questions`` in; this neutral one checks nothing and links
nowhere, for the interpreter's own uses (the CLI, benchmarks, tests of the core).
"""
from __future__ import annotations

from typing import Any


class Questions:
    #: Where links point; kept with pending calls, so a call made again later links the same way.
    base_url = ""

    def check(self, parameters: Any, answer: Any) -> list[dict]:
        """Problems of ``answer`` for the question ``parameters`` asks (empty: it fits)."""
        return []

    def links(self, continuation: str, parameters: Any) -> dict:
        """Fields that point people at the continuation (``url``, ``decisions``)."""
        return {}
