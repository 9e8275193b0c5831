"""The registry that resolves a Task's resource string to its handler."""
from __future__ import annotations

from typing import Callable, Mapping

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
    """Resolves resource strings to handlers: ``extra`` (full resource strings) first, then the kinds."""

    def __init__(self, modules: dict[str, Handler] | None = None, extra: Mapping[str, Handler] | None = None):
        self.modules = _modules if modules is None else modules
        self.extra = dict(extra or {})

    def resolve(self, resource: str) -> Handler | None:
        if resource in self.extra:
            return self.extra[resource]
        if resource.startswith(MODULE_PREFIX):
            return self.modules.get(resource[len(MODULE_PREFIX):])
        for resolve in _kinds():
            handler = resolve(resource)
            if handler is not None:
                return handler
        return None


def _kinds() -> tuple[Callable[[str], Handler | None], ...]:
    # Imported by the first Task that is not a module: one, not with the app.
    from . import aws_lambda, aws_sdk, http, s3_items

    return aws_lambda.resolve, http.resolve, aws_sdk.resolve, s3_items.resolve
