"""ASL error names and the exception that carries them through the interpreter.

Every failure inside a state becomes a :class:`StatesError` with an ASL error
name and a cause string, exactly the pair a Catch/Retry or the execution result
sees. Nothing else may escape the interpreter.
"""
from __future__ import annotations

ALL = "States.ALL"
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
RUNTIME = "States.Runtime"
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
BRANCH_FAILED = "States.BranchFailed"
EXCEED_TOLERATED_FAILURE_THRESHOLD = "States.ExceedToleratedFailureThreshold"
ITEM_READER_FAILED = "States.ItemReaderFailed"
QUERY_EVALUATION_ERROR = "States.QueryEvaluationError"
PERMISSIONS = "States.Permissions"

#: The cause of an execution that ran past its top-level TimeoutSeconds (error ``TIMEOUT``).
EXECUTION_TIMEOUT_CAUSE = "The execution exceeded its TimeoutSeconds."

#: Errors that end the execution whatever the Retry/Catch say (AWS: "terminal").
UNCATCHABLE = frozenset({RUNTIME, DATA_LIMIT_EXCEEDED})


class StatesError(Exception):
    """An ASL error: ``error`` is the name Retry/Catch match, ``cause`` the text."""

    def __init__(self, error: str | None, cause: str | None = None):
        super().__init__(error, cause)
        self.error = error
        self.cause = cause

    def __str__(self) -> str:
        return f"{self.error}: {self.cause}" if self.cause else str(self.error)


def error_matches(error_equals: list[str], error: str | None) -> bool:
    """Whether a Retrier's or Catcher's ErrorEquals matches ``error``.

    ``States.ALL`` matches every error but the terminal ones; ``States.TaskFailed``
    matches every error but ``States.Timeout`` (and the terminal ones); ``States.Timeout``
    also matches ``States.HeartbeatTimeout``, which AWS reports for a task that missed its heartbeat.
    """
    if error in UNCATCHABLE:
        return False
    for name in error_equals:
        if name == error or name == ALL:
            return True
        if name == TASK_FAILED and error != TIMEOUT:
            return True
        if name == TIMEOUT and error == HEARTBEAT_TIMEOUT:
            return True
    return False


def json_type(value) -> str:
    """The JSON type name AWS uses in its messages: null, boolean, number, string, array, object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def state_failure(error: str, state: str, event_id: int, message: str) -> StatesError:
    """A runtime error with the cause prefix AWS writes for a failing state."""
    return StatesError(
        error,
        f"An error occurred while executing the state '{state}' "
        f"(entered at the event id #{event_id}). {message}",
    )
