"""Input too deep to echo is refused at the door with 400, by one bound (``MAX_REQUEST_DEPTH``, derived from the
interpreter's ``MAX_DATA_DEPTH``): every answer that echoes what a request sent reads back with ``json.loads``, and
nothing is a 500 (starts, redemption answers, the prototype's calls, the Step Functions API)."""
from __future__ import annotations

import json
import urllib.parse

import pytest

from chalicelib.asl.limits import MAX_DATA_DEPTH, MAX_REQUEST_DEPTH

from .test_fallback import lambda_answer
from .test_package import api_event

PASS = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
ASK = {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "module:suspend", "End": True}}}


def nested(depth: int) -> list:
    """Arrays nested ``depth`` levels deep (``[]`` is one level)."""
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def text(depth: int) -> str:
    return "[" * depth + "]" * depth


def post(client, path: str, body: str) -> tuple[int, dict]:
    response = client.http.post(path, headers={"Content-Type": "application/json"}, body=body)
    assert response.status_code < 500, response.body
    return response.status_code, json.loads(response.body)  # every answer reads back


def start_body(depth: int) -> str:
    """A start whose input nests ``depth`` levels (the body one more)."""
    return '{"definition": %s, "input": {"deep": %s}}' % (json.dumps(PASS), text(depth - 1))


@pytest.mark.parametrize("depth", [MAX_REQUEST_DEPTH + 1, MAX_DATA_DEPTH - 1, MAX_DATA_DEPTH, 5000])
def test_a_start_too_deep_to_echo_is_400(client, redis_client, depth):
    status, answer = post(client, "/executions", start_body(depth))
    assert (status, answer["error"]) == (400, "InvalidRequest")
    assert str(MAX_REQUEST_DEPTH) in answer["message"]
    assert redis_client.keys("asl:{*") == []  # nothing started


def test_a_start_within_the_bound_is_answered_readably_with_its_history(client):
    depth = MAX_REQUEST_DEPTH - 1  # the body nests MAX_REQUEST_DEPTH levels
    status, document = post(client, "/executions", start_body(depth))
    assert status == 200 and document["status"] == "SUCCEEDED"
    assert document["output"] == {"deep": nested(depth - 1)}
    response = client.http.get("/executions/" + document["executionId"])
    again = json.loads(response.body)  # the history wraps the input in more levels: still readable
    assert again["history"][0]["input"] == {"deep": nested(depth - 1)}


def test_a_redemption_answer_too_deep_is_400_and_the_continuation_stays_open(client):
    status, document = post(client, "/executions", json.dumps({"definition": ASK, "input": {}}))
    [waiting] = document["continuations"]
    for path in (f"/continuations/{waiting['id']}", f"/?continuation={waiting['id']}"):
        status, answer = post(client, path, '{"answer": %s}' % text(MAX_DATA_DEPTH - 1))
        assert (status, answer["error"]) == (400, "InvalidRequest")
    status, info = post(client, f"/continuations/{waiting['id']}/failure",
                        '{"error": "E", "cause": "c", "more": %s}' % text(MAX_REQUEST_DEPTH))
    assert (status, info["error"]) == (400, "InvalidRequest")
    described = json.loads(client.http.get(f"/continuations/{waiting['id']}").body)
    assert described["status"] == "waiting"
    status, done = post(client, f"/continuations/{waiting['id']}", '{"answer": %s}' % text(MAX_REQUEST_DEPTH - 1))
    assert status == 200 and done["status"] == "SUCCEEDED"


@pytest.mark.parametrize("depth", [MAX_REQUEST_DEPTH + 1, MAX_DATA_DEPTH - 1, 5000])
def test_the_prototype_refuses_an_input_too_deep(client, redis_client, depth):
    query = urllib.parse.quote(text(depth))
    status, answer = post(client, f"/?input={query}", json.dumps(PASS))
    assert (status, answer["error"]) == (400, "InvalidRequest")
    status, answer = post(client, "/?input=6", '{"StartAt": "P", "States": %s}' % text(depth))
    assert (status, answer["error"]) == (400, "InvalidRequest")
    assert redis_client.keys("asl:{*") == []


def test_the_prototype_answers_an_input_within_the_bound_readably(client):
    depth = MAX_REQUEST_DEPTH
    status, answer = post(client, "/?input=" + urllib.parse.quote('{"deep": %s}' % text(depth - 1)), json.dumps(PASS))
    assert status == 200 and answer["deep"] == nested(depth - 1)


def test_through_the_lambda_handler_too_deep_is_400():
    event = api_event("POST", "/executions", "/executions", body={})
    event["body"] = start_body(MAX_DATA_DEPTH - 1)
    status, answer, _ = lambda_answer(event)
    assert (status, answer["error"]) == (400, "InvalidRequest")


def test_the_step_functions_api_refuses_an_input_too_deep(client):
    response = client.http.post("/", headers={"Content-Type": "application/x-amz-json-1.0",
                                              "X-Amz-Target": "AWSStepFunctions.StartExecution"},
                                body=json.dumps({"stateMachineArn": "arn:aws:states:us-east-1:000000000000:"
                                                 "stateMachine:incsquare", "input": text(MAX_DATA_DEPTH - 1)}))
    assert 400 <= response.status_code < 500
    assert "levels deep" in json.loads(response.body)["message"]
