"""What the resources that call AWS share: their ARNs, boto3 clients, results and error names.

boto3 is imported by the first task that calls AWS, never when the service
starts: a cold start that runs no such task does not pay for it.

Error names follow Step Functions. The AWS SDK integrations
(``aws-sdk:SERVICE:ACTION``) name an error ``<Service>.<Error>Exception``,
the service spelled as the AWS SDK for Java 2 spells it (``S3``, ``DynamoDb``,
``SesV2``, ``Sfn``) and ``Exception`` added when the service's own name for
the error lacks it (S3's ``NoSuchKey`` is ``S3.NoSuchKeyException``); an error
the service's model does not list is ``<Service>.<Service>Exception``. The
older optimized integrations (``lambda:invoke``, ``sns:publish``,
``sqs:sendMessage``, ``dynamodb:*Item``) use the names of the SDK for Java 1:
``Lambda.ResourceNotFoundException``, ``DynamoDB.AmazonDynamoDBException``.
No answer from AWS is ``<Service>.SdkClientException``; no answer within the
task's ``TimeoutSeconds`` is ``States.Timeout``.
"""
from __future__ import annotations

import base64
import datetime
import re
import threading
from dataclasses import dataclass
from typing import Any

from ..asl import errors
from ..asl.tasks import TaskContext, TaskFailed
from ..asl.templates import compact_json

DEFAULT_TIMEOUT_SECONDS = 60.0  # read timeout of a call when the Task has no TimeoutSeconds
CONNECT_TIMEOUT_SECONDS = 10.0

_STATES_ARN = re.compile(r"^arn:aws(?:-[a-z]+)*:states:::(.+)$")


def integration(resource: str) -> str | None:
    """``lambda:invoke`` for ``arn:aws:states:::lambda:invoke``; None for any other kind of resource."""
    match = _STATES_ARN.match(resource)
    return match.group(1) if match else None


# -- clients ---------------------------------------------------------------------

_lock = threading.Lock()
_sessions: list[tuple[Any, Any]] = []  # (boto3 session, its botocore session)
_clients: dict[tuple, Any] = {}


def session():
    """The process's boto3 session (imports boto3 the first time)."""
    return _session_pair()[0]


def service_model(service: str):
    """botocore's model of ``service`` (boto3's name for it): its operations, shapes and ID."""
    return _session_pair()[1].get_service_model(service)


def _session_pair() -> tuple[Any, Any]:
    if not _sessions:
        with _lock:
            if not _sessions:
                import boto3
                import botocore.session

                core = botocore.session.get_session()
                _sessions.append((boto3.session.Session(botocore_session=core), core))
    return _sessions[0]


def client(service: str, region: str | None = None, timeout: float | None = None):
    """A boto3 client of ``service`` (boto3's name for it), made once per service, region and timeout.

    Each call may wait ``timeout`` seconds for an answer (default
    DEFAULT_TIMEOUT_SECONDS) and is tried once: a Task's Retry decides about
    trying again, on the error names above.
    """
    read = float(timeout or DEFAULT_TIMEOUT_SECONDS)
    key = (service, region, read)
    found = _clients.get(key)
    if found is None:
        boto3_session = session()
        from botocore.config import Config

        config = Config(connect_timeout=min(CONNECT_TIMEOUT_SECONDS, read), read_timeout=read,
                        retries={"mode": "standard", "total_max_attempts": 1})
        with _lock:
            found = _clients.get(key)
            if found is None:
                found = _clients[key] = boto3_session.client(service, region_name=region, config=config)
    return found


# -- results ---------------------------------------------------------------------

def plain(value: Any) -> Any:
    """A boto3 value as JSON: times as ISO 8601 text, bytes and streams as text."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, datetime.datetime):
        return iso_instant(value)
    if hasattr(value, "read"):  # a streaming body
        value = value.read()
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    return value


def iso_instant(moment: datetime.datetime) -> str:
    """``2024-05-01T12:00:00Z``: UTC, with a fraction only when there is one."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    moment = moment.astimezone(datetime.timezone.utc)
    spec = "seconds" if not moment.microsecond else "milliseconds" if not moment.microsecond % 1000 else "microseconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def with_sdk_metadata(result: dict, response: dict) -> dict:
    """Add what the optimized integrations add to a result: ``SdkHttpMetadata``, ``SdkResponseMetadata``."""
    meta = response.get("ResponseMetadata") or {}
    headers = {header_name(name): str(value) for name, value in (meta.get("HTTPHeaders") or {}).items()}
    result["SdkHttpMetadata"] = {
        "AllHttpHeaders": {name: [value] for name, value in headers.items()},
        "HttpHeaders": headers,
        "HttpStatusCode": meta.get("HTTPStatusCode", 200),
    }
    result["SdkResponseMetadata"] = {"RequestId": meta.get("RequestId", "")}
    return result


