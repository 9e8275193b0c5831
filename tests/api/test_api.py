"""The HTTP API end to end through Chalice's test client, against real Redis."""
from __future__ import annotations

import json
import os
import time

import pytest

from chalicelib.service import catalog
from chalicelib.asl import validate

JSON = {"Content-Type": "application/json"}


def post(client, path, body=None, raw=None, headers=JSON):
    response = client.http.post(path, headers=headers, body=raw if raw is not None else json.dumps(body))
    return response.status_code, json.loads(response.body) if response.body else None


def get(client, path):
    response = client.http.get(path)
    return response.status_code, json.loads(response.body)


def start(client, machine, input):
    status, document = post(client, "/executions", {"stateMachine": machine, "input": input})
    assert status == 200, document
    return document


def test_incsquare_suspends_at_49_and_resumes_to_50(client):
    document = start(client, "incsquare", {"value": 6})
    assert document["status"] == "SUSPENDED"
    assert document["stateMachine"] == "incsquare"
    assert document["startDate"].endswith("Z") and "stopDate" not in document
    [waiting] = document["continuations"]
    assert waiting["state"] == "Suspend" and waiting["parameters"] == {"value": 49}
    assert waiting["url"].endswith("/continuations/" + waiting["id"])
    assert len(waiting["id"]) >= 22 and waiting["id"].replace("-", "").replace("_", "").isalnum()

    status, done = post(client, f"/continuations/{waiting['id']}", {"approvedBy": "kim"})
    assert status == 200
    assert done["status"] == "SUCCEEDED"
    assert done["output"] == {"value": 50, "approvedBy": "kim"}
    assert (done["continuation"], done["answered"], done["replay"], done["waitingAt"]) == \
        (waiting["id"], "result", False, [])
    # the holder's view, not the execution document (see test_findings.py)
    assert "continuations" not in done and "input" not in done
    _, described = get(client, f"/executions/{document['executionId']}")
    assert done["answeredAt"] == described["stopDate"]


def test_a_continuation_is_redeemed_at_most_once(client):
    document = start(client, "incsquare", {"value": 1})
    ident = document["continuations"][0]["id"]
    status, first = post(client, f"/continuations/{ident}", {"by": "kim"})
    assert status == 200 and first["replay"] is False
    status, error = post(client, f"/continuations/{ident}", {"by": "lee"})
    assert status == 409
    assert error["error"] == "ContinuationAlreadyRedeemed"
    assert error["executionId"] == document["executionId"]
    assert error["answeredAt"] == first["answeredAt"]
    assert error["answeredAt"] in error["message"]


def test_a_retried_redemption_with_the_same_bytes_gets_the_first_outcome(client):
    document = start(client, "incsquare", {"value": 1})
    ident = document["continuations"][0]["id"]
    body = '{"by": "kim", "n": 1}'
    status, first = post(client, f"/continuations/{ident}", raw=body)
    assert status == 200
    status, again = post(client, f"/continuations/{ident}", raw=body)
    assert (status, again["replay"], again["output"]) == (200, True, first["output"])
    assert again["answeredAt"] == first["answeredAt"]
    assert {k: v for k, v in again.items() if k != "replay"} == {k: v for k, v in first.items() if k != "replay"}
    # the same values in other bytes are another answer
    status, error = post(client, f"/continuations/{ident}", raw='{"n": 1, "by": "kim"}')
    assert (status, error["error"]) == (409, "ContinuationAlreadyRedeemed")
    history = get(client, f"/executions/{document['executionId']}")[1]["history"]
    assert [e["type"] for e in history].count("ExecutionResumed") == 1
    # the prototype's call and the failure route: the same rules
    other = start(client, "incsquare", {"value": 2})["continuations"][0]["id"]
    failure = {"error": "Rejected", "cause": "no"}
    assert post(client, f"/continuations/{other}/failure", failure)[0] == 200
    status, again = post(client, f"/continuations/{other}/failure", failure)
    assert (status, again["replay"], again["error"]) == (200, True, "Rejected")
    assert post(client, f"/continuations/{other}", failure)[1]["error"] == "ContinuationAlreadyRedeemed"
    third = start(client, "incsquare", {"value": 3})["continuations"][0]["id"]
    assert post(client, f"/?continuation={third}", raw="")[1]["value"] == 17
    status, again = post(client, f"/?continuation={third}", raw="")
    assert (status, again["replay"], again["value"]) == (200, True, 17)


