"""Definitions an execution runs: compiled once, checked against the stage's resources."""
from __future__ import annotations

import fnmatch
from typing import Any

from ..asl import InvalidDefinition, load
from ..asl.interpreter import Compiled
from ..asl.interpreter import cached as cached_definition
from ..store import Store
from .errors import ServiceError


def compile_definition(definition: Any, *, trusted: bool, allowed_resources: tuple[str, ...]) -> Compiled:
    """Compile ``definition``; an untrusted one may call only ``allowed_resources``."""
    try:
        compiled = load(definition)
    except InvalidDefinition as invalid:
        raise ServiceError(400, "InvalidDefinition", "The definition is not valid ASL.",
                           problems=[p.to_json() for p in invalid.problems]) from None
    if not trusted:
        refused = disallowed_resources(compiled.definition, allowed_resources)
        if refused:
            raise ServiceError(403, "ResourceNotAllowed",
                               "The definition calls task resources this stage does not allow.",
                               problems=refused)
    return compiled


def stored_definition(store: Store, definition_hash: str) -> Compiled:
    """The definition an execution runs: compiled in this process already, or read from Redis."""
    compiled = cached_definition(definition_hash)
    if compiled is not None:
        return compiled
    text = store.get_definition(definition_hash)
    if text is None:
        raise ServiceError(410, "ExecutionExpired", "The execution's definition is no longer stored.")
    return load(text)


def disallowed_resources(definition: dict, patterns: tuple[str, ...]) -> list[dict]:
    """Task states (at any depth) whose Resource matches none of ``patterns``, and Distributed Maps
    whose ItemReader or ResultWriter resource (S3, with the function's role) matches none."""
    refused = []

    def check(name: str, field: str, resource: str) -> None:
        if not any(fnmatch.fnmatchcase(resource, p) for p in patterns):
            refused.append({"state": name, "field": field,
                            "message": f"State '{name}': resource '{resource}' is not allowed"})

    def visit(states: dict) -> None:
        for name, spec in (states or {}).items():
            if not isinstance(spec, dict):
                continue
            if spec.get("Type") == "Task":
                check(name, "Resource", str(spec.get("Resource", "")))
            for field in ("ItemReader", "ResultWriter"):
                if isinstance(spec.get(field), dict) and "Resource" in spec[field]:
                    check(name, f"{field}.Resource", str(spec[field]["Resource"]))
            for child in spec.get("Branches") or []:
                visit(child.get("States"))
            for key in ("ItemProcessor", "Iterator"):
                if isinstance(spec.get(key), dict):
                    visit(spec[key].get("States"))

    visit(definition.get("States"))
    return refused
