"""The built-in ``module:`` handlers, those of the original prototype."""
from __future__ import annotations

from typing import Any

from ..asl.tasks import Suspend, TaskContext, TaskFailed
from .registry import module_handler


def _number(payload: Any, field: str, default: Any = None) -> int | float:
    if not isinstance(payload, dict):
        raise TaskFailed("InvalidInput", f"expected an object with '{field}', got {type(payload).__name__}")
    value = payload.get(field, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TaskFailed("InvalidInput", f"'{field}' must be a number")
    return value


@module_handler("increment")
def increment(payload: Any, context: TaskContext) -> dict:
    """Add ``increment`` (default 1) to ``value``."""
    result = dict(payload) if isinstance(payload, dict) else {}
    result["value"] = _number(payload, "value") + _number(payload, "increment", 1)
    return result


@module_handler("square")
def square(payload: Any, context: TaskContext) -> dict:
    """Square ``value``."""
    value = _number(payload, "value")
    return {**payload, "value": value * value}


@module_handler("suspend")
def suspend(payload: Any, context: TaskContext) -> Suspend:
    """Stop the execution here until a continuation resumes it."""
    return Suspend("suspend")


@module_handler("event")
def event(payload: Any, context: TaskContext) -> Suspend:
    """Wait for an event (the service delivers it by correlation key; see ``service/events.py``)."""
    return Suspend("event")