def test_a_continuation_held_by_another_attempt_says_when_to_retry(client):
    from chalicelib.api import runtime

    document = start(client, "incsquare", {"value": 1})
    ident = document["continuations"][0]["id"]
    runtime.make_service(None).claim(ident)  # an attempt that claimed and then crashed
    response = client.http.post(f"/continuations/{ident}", headers=JSON, body="{}")
    body = json.loads(response.body)
    assert (response.status_code, body["error"]) == (409, "ContinuationBusy")
    lease = int(os.environ.get("LEASE_SECONDS", "30"))
    assert response.headers["Retry-After"] == str(lease) == str(body["retryAfterSeconds"])
    assert get(client, f"/executions/{document['executionId']}")[1]["status"] == "SUSPENDED"


def test_get_continuation_describes_and_changes_nothing(client):
    document = start(client, "incsquare", {"value": 2})
    ident = document["continuations"][0]["id"]
    for _ in range(3):
        status, info = get(client, f"/continuations/{ident}")
        assert status == 200
        assert info["status"] == "waiting" and info["executionStatus"] == "SUSPENDED"
        assert info["state"] == "Suspend" and info["parameters"] == {"value": 9}
        assert info["expiresAt"] == document["continuations"][0]["expiresAt"]
    assert get(client, f"/executions/{document['executionId']}")[1]["status"] == "SUSPENDED"
    post(client, f"/continuations/{ident}", {"ok": True})
    status, info = get(client, f"/continuations/{ident}")
    assert info["status"] == "redeemed" and info["answer"]["result"] == {"ok": True}


def test_execution_history_lists_events_in_order(client):
    document = start(client, "incsquare", {"value": 6})
    post(client, f"/continuations/{document['continuations'][0]['id']}", {})
    status, described = get(client, f"/executions/{document['executionId']}")
    assert status == 200 and described["status"] == "SUCCEEDED"
    types = [e["type"] for e in described["history"]]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    for expected in ("TaskScheduled", "TaskSucceeded", "ExecutionSuspended", "ExecutionResumed",
                     "StateEntered", "TaskStateExited"):
        assert expected in types
    assert types.index("ExecutionSuspended") < types.index("ExecutionResumed")
    ids = [e["id"] for e in described["history"]]
    assert ids == sorted(ids) and all(e["timestamp"].endswith("Z") for e in described["history"])


REQUEST = {"item": "laptop", "requester": "ann", "reason": "the old one broke"}


@pytest.mark.parametrize("decision, outcome", [("approve", "approved"), ("reject", "rejected")])
def test_approval_flow_follows_the_decision(client, decision, outcome):
    document = start(client, "approval", REQUEST)
    [waiting] = document["continuations"]
    assert waiting["parameters"]["Title"] == "Approve laptop for ann?"
    assert waiting["parameters"]["Choices"] == ["approve", "reject"]
    status, done = post(client, f"/continuations/{waiting['id']}", {"decision": decision, "comment": "ok"})
    assert status == 200 and done["status"] == "SUCCEEDED"
    assert done["output"]["outcome"] == outcome
    assert done["output"]["request"] == REQUEST
    assert done["output"]["answer"]["comment"] == "ok"


def test_failure_endpoint_fails_the_task_and_catch_applies(client):
    document = start(client, "approval", REQUEST)
    ident = document["continuations"][0]["id"]
    status, done = post(client, f"/continuations/{ident}/failure", {"error": "States.Timeout", "cause": "nobody"})
    assert status == 200
    assert done["output"] == {"outcome": "rejected", "reason": "no decision in time", "request": REQUEST}


