"""Task resources: what a Task state's ``Resource`` calls.

One :class:`Registry` resolves every kind, each in its own module:

* ``module:NAME``: Python functions registered with :func:`module_handler`
  (the built-in ones are in ``builtin``);
* AWS Lambda (``aws_lambda``): function ARNs and ``arn:aws:states:::lambda:invoke``;
* HTTP APIs (``http``): ``arn:aws:states:::http:invoke``;
* AWS services (``aws_sdk``): ``arn:aws:states:::aws-sdk:SERVICE:ACTION`` and the
  optimized ``sns:publish``, ``sqs:sendMessage`` and ``dynamodb:*Item``.

They take the requests and give the results and error names Step Functions
does, so a state machine written for it runs here too. Resolving only reads
the resource string; the kinds' modules are imported by the first task that
needs one, and boto3 by the first that calls AWS, so a cold start pays for
neither. The service wraps the registry to add child executions and the
approval email.
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
        for resolve in _kinds():
            handler = resolve(resource)
            if handler is not None:
                return handler
        return None


def _kinds() -> tuple[Callable[[str], Handler | None], ...]:
    # Imported by the first Task that is not a module: one, not with the app.
    from . import aws_lambda, aws_sdk, http

    return aws_lambda.resolve, http.resolve, aws_sdk.resolve


def default_handlers() -> Registry:
    from . import builtin  # noqa: F401  (registers the built-in module: handlers)

    return Registry()
