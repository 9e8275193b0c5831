"""Real Step Functions clients against the app, and one check of every answer against botocore's model.

* :func:`through_test_client`: a boto3 ``stepfunctions`` client whose requests (serialized and
  signed by botocore as for AWS) go to ``chalice.test.Client`` instead of the network.
* :func:`over_http`: a boto3 client with ``endpoint_url`` at a running ``chalice local``.
* :func:`record_answers`: collect what a client's every call was answered, as received.
* :func:`answer_problems` (:func:`assert_answers_fit` for a collection): the one check every protocol
  test uses. botocore's own parser reads the answer; a success has every required member of the
  operation's output shape, every member of the shape's type, enum and bounds, at any depth; an
  error is AWS's shape with a code the operation's model lists (or one AWS answers for any
  operation) at the HTTP status AWS answers it with.
"""
from __future__ import annotations

import datetime
import json

from typing import NamedTuple

import boto3
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.model import ServiceModel
from botocore.parsers import create_parser

REGION, ACCOUNT = "us-east-1", "000000000000"
MODEL = botocore.session.get_session().get_service_model("stepfunctions")
NO_RETRIES = Config(retries={"total_max_attempts": 1})


def machine_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"


class _Raw:
    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_):
        yield self.body


def through_test_client(test_client, *, key: str = "AKIDEXAMPLE", secret: str = "secret", answers=None,
                        config: Config = NO_RETRIES, service: str = "stepfunctions"):
    """A boto3 client of ``service`` whose every request is answered by ``test_client`` (Chalice's test client).

    ``answers`` (a list), when given, collects every answer (see :func:`record_answers`).
    """
    client = boto3.client(service, region_name=REGION, endpoint_url="http://sfn.test",
                          aws_access_key_id=key, aws_secret_access_key=secret, config=config)

    def send(request, **_):
        body = request.body or b""
        if hasattr(body, "read"):
            body = body.read()
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        headers["Host"] = "sfn.test"
        response = test_client.http.post("/", headers=headers, body=body)
        raw = response.body if isinstance(response.body, bytes) else response.body.encode()
        return AWSResponse("http://sfn.test/", response.status_code, dict(response.headers), _Raw(raw))

    client.meta.events.register("before-send", send)
    if answers is not None:
        record_answers(client, answers)
    return client


def over_http(endpoint: str, *, key: str = "AKIDEXAMPLE", secret: str = "secret", config: Config = NO_RETRIES,
              answers=None):
    client = boto3.client("stepfunctions", region_name=REGION, endpoint_url=endpoint,
                          aws_access_key_id=key, aws_secret_access_key=secret, config=config)
    if answers is not None:
        record_answers(client, answers)
    return client


class Answer(NamedTuple):
    """One answer as the client received it."""
    model: ServiceModel
    operation: str
    status: int
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body) if self.body else None


def record_answers(client, answers: list) -> None:
    """Append an :class:`Answer` to ``answers`` for every call ``client`` makes, successes and errors
    (botocore emits ``after-call`` before it raises the error)."""
    model = client.meta.service_model

    def after_call(http_response, model=None, **_):
        answers.append(Answer(client.meta.service_model, model.name, http_response.status_code,
                              dict(http_response.headers), http_response.content or b""))

    client.meta.events.register(f"after-call.{model.service_id.hyphenize()}", after_call)


# -- the output shapes ------------------------------------------------------------------------

_TYPES = {
    "string": str, "boolean": bool, "integer": int, "long": int, "float": (int, float),
    "double": (int, float), "timestamp": (int, float), "blob": str,
}