def test_failure_without_catch_fails_the_execution(client):
    document = start(client, "incsquare", {"value": 1})
    ident = document["continuations"][0]["id"]
    status, done = post(client, f"/continuations/{ident}/failure", {"error": "Denied", "cause": "no"})
    assert status == 200
    assert (done["status"], done["error"], done["cause"]) == ("FAILED", "Denied", "no")


def test_parallel_approval_needs_both_answers(client):
    document = start(client, "parallel-approval", REQUEST)
    waiting = {c["parameters"]["Approver"]: c for c in document["continuations"]}
    assert set(waiting) == {"finance", "legal"}
    assert {c["branch"] for c in waiting.values()} == {"AskBoth[0]", "AskBoth[1]"}
    status, middle = post(client, f"/continuations/{waiting['legal']['id']}", {"decision": "approve"})
    assert (middle["status"], middle["waitingAt"]) == ("SUSPENDED", ["AskFinance"])
    status, done = post(client, f"/continuations/{waiting['finance']['id']}", {"decision": "approve"})
    # the approvers are not shown the outcome (PrivateOutput), the API key's caller is
    assert (done["status"], done["outputPrivate"]) == ("SUCCEEDED", True) and "output" not in done
    _, described = get(client, f"/executions/{document['executionId']}")
    assert described["output"]["outcome"] == "approved"
    assert described["output"]["answers"] == [{"decision": "approve"}, {"decision": "approve"}]


def test_delete_aborts_and_continuations_stop_working(client):
    document = start(client, "parallel-approval", REQUEST)
    response = client.http.delete(f"/executions/{document['executionId']}")
    aborted = json.loads(response.body)
    assert response.status_code == 200 and aborted["status"] == "ABORTED" and aborted["continuations"] == []
    for waiting in document["continuations"]:
        status, error = post(client, f"/continuations/{waiting['id']}", {"decision": "approve"})
        assert status == 410 and error["error"] == "ContinuationExpired"
        assert get(client, f"/continuations/{waiting['id']}")[1]["executionStatus"] == "ABORTED"
    again = client.http.delete(f"/executions/{document['executionId']}")
    assert again.status_code == 409


def test_inline_definition_runs_and_returns_output(client):
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"}, "End": True}}}
    status, document = post(client, "/executions", {"definition": definition, "input": {"a": 2, "b": 3}, "name": "adder"})
    assert status == 200
    assert (document["status"], document["output"], document["name"]) == ("SUCCEEDED", {"sum": 5}, "adder")
    assert document["stateMachine"] is None


def test_inline_definition_with_disallowed_resource_is_refused(client):
    definition = {"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:x", "End": True}}}]}}}
    status, error = post(client, "/executions", {"definition": definition})
    assert status == 403 and error["error"] == "ResourceNotAllowed"
    assert error["problems"][0]["state"] == "Call"


# -- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, code", [
    ("{not json", "MalformedJSON"),
    ("[1, 2]", "InvalidRequest"),
    ('{"stateMachine": 5}', "InvalidRequest"),
    ('{"stateMachine": "incsquare", "definition": {}}', "InvalidRequest"),
    ('{}', "InvalidRequest"),
    ('{"stateMachine": "incsquare", "bogus": 1}', "InvalidRequest"),
    ('{"stateMachine": "incsquare", "name": 7}', "InvalidRequest"),
    ('{"definition": 12}', "InvalidRequest"),
])
def test_bad_start_requests_get_400_with_a_code(client, raw, code):
    status, error = post(client, "/executions", raw=raw)
    assert status == 400
    assert error["error"] == code and error["message"]


def test_unknown_state_machine_is_404(client):
    status, error = post(client, "/executions", {"stateMachine": "../etc/passwd"})
    assert status == 404 and error["error"] == "StateMachineNotFound"
    assert "incsquare" in error["available"]


def test_invalid_definition_lists_problems(client):
    status, error = post(client, "/executions", {"definition": {"StartAt": "Nope", "States": {"A": {"Type": "Pass", "End": True}}}})
    assert status == 400 and error["error"] == "InvalidDefinition"
    assert error["problems"] and all("message" in p for p in error["problems"])


