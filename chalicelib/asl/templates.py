"""Payload templates (Parameters, ResultSelector, ItemSelector), compiled once.

A template is any JSON value; in objects, a key ending in ``.$`` takes its
value from a path or an intrinsic function call, and the key is written
without the suffix. A template without such keys is a constant and is
returned as it is (values are never mutated, so sharing is safe).
"""
from __future__ import annotations

import json
from typing import Any, Callable

from . import errors
from .errors import StatesError
from .intrinsics import compile_intrinsic, is_intrinsic
from .paths import Env, PathNotFound, compile_path

Evaluator = Callable[[Any, Env], Any]


def compact_json(value: Any) -> str:
    """JSON as AWS prints it in causes: no spaces, unicode kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _dynamic_field(key: str, expression: Any) -> Evaluator:
    """Evaluator for one ``key.$`` entry."""
    if not isinstance(expression, str):
        raise ValueError(f"the value of {key!r} must be a path or an intrinsic function")
    if is_intrinsic(expression):
        function = compile_intrinsic(expression)

        def evaluate_intrinsic(data: Any, env: Env) -> Any:
            try:
                return function.evaluate(data, env)
            except PathNotFound as missing:
                raise _path_failure(missing.path, key, data) from None

        return evaluate_intrinsic
    path = compile_path(expression)

    def evaluate_path(data: Any, env: Env) -> Any:
        try:
            return path.get(data, env)
        except PathNotFound:
            raise _path_failure(expression, key, data) from None

    return evaluate_path


def _path_failure(path: str, key: str, data: Any) -> StatesError:
    return StatesError(
        errors.RUNTIME,
        f"The JSONPath '{path}' specified for the field '{key}' could not be found "
        f"in the input '{compact_json(data)}'",
    )


def _compile(value: Any) -> Evaluator | None:
    """An evaluator for ``value``, or None when it is constant."""
    if isinstance(value, dict):
        parts: list[tuple[str, Any, Evaluator | None]] = []
        dynamic = False
        for key, item in value.items():
            if key.endswith(".$"):
                parts.append((key[:-2], None, _dynamic_field(key, item)))
                dynamic = True
            else:
                sub = _compile(item)
                parts.append((key, item, sub))
                dynamic = dynamic or sub is not None
        if not dynamic:
            return None

        def evaluate_object(data: Any, env: Env) -> dict:
            out = {}
            for name, constant, evaluator in parts:
                out[name] = constant if evaluator is None else evaluator(data, env)
            return out

        return evaluate_object
    if isinstance(value, list):
        items = [(item, _compile(item)) for item in value]
        if all(sub is None for _, sub in items):
            return None
        return lambda data, env: [c if e is None else e(data, env) for c, e in items]
    return None


class Template:
    """A compiled payload template; ``evaluate(data, env)`` builds the payload."""

    __slots__ = ("source", "_evaluator")

    def __init__(self, source: Any):
        self.source = source
        self._evaluator = _compile(source)

    def evaluate(self, data: Any, env: Env) -> Any:
        if self._evaluator is None:
            return self.source
        return self._evaluator(data, env)


def compile_template(source: Any) -> Template:
    return Template(source)
