"""TestState: one state run on its own, with the stage's task resources and their policy."""
from __future__ import annotations

from typing import Any

from ..asl import InvalidDefinition
from ..asl.one_state import STATE_NAME, StateTestRefused, run_one_state
from ..asl.tasks import as_resolver
from ..resources import default_handlers
from .definitions import disallowed_resources
from .errors import ServiceError


def run_state_test(runs, definition: Any, input: Any, *, trusted: bool, mock: dict | None = None, **options) -> dict:
    """Run one state (see ``run_one_state``); a Task it calls (no ``mock``) must be one the stage allows."""
    if mock is None and not trusted and isinstance(definition, dict):
        machine = definition if isinstance(definition.get("States"), dict) else {"States": {STATE_NAME: definition}}
        refused = disallowed_resources(machine, runs.settings.allowed_resources)
        if refused:
            raise ServiceError(403, "ResourceNotAllowed",
                               "The definition calls task resources this stage does not allow.", problems=refused)
    handlers = as_resolver(default_handlers() if runs.handlers is None else runs.handlers)
    try:
        return run_one_state(definition, input, mock=mock, handlers=handlers, **options)
    except InvalidDefinition as invalid:
        raise ServiceError(400, "InvalidDefinition", "The definition is not valid ASL.",
                           problems=[p.to_json() for p in invalid.problems]) from None
    except StateTestRefused as refused:
        raise ServiceError(400, "InvalidRequest", str(refused)) from None