def test_oversized_body_is_413(client):
    status, error = post(client, "/executions", {"stateMachine": "incsquare", "input": {"blob": "x" * (300 * 1024)}})
    assert status == 413 and error["error"] == "PayloadTooLarge"


@pytest.mark.parametrize("ident", ["nope", "A" * 26, "bad$chars~here", "x" * 500])
def test_unknown_continuations_are_404(client, ident):
    status, error = post(client, f"/continuations/{ident}", {})
    assert status == 404 and error["error"] == "ContinuationNotFound"
    assert get(client, f"/continuations/{ident}")[0] == 404


def test_redeem_with_non_object_or_malformed_body(client):
    ident = start(client, "incsquare", {"value": 1})["continuations"][0]["id"]
    assert post(client, f"/continuations/{ident}", raw="[1]")[1]["error"] == "InvalidRequest"
    assert post(client, f"/continuations/{ident}", raw="{oops")[1]["error"] == "MalformedJSON"
    assert post(client, f"/continuations/{ident}/failure", {"cause": "x"})[1]["error"] == "InvalidRequest"
    assert post(client, f"/continuations/{ident}", {})[0] == 200  # the bad requests consumed nothing


def test_unknown_execution_is_404(client):
    status, error = get(client, "/executions/doesnotexist123")
    assert status == 404 and error["error"] == "ExecutionNotFound"


# -- state machines ---------------------------------------------------------------------------

def test_state_machine_catalog(client):
    status, listed = get(client, "/state-machines")
    names = {m["name"] for m in listed["stateMachines"]}
    assert {"incsquare", "approval", "parallel-approval"} <= names
    status, one = get(client, "/state-machines/incsquare")
    assert status == 200 and one["definition"]["StartAt"] == "Increment"
    assert get(client, "/state-machines/missing")[0] == 404


def test_validate_endpoint(client):
    good = catalog.load("approval")
    assert post(client, "/state-machines/validate", {"definition": good}) == (200, {"valid": True, "problems": []})
    status, bad = post(client, "/state-machines/validate", {"definition": {"StartAt": "X", "States": {}}})
    assert status == 200 and bad["valid"] is False and bad["problems"]


def test_every_shipped_state_machine_validates():
    assert catalog.names()
    for name in catalog.names():
        assert validate(catalog.load(name)) == [], name


# -- the prototype's calls --------------------------------------------------------------------

def test_prototype_calls_work_verbatim(client):
    with open(os.path.join(catalog.folder(), "incsquare.json"), "rb") as handle:
        definition = handle.read()
    response = client.http.post("/?input=6", headers=JSON, body=definition)
    first = json.loads(response.body)
    assert response.status_code == 200
    assert first["value"] == 49 and first["status"] == "SUSPENDED"
    key = first["CONTINUATION"]
    assert key == first["continuations"][0]["id"]
    response = client.http.post(f"/?continuation={key}")
    done = json.loads(response.body)
    assert response.status_code == 200 and done["value"] == 50 and done["status"] == "SUCCEEDED"


# -- long and runaway executions --------------------------------------------------------------

COUNTER = {"StartAt": "Check", "States": {
    "Check": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": 300, "Next": "Done"}],
              "Default": "Add"},
    "Add": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "Check"},
    "Done": {"Type": "Succeed"}}}


