"""The AWS Step Functions API (JSON 1.0 protocol) at ``POST /``: boto3, the AWS CLI and every SDK.

A request is ``POST /`` with ``X-Amz-Target: AWSStepFunctions.<Operation>`` and a JSON body
(``Content-Type: application/x-amz-json-1.0``); the answer is the operation's output shape
or AWS's error shape ``{"__type": "<Code>", "message": ...}`` with AWS's status. Each
operation is a handler in :data:`OPERATIONS`, carried out by the service the REST routes
use (``chalicelib.service``): the same executions, continuations, names and history.

- ``sfn_protocol``: errors, the request check, ARNs; executions and task tokens;
- ``sfn_machines``: the state machine registry and tags;
- ``sfn_activities``: the activity registry and the workers' GetActivityTask;
- ``sfn_history``: GetExecutionHistory, ListExecutions, StartSyncExecution;
- ``sfn_map_runs``: DescribeMapRun, ListMapRuns;
- ``sfn_test_state``: TestState;
- ``sigv4``: the Signature Version 4 check (``authorization`` applies it).
"""
from __future__ import annotations

import json
import logging
import uuid
from typing import Callable

from chalice import Response

from ..config import settings
from ..service import ServiceError
from . import sfn_activities, sfn_history, sfn_machines, sfn_map_runs, sfn_test_state
from .http import STORE_ERRORS
from .runtime import make_service
from .sfn_protocol import AwsError, Protocol, read_params, translate

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.0"
TARGET_PREFIX = "AWSStepFunctions."
#: Operations a task token alone authorizes (as its continuation ID does on REST).
TOKEN_OPERATIONS = frozenset({"SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"})


def aws_response(body: dict, status: int = 200) -> Response:
    return Response(body=json.dumps(body, ensure_ascii=False), status_code=status,
                    headers={"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": str(uuid.uuid4())})


def error_response(error: AwsError) -> Response:
    response = aws_response({"__type": error.code, "message": error.message}, error.status)
    response.headers["x-amzn-ErrorType"] = error.code
    return response


def operation_of(request) -> str | None:
    """The operation an ``X-Amz-Target`` header names (``None``: no header, not the protocol)."""
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    target = headers.get("x-amz-target")
    if target is None:
        return None
    return target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else ""


#: Operation -> handler. Each handler takes the validated request members and returns the output members.
OPERATIONS: dict[str, Callable[[Protocol, dict], dict]] = {
    "StartExecution": Protocol.start_execution,
    "DescribeExecution": Protocol.describe_execution,
    "StopExecution": Protocol.stop_execution,
    "RedriveExecution": Protocol.redrive_execution,
    "SendTaskSuccess": Protocol.send_task_success,
    "SendTaskFailure": Protocol.send_task_failure,
    "SendTaskHeartbeat": Protocol.send_task_heartbeat,
    **sfn_machines.OPERATIONS,
    **sfn_history.OPERATIONS,
    **sfn_activities.OPERATIONS,
    **sfn_map_runs.OPERATIONS,
    **sfn_test_state.OPERATIONS,
}


def handle(request) -> Response:
    """Answer one protocol request (``X-Amz-Target`` present)."""
    operation = operation_of(request)
    try:
        handler = OPERATIONS.get(operation or "")
        if handler is None:
            raise AwsError("UnknownOperationException", f"Unknown operation: {operation!r}.")
        config = settings()
        params = read_params(request, operation, config)
        return aws_response(handler(Protocol(make_service(request), config), params))
    except AwsError as error:
        return error_response(error)
    except ServiceError as error:
        return error_response(translate(error))
    except STORE_ERRORS as exc:
        log.warning("store unavailable: %s", type(exc).__name__)
        return error_response(AwsError("ServiceUnavailable", "The store is not reachable; try again.", 503))
    except Exception:  # noqa: BLE001 - logged, answered without details
        log.exception("unexpected error in %s", operation)
        return error_response(AwsError("InternalFailure", "The service failed unexpectedly.", 500))
