"""AWS Lambda, the two ways Step Functions calls it.

* ``arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]``: the task's
  input is the function's event, the function's answer is the result.
* ``arn:aws:states:::lambda:invoke``: Parameters ``FunctionName``, ``Payload``
  (the event; left out when null), ``InvocationType``, ``Qualifier``,
  ``ClientContext``, ``LogType``; the result is
  ``{"ExecutedVersion", "Payload", "SdkHttpMetadata", "SdkResponseMetadata", "StatusCode"}``
  (plus ``LogResult`` when asked for).

A function that fails (the answer has a ``FunctionError``) fails the task with
the ``errorType`` the function reported, or ``Lambda.Unknown`` when it reported
none (out of memory, timed out); the cause is the function's answer, as JSON
text. An error of the Lambda service itself is ``Lambda.<Exception>``
(``Lambda.ResourceNotFoundException``, ``Lambda.TooManyRequestsException``).
"""
from __future__ import annotations

import base64
import json
import re
from typing import Any

from ..asl.tasks import Handler, TaskContext, TaskFailed
from ..asl.templates import compact_json
from . import aws

ERRORS = aws.ErrorNames("Lambda", "AWSLambdaException", legacy_service="AWSLambda")
UNKNOWN = "Lambda.Unknown"

_FUNCTION_ARN = re.compile(r"^arn:aws(?:-[a-z]+)*:lambda:(?P<region>[a-z0-9-]+):\d{12}:function:[^:]+(?::[^:]+)?$")


def resolve(resource: str) -> Handler | None:
    match = _FUNCTION_ARN.match(resource)
    if match:
        region = match["region"]
        return lambda payload, context: invoke_function(resource, region, payload, context)
    if aws.integration(resource) == "lambda:invoke":
        return invoke
    return None


def invoke_function(arn: str, region: str, payload: Any, context: TaskContext) -> Any:
    """The function ARN as the Resource: the input in, the function's answer out."""
    response = _invoke(region, context, FunctionName=arn, Payload=compact_json(payload).encode())
    text = _text(response)
    answer = _parsed(text)
    if response.get("FunctionError"):
        raise TaskFailed(_error_type(answer), text)
    return answer


def invoke(payload: Any, context: TaskContext) -> dict:
    """``arn:aws:states:::lambda:invoke``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("FunctionName"), str):
        raise TaskFailed(ERRORS.name(ERRORS.unmodeled), "The Parameters must be an object with a FunctionName.")
    request = {key: value for key, value in payload.items() if key != "Payload"}
    if payload.get("Payload") is not None:
        request["Payload"] = compact_json(payload["Payload"]).encode()
    match = _FUNCTION_ARN.match(payload["FunctionName"])
    response = _invoke(match["region"] if match else None, context, **request)
    text = _text(response)
    answer = _parsed(text)
    if response.get("FunctionError"):
        raise TaskFailed(_error_type(answer), text if isinstance(answer, str) else compact_json(answer))
    result = {key: response[key] for key in ("ExecutedVersion", "LogResult") if key in response}
    result["Payload"] = answer
    result["StatusCode"] = response.get("StatusCode")
    return aws.with_sdk_metadata(result, response)


def _invoke(region: str | None, context: TaskContext, **request: Any) -> dict:
    key = context.idempotency_key
    if key and "ClientContext" not in request and request.get("InvocationType", "RequestResponse") == "RequestResponse":
        # a call that may be made again: the function finds the same key in context.client_context.custom
        custom = json.dumps({"custom": {"idempotencyKey": key}}, separators=(",", ":")).encode()
        request["ClientContext"] = base64.b64encode(custom).decode()
    try:
        return aws.client("lambda", region, context.timeout_seconds).invoke(**request)
    except Exception as error:
        raise aws.failure(error, ERRORS, context) from None


def _text(response: dict) -> str:
    body = response.get("Payload")
    data = body.read() if hasattr(body, "read") else body or b""
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)


def _parsed(text: str) -> Any:
    """The function's answer: JSON when it is JSON (Lambda's answers are), else the text."""
    if not text:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _error_type(answer: Any) -> str:
    error_type = answer.get("errorType") if isinstance(answer, dict) else None
    return error_type if isinstance(error_type, str) and error_type else UNKNOWN