def wait_for(client, execution_id, predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        document = get(client, f"/executions/{execution_id}")[1]
        if predicate(document):
            return document
        time.sleep(0.05)
    raise AssertionError(f"execution {execution_id} did not get there: {document['status']}")


def test_budget_checkpoints_and_finishes_in_the_background(client, monkeypatch):
    monkeypatch.setenv("REQUEST_MAX_TRANSITIONS", "50")
    status, document = post(client, "/executions", {"definition": COUNTER, "input": {"n": 0}})
    assert status == 202 and document["status"] == "RUNNING"
    done = wait_for(client, document["executionId"], lambda d: d["status"] != "RUNNING")
    assert done["status"] == "SUCCEEDED" and done["output"] == {"n": 300}


def test_runaway_execution_is_visible_and_can_be_stopped(client, monkeypatch):
    monkeypatch.setenv("REQUEST_MAX_TRANSITIONS", "200")
    loop = {"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "Again"},
        "Again": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "IsPresent": True, "Next": "Done"}],
                  "Default": "A"},
        "Done": {"Type": "Succeed"}}}
    status, document = post(client, "/executions", {"definition": loop})
    assert status == 202
    running = get(client, f"/executions/{document['executionId']}")[1]
    assert running["status"] == "RUNNING"
    assert client.http.delete(f"/executions/{document['executionId']}").status_code == 200
    stopped = wait_for(client, document["executionId"], lambda d: d["status"] == "ABORTED")
    assert stopped["status"] == "ABORTED"


def test_store_unavailable_is_503(client, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT", "0.5")
    started = time.monotonic()
    status, error = post(client, "/executions", {"stateMachine": "incsquare", "input": {"value": 1}})
    assert status == 503 and error["error"] == "StoreUnavailable"
    assert time.monotonic() - started < 5


def test_an_integer_too_long_to_write_fails_the_execution_not_the_service(client):
    """3,000 digits go in; squared they are past what JSON text can carry here (Python's 4,300 digits)."""
    status, document = post(client, "/executions", raw='{"stateMachine": "incsquare", "input": {"value": '
                            + "9" * 3000 + "}}")
    assert status == 200 and (document["status"], document["error"]) == ("FAILED", "States.Runtime")
    assert "too long for JSON" in document["cause"]


# -- listing ----------------------------------------------------------------------------------

def test_listing_executions_over_http_with_filters_and_pages(client):
    squares = [start(client, "incsquare", {"value": i}) for i in range(3)]
    status, done = post(client, f"/continuations/{squares[0]['continuations'][0]['id']}", {})
    assert done["status"] == "SUCCEEDED"
    status, page = get(client, "/executions?stateMachine=incsquare&status=SUSPENDED&limit=1")
    assert status == 200 and len(page["executions"]) == 1 and page["nextToken"]
    assert set(page["executions"][0]) == {"executionId", "name", "stateMachine", "status", "startDate", "stopDate"}
    status, rest = get(client, f"/executions?stateMachine=incsquare&status=SUSPENDED&nextToken={page['nextToken']}")
    listed = {e["executionId"] for e in page["executions"] + rest["executions"]}
    assert listed == {squares[1]["executionId"], squares[2]["executionId"]} and rest["nextToken"] is None
    status, everything = get(client, "/executions?stateMachine=&status=")  # empty fields: no filter
    assert (status, len(everything["executions"])) == (200, 3)
    assert get(client, "/executions?status=SUCCEEDED")[1]["executions"][0]["executionId"] == squares[0]["executionId"]


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=", "limit=ten", "limit=%EF%BC%95", "status=done",
                                   "stateMachine=a%20b", "nextToken=xyz", "state=SUSPENDED", "limit=99999999999"])
def test_listing_refuses_bad_parameters_with_400(client, query):
    status, error = get(client, "/executions?" + query)
    assert (status, error["error"]) == (400, "InvalidRequest"), error
    assert error["message"]


def test_an_execution_read_by_its_name_has_its_history(client):
    status, document = post(client, "/executions", {"stateMachine": "incsquare", "input": {"value": 1},
                                                    "name": "named-history"})
    assert status == 200
    _, by_id = get(client, "/executions/" + document["executionId"])
    _, by_name = get(client, "/executions/named-history")
    assert by_id["history"] and by_name["history"] == by_id["history"]


FAN_OUT = {"StartAt": "Fan", "States": {"Fan": {"Type": "Map", "MaxConcurrency": 250, "End": True, "ItemProcessor": {
    "StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "module:suspend",
                                         "Parameters": {"n.$": "$"}, "End": True}}}}}}


