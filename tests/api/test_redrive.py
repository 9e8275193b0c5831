"""POST /executions/{id}/redrive over REST (Chalice's test client): each kind of unsuccessful end, the Map
where 3 of 100 iterations failed, the refusals and the API key."""
from __future__ import annotations

import json

from .redrive_items import HUNDRED, items, rerun_only_the_broken  # noqa: F401 - items: a fixture


def post(client, path, body=None, headers=None):
    response = client.http.post(path, headers={"Content-Type": "application/json", **(headers or {})},
                                body=b"" if body is None else body if isinstance(body, bytes) else json.dumps(body))
    return response.status_code, json.loads(response.body)


def test_a_failed_map_is_redriven_by_id_and_only_its_3_failed_iterations_rerun(client, items):
    calls, broken = items
    status, failed = post(client, "/executions", {"definition": HUNDRED, "input": {"items": list(range(100))},
                                                   "name": "rest-hundred"})
    assert (status, failed["status"]) == (200, "FAILED")
    broken.clear()
    status, redriven = post(client, f"/executions/{failed['executionId']}/redrive")
    assert (status, redriven["status"], redriven["redriveCount"]) == (200, "SUCCEEDED", 1)
    assert redriven["executionId"] == failed["executionId"] and redriven["output"][99] == {"done": 99}
    rerun_only_the_broken(calls)
    history = json.loads(client.http.get(f"/executions/{failed['executionId']}").body)["history"]
    assert [e["redriveCount"] for e in history if e["type"] == "ExecutionRedriven"] == [1]
    status, refused = post(client, "/executions/rest-hundred/redrive")  # by name
    assert (status, refused["error"]) == (409, "ExecutionNotRedrivable")
    assert refused["message"] == "Execution is SUCCEEDED and cannot be redriven."


def test_an_aborted_execution_is_redriven_and_waits_again(client):
    status, waiting = post(client, "/executions", {"stateMachine": "incsquare", "input": {"value": 6}})
    assert client.http.delete(f"/executions/{waiting['executionId']}").status_code == 200
    status, redriven = post(client, f"/executions/{waiting['executionId']}/redrive", {"clientToken": "once"})
    assert (status, redriven["status"], redriven["redriveCount"]) == (200, "SUSPENDED", 1)
    [question] = redriven["continuations"]
    assert question["parameters"] == {"value": 49}  # Increment and Square did not run again
    status, again = post(client, f"/executions/{waiting['executionId']}/redrive", {"clientToken": "once"})
    assert (status, again["redriveCount"], again["redriveDate"]) == (200, 1, redriven["redriveDate"])
    assert post(client, f"/continuations/{question['id']}", {})[1]["status"] == "SUCCEEDED"


def test_refusals(client, monkeypatch):
    assert post(client, "/executions/nobody-at-all/redrive")[0] == 404
    status, waiting = post(client, "/executions", {"stateMachine": "incsquare", "input": {"value": 1}})
    path = f"/executions/{waiting['executionId']}/redrive"
    status, refused = post(client, path)
    assert (status, refused["error"], refused["message"]) == (
        409, "ExecutionNotRedrivable", "Execution is RUNNING and cannot be redriven.")
    assert post(client, path, {"token": "x"})[1]["error"] == "InvalidRequest"
    assert post(client, path, {"clientToken": 5})[1]["error"] == "InvalidRequest"
    assert post(client, path, {"clientToken": "x" * 65})[1]["error"] == "InvalidRequest"
    assert post(client, path, b"{nope")[1]["error"] == "MalformedJSON"
    assert post(client, path, [1])[1]["error"] == "InvalidRequest"
    monkeypatch.setenv("API_KEY", "sesame")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://approvals.example.com")  # a keyed stage needs a source of links
    status, forbidden = post(client, path)
    assert (status, forbidden["error"]) == (403, "Forbidden")
    assert post(client, path, headers={"x-api-key": "sesame"})[0] == 409
