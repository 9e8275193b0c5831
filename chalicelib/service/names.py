"""Execution names: who holds one, as stored under ``asl:n:<name>``.

A start with a name reserves it before anything runs (see ``Executions.start``); the
holder is the execution ID, its state machine and a digest of its input, so a retried
start can be told from another one, and when it was reserved (``since``), so a name
whose start died before its first commit can be taken over after the lease.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any


def input_digest(input: Any) -> str:
    """Inputs compare by their canonical JSON (key order does not matter)."""
    text = json.dumps(input, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def holder(execution_id: str, machine: str, input: Any, since: float) -> str:
    """The text a name's key holds for the execution ``execution_id`` of ``machine`` with ``input``."""
    return json.dumps({"executionId": execution_id, "machine": machine, "input": input_digest(input),
                       "since": since}, separators=(",", ":"))


def machine_of(state_machine: str | None, definition_hash: str) -> str:
    """What names compare as the state machine: its name, or the inline definition's hash."""
    return state_machine or "inline:" + definition_hash
