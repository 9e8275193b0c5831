"""The authorization model: every route has a rule, the API key guards every start (the prototype's
too), internal continuations cannot be answered from outside, bad key bytes are a 4xx, and links
are built only from a well-formed scheme and host."""
from __future__ import annotations

import json

import pytest

from chalicelib.api import authorization

from .test_api import get, post, start

KEY = {"x-api-key": "stage-key", "Content-Type": "application/json"}
INCSQUARE = json.loads(open("state_machines/incsquare.json").read())


@pytest.fixture
def keyed(client, monkeypatch):
    monkeypatch.setenv("API_KEY", "stage-key")
    return client


def test_every_route_and_method_has_a_rule():
    from app import app

    routes = {(method, path) for path, methods in app.routes.items() for method in methods}
    assert routes == set(authorization.RULES)


def test_the_prototype_start_needs_the_api_key(keyed):
    response = keyed.http.post("/?input=6", headers={"Content-Type": "application/json"},
                               body=json.dumps(INCSQUARE))
    assert response.status_code == 403
    assert json.loads(response.body)["error"] == "Forbidden"
    allowed = keyed.http.post("/?input=6", headers=KEY, body=json.dumps(INCSQUARE))
    assert allowed.status_code == 200
    continuation = json.loads(allowed.body)["CONTINUATION"]
    # redeeming is the continuation holder's: no key needed
    done = keyed.http.post(f"/?continuation={continuation}", headers={"Content-Type": "application/json"})
    assert json.loads(done.body)["status"] == "SUCCEEDED"


def test_listing_executions_needs_the_api_key(keyed):
    started = keyed.http.post("/executions", headers=KEY, body=json.dumps({"stateMachine": "incsquare"}))
    assert started.status_code == 200
    for headers in ({}, {"x-api-key": "wrong"}, {"x-api-key": "stage-key "}):
        response = keyed.http.get("/executions", headers=headers)
        assert (response.status_code, json.loads(response.body)["error"]) == (403, "Forbidden")
    allowed = keyed.http.get("/executions", headers=KEY)
    assert allowed.status_code == 200
    assert [e["executionId"] for e in json.loads(allowed.body)["executions"]] == [
        json.loads(started.body)["executionId"]]


def test_the_developer_pages_need_the_api_key_when_the_stage_sets_one(keyed):
    started = json.loads(keyed.http.post("/executions", headers=KEY, body=json.dumps({"stateMachine": "incsquare"})).body)
    html = {"Accept": "text/html"}
    for path in ("/executions", f"/executions/{started['executionId']}"):
        refused = keyed.http.get(path, headers=html)
        assert (refused.status_code, json.loads(refused.body)["error"]) == (403, "Forbidden")
        shown = keyed.http.get(path, headers={**html, "x-api-key": "stage-key"})
        assert shown.status_code == 200 and shown.headers["Content-Type"].startswith("text/html")
        assert started["executionId"] in shown.body.decode()


@pytest.mark.parametrize("value", ["ключ", "caf\u00e9", "\u00ff" * 9])
def test_a_non_ascii_api_key_is_refused_with_403(keyed, value):
    response = keyed.http.get("/executions/abc", headers={"x-api-key": value})
    assert response.status_code == 403
    assert json.loads(response.body)["error"] == "Forbidden"


@pytest.mark.parametrize("suffix,body", [("", {"Output": {"outcome": "approved"}, "ExecutionArn": "forged"}),
                                         ("/failure", {"error": "Forged"}),
                                         ("/heartbeat", {})])
def test_a_child_continuation_is_not_answerable_from_outside(client, suffix, body):
    parent = start(client, "purchase", {"item": "chair", "requester": "ria", "reason": "broken"})
    [waiting] = parent["continuations"]
    assert waiting["kind"] == "child"
    status, answer = post(client, f"/continuations/{waiting['id']}{suffix}", body)
    assert (status, answer["error"]) == (403, "ContinuationInternal")
    _, again = get(client, "/executions/" + parent["executionId"])
    assert again["status"] == "SUSPENDED"
    assert [c["kind"] for c in again["continuations"]] == ["child"]


@pytest.mark.parametrize("headers", [{"X-Forwarded-Proto": "javascript:alert(1)//"},
                                     {"X-Forwarded-Proto": "data"},
                                     {"Host": "evil.example/<script>"},
                                     {"Host": "a b"}])
def test_links_never_take_a_bad_scheme_or_host_from_the_request(client, monkeypatch, headers):
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    response = client.http.post("/executions", headers={"Content-Type": "application/json", **headers},
                                body=json.dumps({"stateMachine": "incsquare", "input": {"value": 6}}))
    [continuation] = json.loads(response.body)["continuations"]
    assert continuation["url"].startswith(("http://", "https://"))
    assert "<" not in continuation["url"] and " " not in continuation["url"]
    assert "javascript" not in continuation["url"]


def test_a_forwarded_https_scheme_is_kept(client, monkeypatch):
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    response = client.http.post("/executions", headers={"Content-Type": "application/json",
                                                        "X-Forwarded-Proto": "https", "Host": "api.example.com"},
                                body=json.dumps({"stateMachine": "incsquare", "input": {"value": 6}}))
    [continuation] = json.loads(response.body)["continuations"]
    assert continuation["url"].startswith("https://api.example.com/continuations/")
