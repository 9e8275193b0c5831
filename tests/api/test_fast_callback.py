"""A task token answered during its own call, through `chalice local` and through the Lambda handler.

An HTTP ``.waitForTaskToken`` task calls an endpoint on loopback (the dev stage's
ALLOWED_HTTP_HOSTS allows it) that redeems the token it receives before it responds:
over HTTP to the same `chalice local`, or as an API Gateway event to the API handler
in another process (a second Lambda container). The continuation is stored before the
call is made, so the redemption finds it, and the start answers the finished execution.
``tests/service/test_effects.py`` does the same on the service itself.
"""
from __future__ import annotations

import json
import os

from ..local_server import call, chalice_local
from ..service.test_effects import answering_endpoint, http_task  # noqa: F401 - a fixture
from .lambda_events import FUNCTION_NAME, LambdaContext, api_event, invoke_source, stage_environment

RESOURCES = "module:*,arn:aws:states:::http:invoke*"  # inline definitions may call HTTP Tasks
ANSWER = {"ok": 1, "via": "callback"}
INPUT = {"q": 1}


def outbox(redis_client) -> list[bytes]:
    return list(redis_client.scan_iter("asl:*:o:*"))


def resumes(document: dict) -> int:
    return [event["type"] for event in document["history"]].count("ExecutionResumed")


def test_through_chalice_local(redis_client, tmp_path, answering_endpoint):
    url, holder, answers = answering_endpoint
    with chalice_local(tmp_path / "chalice-local.log", ALLOWED_RESOURCES=RESOURCES) as base:
        holder["redeem"] = lambda token: call("POST", f"{base}/continuations/{token}", json.dumps(ANSWER).encode())
        status, document = call("POST", base + "/executions",
                                json.dumps({"definition": http_task(url), "input": INPUT}).encode())
        assert [answer[0] for answer in answers] == [200], answers  # one call, redeemed during it
        assert answers[0][1]["status"] == "SUCCEEDED", answers
        # the start answers what is stored once the call returned, not a stale SUSPENDED
        assert (status, document["status"]) == (200, "SUCCEEDED"), document
        assert document["output"] == {**INPUT, "reply": ANSWER}
        status, final = call("GET", f"{base}/executions/{document['executionId']}")
    assert (status, final["status"], final["output"]) == (200, "SUCCEEDED", {**INPUT, "reply": ANSWER})
    assert resumes(final) == 1
    assert outbox(redis_client) == []  # the call was made and removed: nothing left for the sweep


def test_through_the_lambda_handler(redis_client, answering_endpoint, monkeypatch):
    from app import app

    url, holder, answers = answering_endpoint
    # what the dev stage's API handler is deployed with (its ALLOWED_HTTP_HOSTS allows loopback)
    environment = {**stage_environment("dev"), "REDIS_URL": os.environ["REDIS_URL"],
                   "ALLOWED_RESOURCES": RESOURCES, "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
                   "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    assert "127.0.0.1" in environment["ALLOWED_HTTP_HOSTS"].split(",")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    def redeem(token: str) -> tuple[int, dict]:
        event = api_event("POST", "/continuations/{continuation}", f"/continuations/{token}",
                          {"continuation": token}, ANSWER)
        response = invoke_source(event, environment)  # another container of the API handler
        return response["statusCode"], json.loads(response["body"])

    holder["redeem"] = redeem
    response = app(api_event("POST", "/executions", "/executions",
                             body={"definition": http_task(url), "input": INPUT}), LambdaContext())
    status, document = response["statusCode"], json.loads(response["body"])
    assert [answer[0] for answer in answers] == [200], answers
    assert answers[0][1]["status"] == "SUCCEEDED", answers
    assert (status, document["status"]) == (200, "SUCCEEDED"), document
    assert document["output"] == {**INPUT, "reply": ANSWER}
    path = f"/executions/{document['executionId']}"
    response = app(api_event("GET", "/executions/{execution_id}", path, {"execution_id": document["executionId"]}),
                   LambdaContext())
    final = json.loads(response["body"])
    assert (response["statusCode"], final["status"], final["output"]) == (200, "SUCCEEDED", {**INPUT, "reply": ANSWER})
    assert resumes(final) == 1
    assert outbox(redis_client) == []
