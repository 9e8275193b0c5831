"""ASL continuations: a service that runs Amazon States Language itself and
keeps suspended executions in Redis until someone answers them.

The rooms, and which way the arrows point (a package imports only those below it)::

    app.py, __main__ (the command line)
      -> api          HTTP: REST handlers, OpenAPI, the service as the app runs it
      -> approvals    pages, forms, signed links, the approval email, diagrams
      -> service      executions, continuations, timers, child executions
      -> resources    what Task states call (module:, Lambda, HTTP, AWS SDK)
         store        Redis: records, Lua scripts, keys and operations
      -> asl          the pure interpreter: imports nothing outside itself
         config       settings from the environment

``tests/test_layout.py`` enforces it. The interpreter as a library, with the
built-in task resources::

    from chalicelib import run, resume

    result = run(definition, {"value": 6}, handlers={"my:resource": handler})
"""
from __future__ import annotations

from typing import Any

from . import asl
from .resources import default_handlers


def _with_builtins(options: dict) -> dict:
    """``options`` whose ``handlers`` (a mapping, if any) are added to the built-in resources."""
    handlers = options.get("handlers")
    if handlers is None or isinstance(handlers, dict):
        options["handlers"] = default_handlers(handlers)
    return options


def run(definition: Any, input: Any = None, **options: Any) -> dict:
    """:func:`chalicelib.asl.run` with the built-in task resources (``handlers`` adds to them)."""
    return asl.run(definition, input, **_with_builtins(options))


def run_virtual(definition: Any, input: Any = None, **options: Any) -> dict:
    """:func:`chalicelib.asl.run_virtual` with the built-in task resources."""
    return asl.run_virtual(definition, input, **_with_builtins(options))


def resume(definition: Any, snapshot: dict, point: str, result: Any = None, **options: Any) -> dict:
    """:func:`chalicelib.asl.resume` with the built-in task resources."""
    return asl.resume(definition, snapshot, point, result, **_with_builtins(options))


def proceed(definition: Any, snapshot: dict, **options: Any) -> dict:
    """:func:`chalicelib.asl.proceed` with the built-in task resources."""
    return asl.proceed(definition, snapshot, **_with_builtins(options))
