"""POST /events through the app: its three body shapes, its refusals and its authorization rule."""
from __future__ import annotations

import json

import pytest

from .test_api import get


def publish(client, body, **headers):
    response = client.http.post("/events", headers={"Content-Type": "application/json", **headers},
                                body=body if isinstance(body, str) else json.dumps(body))
    return response.status_code, json.loads(response.body)


ANNOUNCED = {"source": "dealer.cars", "detail-type": "Car Announced", "detail": {"id": "c-1", "model": "Golf"}}


def workshop(kind: str, **detail) -> dict:
    return {"Source": "dealer.workshop", "DetailType": kind, "Detail": json.dumps({"id": "c-1", **detail})}


def test_one_event_a_list_and_put_events_entries(client):
    status, body = publish(client, {**ANNOUNCED, "id": "a-1"})
    assert status == 200 and body["failedEntryCount"] == 0
    [started] = body["entries"][0]["started"]
    assert (started["stateMachine"], started["status"]) == ("car-dealer", "SUSPENDED")
    status, body = publish(client, {"Entries": [workshop("Car Cleaned"), workshop("Inspection Completed", passed=True)]})
    cleaned, inspected = body["entries"]
    assert cleaned["buffered"] is True and cleaned["resumed"] == []
    assert [r["state"] for r in inspected["resumed"]] == ["WaitForInspection"]
    document = get(client, "/executions/" + started["executionId"])[1]
    assert document["status"] == "SUCCEEDED"
    assert document["input"]["id"] == "a-1" and document["input"]["detail"] == ANNOUNCED["detail"]
    status, body = publish(client, [{**ANNOUNCED, "id": "a-1"}, {**ANNOUNCED, "id": "a-2", "detail": {"id": "c-2"}}])
    again, failed = body["entries"]
    assert again["started"][0] == {**started, "status": "SUCCEEDED", "alreadyExisted": True}
    assert failed["started"][0]["status"] == "FAILED"  # no model: the definition's own failure


def test_a_waiting_task_is_internal_to_events(client):
    execution = publish(client, ANNOUNCED)[1]["entries"][0]["started"][0]["executionId"]
    [wait] = get(client, "/executions/" + execution)[1]["continuations"]
    assert wait["kind"] == "event" and wait["detail"]["waitsFor"]["correlationKey"] == "c-1"
    response = client.http.post(f"/continuations/{wait['id']}", headers={"Content-Type": "application/json"},
                                body=json.dumps({"passed": True}))
    assert (response.status_code, json.loads(response.body)["error"]) == (403, "ContinuationInternal")


@pytest.mark.parametrize("body", [
    "[]", "5", '{"Entries": []}', '{"Entries": [{"Source": "s", "DetailType": "t"}]}',
    '{"Entries": [{"Source": "s", "DetailType": "t", "Detail": "[1]"}]}',
    '{"Entries": [{"Source": "s", "DetailType": "t", "Detail": "NaN"}]}',
    '{"Entries": [], "Other": 1}', '{"source": "s"}', '{"source": "s", "detail-type": ""}',
    '{"source": "s", "detail-type": "t", "detail": []}', '{"source": "s", "detail-type": "t", "id": 5}',
    '{"source": "s", "detail-type": "t", "extra": 1}', '{"source": "s", "detail-type": "t", "resources": [1]}',
    json.dumps([ANNOUNCED] * 101),
])
def test_bad_bodies_are_refused_and_nothing_is_delivered(client, redis_client, body):
    status, answer = publish(client, body)
    assert status == 400 and answer["error"] == "InvalidRequest"
    assert redis_client.dbsize() == 0


def test_malformed_json_is_refused(client):
    assert publish(client, "{")[1]["error"] == "MalformedJSON"


def test_events_need_the_api_key_where_one_is_set(client, redis_client, monkeypatch):
    monkeypatch.setenv("API_KEY", "k3y")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://events.example.com")  # a keyed stage needs a source of links
    status, body = publish(client, ANNOUNCED)
    assert (status, body["error"]) == (403, "Forbidden")
    assert redis_client.dbsize() == 0
    status, body = publish(client, ANNOUNCED, **{"x-api-key": "k3y"})
    assert status == 200 and body["entries"][0]["started"]