_HEADER_NAMES = {name.lower(): name for name in (
    "x-amzn-RequestId", "x-amz-crc32", "x-amzn-Remapped-Content-Length", "x-amz-id-2", "x-amz-request-id",
)}


def header_name(name: str) -> str:
    """An HTTP header's name as AWS's answers spell it (botocore keeps them in lower case)."""
    return _HEADER_NAMES.get(name.lower()) or "-".join(part.capitalize() for part in name.split("-"))


# -- errors ----------------------------------------------------------------------

@dataclass(frozen=True)
class ErrorNames:
    """How Step Functions names the errors of one integration."""

    service: str  # the prefix: "S3", "DynamoDb", "Lambda", "DynamoDB"
    unmodeled: str  # the name of an error the service's model does not list: "S3Exception"
    legacy_service: str | None = None  # SDK for Java 1 causes name the service so: "AWSLambda"

    @classmethod
    def for_sdk(cls, service_id: str) -> "ErrorNames":
        """The names of the ``aws-sdk:`` integration of the service with this botocore ``service_id``."""
        name = java_service_name(service_id)
        return cls(name, f"{name}Exception")

    def name(self, error: str) -> str:
        return f"{self.service}.{error if error.endswith('Exception') else error + 'Exception'}"


def java_service_name(service_id: str) -> str:
    """A service's ID (``DynamoDB``, ``SESv2``, ``CloudWatch Logs``) as the SDK for Java 2 spells it
    (``DynamoDb``, ``SesV2``, ``CloudWatchLogs``): its rule for splitting words, then each word capitalized."""
    text = re.sub(r"[^A-Za-z0-9]+", " ", service_id)
    text = re.sub(r"([^a-z]{2,})v([0-9]+)", r"\1 v\2 ", text)
    text = re.sub(r"([^A-Z]{2,})V([0-9]+)", r"\1 V\2 ", text)
    text = re.sub(r"(?<=[a-z])(?=[A-Z][a-zA-Z0-9])", " ", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", text)
    text = re.sub(r"([0-9])([a-zA-Z])", r"\1 \2", text)
    return "".join(word[:1].upper() + word[1:].lower() for word in text.split())


def failure(error: Exception, names: ErrorNames, context: TaskContext) -> Exception:
    """The task failure Step Functions reports for a botocore exception (any other exception is returned as it is)."""
    from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError, ReadTimeoutError

    if isinstance(error, ClientError):
        return _client_error(error, names)
    if isinstance(error, ParamValidationError):
        return TaskFailed(names.name(names.unmodeled), str(error))
    if isinstance(error, ReadTimeoutError) and context.timeout_seconds:
        return TaskFailed(errors.TIMEOUT, "")
    if isinstance(error, BotoCoreError):
        return TaskFailed(names.name("SdkClientException"), str(error))
    return error


def _client_error(error, names: ErrorNames) -> TaskFailed:
    details = error.response.get("Error") or {}
    meta = error.response.get("ResponseMetadata") or {}
    code = details.get("Code") or "Unknown"
    message = details.get("Message") or ""
    status = meta.get("HTTPStatusCode", "")
    request_id = meta.get("RequestId") or (meta.get("HTTPHeaders") or {}).get("x-amzn-requestid", "")
    modeled = type(error).__name__  # botocore raises a class named after the error's shape when modeled
    name = names.name(modeled if modeled != "ClientError" else names.unmodeled)
    if names.legacy_service:  # SDK for Java 1
        cause = (f"{message} (Service: {names.legacy_service}; Status Code: {status}; Error Code: {code}; "
                 f"Request ID: {request_id}; Proxy: null)")
    else:  # SDK for Java 2
        extended = f", Extended Request ID: {meta['HostId']}" if meta.get("HostId") else ""
        cause = (f"{message} (Service: {names.service}, Status Code: {status}, Request ID: {request_id}"
                 f"{extended}) (SDK Attempt Count: 1)")
    return TaskFailed(name, cause)


def json_text(value: Any) -> str:
    """A value sent where AWS expects text: text as it is, any other JSON value as compact JSON."""
    return value if isinstance(value, str) else compact_json(value)
