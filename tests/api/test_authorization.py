"""The authorization model: every route has a rule, listing and the developer pages need the API key,
and a forwarded https scheme is kept in links.

What each finding of the security review needed (the prototype's start needs the key, a holder
learns no other continuation, internal continuations cannot be answered from outside, bad key
bytes are a 4xx, links take only a well-formed scheme and host) is in test_findings.py."""
from __future__ import annotations

import json

import pytest

from chalicelib.api import authorization

KEY = {"x-api-key": "stage-key", "Content-Type": "application/json"}


@pytest.fixture
def keyed(client, monkeypatch):
    monkeypatch.setenv("API_KEY", "stage-key")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://approvals.example.com")  # a keyed stage needs a source of links
    return client


def test_every_route_and_method_has_a_rule():
    from app import app

    routes = {(method, path) for path, methods in app.routes.items() for method in methods}
    assert routes == set(authorization.RULES)


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


def test_a_forwarded_https_scheme_is_kept(client, monkeypatch):
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    response = client.http.post("/executions", headers={"Content-Type": "application/json",
                                                        "X-Forwarded-Proto": "https", "Host": "api.example.com"},
                                body=json.dumps({"stateMachine": "incsquare", "input": {"value": 6}}))
    [continuation] = json.loads(response.body)["continuations"]
    assert continuation["url"].startswith("https://api.example.com/continuations/")
