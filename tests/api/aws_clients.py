"""Real Step Functions clients against the app, and a check of every answer against botocore's model.

* :func:`through_test_client`: a boto3 ``stepfunctions`` client whose requests (serialized and
  signed by botocore as for AWS) go to ``chalice.test.Client`` instead of the network.
* :func:`over_http`: a boto3 client with ``endpoint_url`` at a running ``chalice local``.
* :func:`assert_fits_output`: the raw JSON an operation answered has every required member of the
  operation's output shape, and every member has the shape's type, at any depth.
"""
from __future__ import annotations

import datetime
import json

import boto3
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.config import Config

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

    ``answers`` (a list), when given, collects ``(operation, status, parsed JSON body)`` of each answer.
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
        if answers is not None:
            operation = headers["X-Amz-Target"].split(".", 1)[1]
            answers.append((operation, response.status_code, json.loads(raw) if raw else None))
        return AWSResponse("http://sfn.test/", response.status_code, dict(response.headers), _Raw(raw))

    client.meta.events.register("before-send", send)
    return client


def over_http(endpoint: str, *, key: str = "AKIDEXAMPLE", secret: str = "secret", config: Config = NO_RETRIES):
    return boto3.client("stepfunctions", region_name=REGION, endpoint_url=endpoint,
                        aws_access_key_id=key, aws_secret_access_key=secret, config=config)


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


def assert_fits_output(operation: str, body) -> None:
    shape = MODEL.operation_model(operation).output_shape
    problems = shape_problems(shape, body) if shape is not None else ([] if body in ({}, None) else ["no output"])
    assert not problems, (operation, problems)


def assert_answers_fit(answers: list) -> None:
    """Every 200 answer collected by :func:`through_test_client` fits its operation's output shape; every
    error is AWS's error shape with a code the operation (or the protocol) has."""
    assert answers
    for operation, status, body in answers:
        if status == 200:
            assert_fits_output(operation, body)
        else:
            assert set(body) == {"__type", "message"}, body
            assert isinstance(body["__type"], str) and isinstance(body["message"], str)


def epoch(value) -> float:
    """A timestamp botocore parsed (a datetime) as epoch seconds."""
    assert isinstance(value, datetime.datetime), value
    return value.timestamp()
