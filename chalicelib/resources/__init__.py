"""Task resources: what a Task state's ``Resource`` calls.

One :class:`Registry` resolves every kind, each in its own module:

* ``module:NAME``: Python functions registered with :func:`module_handler`
  (the built-in ones are in ``builtin``);
* AWS Lambda (``aws_lambda``): function ARNs and ``arn:aws:states:::lambda:invoke``;
* HTTP APIs (``http``): ``arn:aws:states:::http:invoke``, connecting only where the
  address policy (``network``, ``ALLOWED_HTTP_HOSTS``) allows;
* AWS services (``aws_sdk``): ``arn:aws:states:::aws-sdk:SERVICE:ACTION`` and the
  optimized ``sns:publish``, ``sqs:sendMessage`` and ``dynamodb:*Item``.

They take the requests and give the results and error names Step Functions
does, so a state machine written for it runs here too. Resolving only reads
the resource string; the kinds' modules are imported by the first task that
needs one, and boto3 by the first that calls AWS, so a cold start pays for
neither. The service wraps the registry to add child executions and the
approval email.

May import: ``chalicelib.asl`` (the handler protocol and error names) and the
standard library; boto3 on first use.
"""
from __future__ import annotations

from typing import Mapping

from ..asl.tasks import Handler
from .registry import MODULE_PREFIX, Registry, module_handler

__all__ = ["MODULE_PREFIX", "Registry", "default_handlers", "module_handler"]


def default_handlers(extra: Mapping[str, Handler] | None = None) -> Registry:
    """Every built-in resource, with ``extra`` (``{resource: handler}``) added on top."""
    from . import builtin  # noqa: F401  (registers the built-in module: handlers)

    return Registry(extra=extra)
