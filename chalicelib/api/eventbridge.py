"""EventBridge's ``PutEvents`` over the JSON protocol at ``POST /``, so boto3's ``events`` client works.

A request is ``POST /`` with ``X-Amz-Target: AWSEvents.PutEvents`` and a JSON body
(``Content-Type: application/x-amz-json-1.1``), checked against botocore's own model of
the operation. Each entry is published as ``POST /events`` publishes it (the service's
``publish``); the answer is AWS's: ``{"FailedEntryCount": n, "Entries": [{"EventId": ...}
| {"ErrorCode": ..., "ErrorMessage": ...}]}``, one per entry in order. Authorization is
the Step Functions API's (``authorization``): the API key, or a Signature Version 4 for
service ``events`` by a key of ``AWS_ACCESS_KEYS``; nothing in a stage with neither.
"""
from __future__ import annotations

import functools
import json
import logging

from chalice import Response

from ..config import settings
from ..service import ServiceError, events
from .http import JSON_NUMBERS_ONLY, STORE_ERRORS
from .runtime import make_service
from .sfn_protocol import AwsError, read_params

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "AWSEvents."
SERVICE = "events"  # the service a signature is scoped to


def is_target(request) -> bool:
    """``X-Amz-Target`` names an EventBridge operation."""
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    return (headers.get("x-amz-target") or "").startswith(TARGET_PREFIX)


@functools.lru_cache(maxsize=1)
def service_model():
    """botocore's model of the EventBridge API (shipped with botocore)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("events")


def _response(body: dict, status: int = 200) -> Response:
    headers = {"Content-Type": CONTENT_TYPE}
    if "__type" in body:
        headers["x-amzn-ErrorType"] = body["__type"]
    return Response(body=json.dumps(body, ensure_ascii=False), status_code=status, headers=headers)


def _loads(text: str):
    return json.loads(text, **JSON_NUMBERS_ONLY)


def put_events(request) -> dict:
    params = read_params(request, "PutEvents", settings(), service_model())
    service = make_service(request)
    out = []
    for entry in params["Entries"]:
        try:
            [result] = service.publish([events.from_put_events(entry, _loads)])
        except ServiceError as error:
            code = "MalformedDetail" if error.message.startswith("'Detail'") else "InvalidArgument"
            result = {"error": code, "message": error.message}
        if "error" in result:
            out.append({"ErrorCode": result["error"], "ErrorMessage": result["message"]})
        else:
            out.append({"EventId": result["eventId"]})
    return {"FailedEntryCount": sum("ErrorCode" in entry for entry in out), "Entries": out}


def handle(request) -> Response:
    """Answer one EventBridge protocol request."""
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    operation = headers.get("x-amz-target", "")[len(TARGET_PREFIX):]
    try:
        if operation != "PutEvents":
            raise AwsError("UnknownOperationException", f"Unknown operation: {operation!r}.")
        return _response(put_events(request))
    except AwsError as error:
        return _response({"__type": error.code, "message": error.message}, error.status)
    except ServiceError as error:
        status = 503 if error.status >= 500 else 400
        code = "ServiceUnavailable" if status == 503 else "ValidationException"
        return _response({"__type": code, "message": error.message}, status)
    except STORE_ERRORS as exc:
        log.warning("store unavailable: %s", type(exc).__name__)
        return _response({"__type": "ServiceUnavailable", "message": "The store is not reachable; try again."}, 503)
    except Exception:  # noqa: BLE001 - logged, answered without details
        log.exception("unexpected error in AWSEvents.%s", operation)
        return _response({"__type": "InternalException", "message": "The service failed unexpectedly."}, 500)
