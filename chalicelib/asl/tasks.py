"""The seam between the interpreter and whatever a Task state calls.

A *handler* is ``handler(payload, context) -> result``, like a Lambda
function: ``payload`` is the task's input after InputPath/Parameters and
``context`` a :class:`TaskContext`. It returns the task's result, raises
:class:`TaskFailed` (or any exception: its class name becomes the error name)
to fail the task, or returns a :class:`Suspend` to stop the execution at this
state until someone resumes it.

*Handlers* given to the interpreter are anything with
``resolve(resource) -> handler | None``, or a plain ``{resource: handler}``
mapping.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from .errors import StatesError

Handler = Callable[[Any, "TaskContext"], Any]


class Resolver(Protocol):
    def resolve(self, resource: str) -> Handler | None: ...


@dataclass(frozen=True)
class Suspend:
    """Returned by a handler: stop here until the point is resumed."""

    kind: str = "suspend"
    detail: dict = field(default_factory=dict)


@dataclass
class TaskContext:
    """What a handler knows about the task it runs.

    ``point`` and ``token`` name this task's suspension point: set for
    ``.waitForTaskToken`` resources, and created on first use by handlers that
    return a :class:`Suspend` and need to tell someone how to resume them
    (a child execution tells its parent's token, say).
    """

    resource: str
    state: str
    execution: dict  # the ``$$.Execution`` part of the context object
    timeout_seconds: float | None = None
    heartbeat_seconds: float | None = None
    waits_for_token: bool = False  # a ``.waitForTaskToken`` call: its result is not used
    # Set by whoever may make this call more than once (after a crash): the same for every try of
    # one call, for resources whose target takes an idempotency key.
    idempotency_key: str | None = None
    entered_event: int | None = None  # the id of the state's entered event (AWS's causes name it)
    allocate_point: Callable[[], tuple[str, str]] | None = field(default=None, repr=False)
    _point: tuple[str, str] | None = field(default=None, repr=False)

    def _allocated(self) -> tuple[str, str]:
        if self._point is None:
            if self.allocate_point is None:
                raise RuntimeError("this task has no suspension point")
            self._point = self.allocate_point()
        return self._point

    @property
    def point(self) -> str:
        return self._allocated()[0]

    @property
    def token(self) -> str:
        """``$$.Task.Token``: the token that resumes this task's suspension point."""
        return self._allocated()[1]


class TaskFailed(Exception):
    """Raise from a handler to fail the task with a chosen ASL error name."""

    def __init__(self, error: str, cause: str | None = None):
        super().__init__(error, cause)
        self.error = error
        self.cause = cause


def task_failure(exc: Exception) -> StatesError:
    """The ASL error a handler's exception fails its task with."""
    if isinstance(exc, StatesError):
        return exc
    if isinstance(exc, TaskFailed):
        return StatesError(exc.error, exc.cause)
    return StatesError(type(exc).__name__, str(exc))


class MappingResolver:
    def __init__(self, handlers: Mapping[str, Handler]):
        self.handlers = dict(handlers)

    def resolve(self, resource: str) -> Handler | None:
        return self.handlers.get(resource)


def as_resolver(handlers: Any) -> Resolver:
    if handlers is None:
        return MappingResolver({})
    if hasattr(handlers, "resolve"):
        return handlers
    return MappingResolver(handlers)


WAIT_FOR_TASK_TOKEN = ".waitForTaskToken"