# -- EventBridge's PutEvents over the JSON protocol (boto3's events client) ---------------------------

def test_boto3_events_client_puts_events(client, redis_client):
    from .aws_clients import assert_answers_fit, through_test_client

    answers: list = []
    events = through_test_client(client, service="events", answers=answers)
    announced = {"Source": "dealer.cars", "DetailType": "Car Announced",
                 "Detail": json.dumps({"id": "b-1", "model": "Golf"})}
    put = events.put_events(Entries=[announced, {"Source": "dealer.workshop", "DetailType": "Car Cleaned",
                                                 "Detail": "not json"}])
    assert put["FailedEntryCount"] == 1
    first, second = put["Entries"]
    assert set(first) == {"EventId"} and second["ErrorCode"] == "MalformedDetail"
    put = events.put_events(Entries=[workshop("Inspection Completed", passed=True) | {"Detail": json.dumps(
        {"id": "b-1", "passed": True})}, workshop("Car Cleaned") | {"Detail": json.dumps({"id": "b-1"})}])
    assert put["FailedEntryCount"] == 0
    listed = get(client, "/executions?stateMachine=car-dealer")[1]["executions"]
    assert [e["status"] for e in listed] == ["SUCCEEDED"]
    assert [a.status for a in answers] == [200, 200]
    assert_answers_fit(answers)


def test_put_events_is_checked_against_botocore_and_refused_in_aws_shape(client):
    response = client.http.post("/", headers={"X-Amz-Target": "AWSEvents.PutEvents",
                                              "Content-Type": "application/x-amz-json-1.1"},
                                body=json.dumps({"Entries": "nope"}))
    assert response.status_code == 400 and json.loads(response.body)["__type"] == "ValidationException"
    response = client.http.post("/", headers={"X-Amz-Target": "AWSEvents.ListRules",
                                              "Content-Type": "application/x-amz-json-1.1"}, body=b"{}")
    assert json.loads(response.body)["__type"] == "UnknownOperationException"


def test_put_events_signed_for_events_where_access_keys_are_set(client, redis_client, monkeypatch):
    from .aws_clients import through_test_client

    monkeypatch.setenv("AWS_ACCESS_KEYS", "AKIDEXAMPLE:secret")
    entry = {"Source": "dealer.cars", "DetailType": "Car Announced", "Detail": json.dumps({"id": "s-1", "model": "x"})}
    assert through_test_client(client, service="events").put_events(Entries=[entry])["FailedEntryCount"] == 0
    import botocore.exceptions

    with pytest.raises(botocore.exceptions.ClientError) as refused:
        through_test_client(client, service="events", secret="wrong").put_events(Entries=[entry])
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_a_rules_file_that_cannot_be_used_is_named_and_nothing_is_delivered(client, redis_client, monkeypatch,
                                                                           tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "car-dealer.json").write_text(open("state_machines/car-dealer.json").read())
    (tmp_path / "rules" / "car-dealer.json").write_text('{"start": [{"source": "dealer.cars"}]}')
    monkeypatch.setenv("STATE_MACHINES_DIR", str(tmp_path))
    status, body = publish(client, ANNOUNCED)
    [failed] = body["entries"]  # each event's own failure, as PutEvents answers one
    assert (status, body["failedEntryCount"], failed["error"]) == (200, 1, "InvalidStartRules")
    assert "state_machines/rules/car-dealer.json" in failed["message"] and "start[0].source" in failed["message"]
    assert redis_client.dbsize() == 0
    (tmp_path / "rules" / "car-dealer.json").write_text('{"start": [{"source": ["dealer.cars"]}]}')
    status, body = publish(client, ANNOUNCED)
    assert status == 200 and body["entries"][0]["started"][0]["stateMachine"] == "car-dealer"