def shape_problems(shape, value, where: str = "") -> list[str]:
    """What in ``value`` (raw JSON) does not fit ``shape`` (a botocore Shape): types, required members,
    enums, string lengths, unknown members."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{where or '<top>'}: expected an object, got {value!r}"]
        problems = [f"{where}.{name}: required, missing" for name in shape.required_members if name not in value]
        for name, item in value.items():
            if name not in shape.members:
                problems.append(f"{where}.{name}: not a member of {shape.name}")
            else:
                problems += shape_problems(shape.members[name], item, f"{where}.{name}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {value!r}"]
        return [p for i, item in enumerate(value) for p in shape_problems(shape.member, item, f"{where}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{where}: expected a map, got {value!r}"]
        return [p for k, item in value.items() for p in shape_problems(shape.value, item, f"{where}[{k}]")]
    expected = _TYPES[kind]
    if isinstance(value, bool) and kind != "boolean" or not isinstance(value, expected):
        return [f"{where}: expected {kind}, got {value!r}"]
    problems = []
    if kind == "string":
        if shape.enum and value not in shape.enum:
            problems.append(f"{where}: {value!r} is not one of {shape.enum}")
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and len(value) < low or high is not None and len(value) > high:
            problems.append(f"{where}: length {len(value)} outside [{low}, {high}]")
    if kind in ("integer", "long"):
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low or high is not None and value > high:
            problems.append(f"{where}: {value} outside [{low}, {high}]")
    return problems


#: Errors AWS answers for any operation of a JSON protocol service, with their HTTP status (AWS's "common
#: errors"): authentication (Signature Version 4 or the API key) is 403, a throttled or unreadable request 400.
COMMON_ERRORS = {
    "MissingAuthenticationTokenException": 403, "IncompleteSignatureException": 403,
    "UnrecognizedClientException": 403, "InvalidSignatureException": 403, "AccessDeniedException": 400,
    "SerializationException": 400, "UnknownOperationException": 400, "ValidationException": 400,
    "ThrottlingException": 400, "InternalFailure": 500, "ServiceUnavailable": 503,
}
#: The status of an error the operation's model lists: AWS answers every modeled Step Functions and
#: EventBridge error with 400 (the models carry no other).
MODELED_ERROR_STATUS = 400


def answer_problems(model: ServiceModel, operation: str, status: int, headers: dict, body: bytes) -> list[str]:
    """What in one answer (as received) is not what AWS would answer for ``operation``; [] if nothing."""
    known = operation in model.operation_names
    operation_model = model.operation_model(operation) if known else None
    protocol_type = f"application/x-amz-json-{model.metadata['jsonVersion']}"
    problems = []
    if {k.lower(): v for k, v in headers.items()}.get("content-type") != protocol_type:
        problems.append(f"content type {headers.get('Content-Type')!r}, not {protocol_type}")
    parser = create_parser(model.metadata["protocol"])
    response = {"status_code": status, "headers": headers, "body": body}
    try:
        raw = json.loads(body)
        parsed = parser.parse(response, operation_model.output_shape if known and status < 300 else None)
    except Exception as exc:  # noqa: BLE001 - what does not parse is the problem reported
        return problems + [f"does not parse: {exc!r}"]
    if status == 200 and known:
        shape = operation_model.output_shape
        return problems + (shape_problems(shape, raw) if shape is not None
                           else [] if raw == {} else [f"{operation} has no output, got {raw!r}"])
    if status == 200:
        return problems + [f"{operation} is not an operation of {model.service_name}, yet answered 200"]
    if not isinstance(raw, dict) or set(raw) != {"__type", "message"} \
            or not all(isinstance(v, str) and v for v in raw.values()):
        return problems + [f"not AWS's error shape: {raw!r}"]
    code = raw["__type"]
    if parsed["Error"]["Code"] != code:
        problems.append(f"botocore reads the code as {parsed['Error']['Code']!r}, not {code!r}")
    modeled = {shape.name for shape in operation_model.error_shapes} if known else set()
    expected = MODELED_ERROR_STATUS if code in modeled else COMMON_ERRORS.get(code)
    if expected is None:
        problems.append(f"{code} is neither an error of {operation} nor one of any operation")
    elif status != expected:
        problems.append(f"{code} answered {status}; AWS answers it {expected}")
    return problems


def assert_answers_fit(answers: list[Answer]) -> None:
    """Every answer collected by :func:`record_answers` is what AWS would answer (:func:`answer_problems`)."""
    assert answers
    problems = [(a.operation, a.status, a.body[:300], p) for a in answers for p in answer_problems(*a)]
    assert not problems, problems


def epoch(value) -> float:
    """A timestamp botocore parsed (a datetime) as epoch seconds."""
    assert isinstance(value, datetime.datetime), value
    return value.timestamp()
