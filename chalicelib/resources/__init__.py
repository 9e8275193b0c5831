"""Task resources: what a Task state's ``Resource`` calls.

``module:NAME`` resources are Python functions registered with
:func:`module_handler`; later kinds (Lambda, HTTP, AWS SDK, child executions)
plug in through the same :class:`Registry`, so the interpreter only ever
sees ``resolve(resource) -> handler``.
"""
from __future__ import annotations

from typing import Callable

from ..asl.tasks import Handler

MODULE_PREFIX = "module:"

_modules: dict[str, Handler] = {}


def module_handler(name: str) -> Callable[[Handler], Handler]:
    """Register ``handler(payload, context)`` as the resource ``module:NAME``."""

    def register(handler: Handler) -> Handler:
        _modules[name] = handler
        return handler

    return register


class Registry:
    """Resolves resource strings to handlers."""

    def __init__(self, modules: dict[str, Handler] | None = None):
        self.modules = _modules if modules is None else modules

    def resolve(self, resource: str) -> Handler | None:
        if resource.startswith(MODULE_PREFIX):
            return self.modules.get(resource[len(MODULE_PREFIX):])
        return None


def default_handlers() -> Registry:
    from . import builtin  # noqa: F401  (registers the built-in module: handlers)

    return Registry()