def test_thousands_of_open_points_are_listed_a_page_at_a_time(client):
    status, document = post(client, "/executions", {"definition": FAN_OUT, "input": list(range(250))})
    assert status == 200 and document["status"] == "SUSPENDED"
    # the start lists the first 100 in branch order, says how many are open and where the rest are
    assert document["continuationsCount"] == 250
    assert [c["parameters"]["n"] for c in document["continuations"]] == list(range(100))
    execution = document["executionId"]
    pages, path = [], f"/executions/{execution}?limit=60"
    while path:
        status, page = get(client, path)
        assert status == 200 and page["continuationsCount"] == 250 and len(page["continuations"]) <= 60
        pages.append(page)
        following = page.get("continuationsNext")
        path = following[following.index("/executions/"):] if following else None
    assert [len(p["continuations"]) for p in pages] == [60, 60, 60, 60, 10]
    listed = [c for p in pages for c in p["continuations"]]
    assert [c["parameters"]["n"] for c in listed] == list(range(250))
    assert len({c["id"] for c in listed}) == 250
    assert listed[:100] == document["continuations"]
    # the token works as a parameter too, and the last page has none
    token = pages[3]["continuationsNextToken"]
    status, last = get(client, f"/executions/{execution}?limit=60&nextToken={token}")
    assert last["continuations"] == pages[4]["continuations"] and "continuationsNextToken" not in last
    # once one is answered, the first page is of what is still open
    status, _ = post(client, f"/continuations/{listed[0]['id']}", {"ok": True})
    status, answered = get(client, f"/executions/{execution}")
    assert answered["continuationsCount"] == 249 and len(answered["continuations"]) == 100
    assert answered["continuations"][0]["id"] == listed[1]["id"]


@pytest.mark.parametrize("size", [1, 4])
def test_the_history_is_read_a_page_at_a_time(client, size):
    document = start(client, "incsquare", {"value": 6})
    post(client, f"/continuations/{document['continuations'][0]['id']}", {"by": "kim"})
    execution = document["executionId"]
    status, whole = get(client, f"/executions/{execution}")
    assert status == 200 and "historyNextToken" not in whole and len(whole["history"]) > 6
    events, path = [], f"/executions/{execution}?historyLimit={size}"
    while path:
        status, page = get(client, path)
        assert status == 200 and 1 <= len(page["history"]) <= size
        events += page["history"]
        path = (f"/executions/{execution}?historyLimit={size}&historyToken={page['historyNextToken']}"
                if "historyNextToken" in page else None)
    assert events == whole["history"]


def test_events_the_service_adds_are_paged_too(client):
    """An abort's event has no id of its own: it still comes once, after the events before it."""
    document = start(client, "incsquare", {"value": 6})
    execution = document["executionId"]
    assert client.http.delete(f"/executions/{execution}").status_code == 200
    status, whole = get(client, f"/executions/{execution}")
    assert whole["history"][-1]["type"] == "ExecutionAborted"
    events, path = [], f"/executions/{execution}?historyLimit=1"
    while path:
        status, page = get(client, path)
        events += page["history"]
        path = (f"/executions/{execution}?historyLimit=1&historyToken={page['historyNextToken']}"
                if "historyNextToken" in page else None)
    assert events == whole["history"]


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "historyLimit=0", "nextToken=garbage",
                                   "historyToken=%%%", "page=2"])
def test_bad_page_parameters_are_400(client, query):
    document = start(client, "incsquare", {"value": 6})
    status, error = get(client, f"/executions/{document['executionId']}?{query}")
    assert status == 400 and error["error"] == "InvalidRequest", error


def test_a_page_token_of_another_execution_is_refused(client):
    status, document = post(client, "/executions", {"definition": FAN_OUT, "input": list(range(3))})
    other = start(client, "incsquare", {"value": 6})
    status, page = get(client, f"/executions/{document['executionId']}?limit=1")
    status, error = get(client, f"/executions/{other['executionId']}?nextToken={page['continuationsNextToken']}")
    assert status == 400 and "another execution" in error["message"]
