"""Both example flows end to end from events, over HTTP to `chalice local` (started as `make run` starts it):
driven by `python -m chalicelib events simulate`, by POST /events, and by many processes at once."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.events import car_events, check_outcomes, send_concurrently

from ..conftest import REDIS_URL, ROOT
from ..local_server import call, chalice_local


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with chalice_local(tmp_path_factory.mktemp("events") / "chalice-local.log") as base:
        yield base


def simulate(server: str, name: str) -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "chalicelib", "events", "simulate",
                           f"state_machines/simulations/{name}.json", "--url", server, "--speed", "0"],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "REDIS_URL": REDIS_URL})
    assert done.returncode == 0, done.stderr
    return [json.loads(line)["entries"][0] for line in done.stdout.splitlines()]


def publish(server: str, *events) -> list[dict]:
    status, body = call("POST", server + "/events", json.dumps(list(events)).encode())
    assert status == 200, body
    return body["entries"]


def execution(server: str, answers: list[dict]) -> dict:
    [started] = answers[0]["started"]
    status, document = call("GET", f"{server}/executions/{started['executionId']}")
    assert status == 200
    return document


def received(document: dict) -> list[str]:
    """The detail-type of each event that answered a task, in order (named on the task's resumption)."""
    return [e["event"]["detailType"] for e in document["history"] if e["type"] == "ExecutionResumed" and "event" in e]


def order(kind: str, order_id: str, **detail) -> dict:
    return {"source": "marketplace.orders", "detail-type": f"Order {kind}", "detail": {"id": order_id, **detail}}


def test_the_order_simulation_delivers_an_early_acceptance_after_the_confirmation(server, redis_client):
    answers = simulate(server, "marketplace-order")
    assert answers[1]["buffered"] is True  # Accepted came before Confirmed was consumed
    assert [r["state"] for r in answers[2]["resumed"]] == ["WaitForConfirmation"]
    document = execution(server, answers)
    assert document["status"] == "SUCCEEDED"
    assert received(document) == ["Order Confirmed", "Order Accepted", "Order Delivered"]
    assert document["output"]["decision"] == {"id": "order-sim-1", "seller": "s-7", "eventName": "Order Accepted"}


def test_the_car_simulation_keeps_the_cleaning_until_the_inspection_is_done(server, redis_client):
    answers = simulate(server, "car-dealer")
    document = execution(server, answers)
    assert document["status"] == "SUCCEEDED"
    assert received(document) == ["Inspection Completed", "Car Cleaned"]
    again = simulate(server, "car-dealer")  # the same events again: duplicates, nothing delivered twice
    assert again[0]["started"][0]["alreadyExisted"] is True
    assert all(answer["duplicate"] for answer in again[1:])
    assert received(execution(server, again)) == ["Inspection Completed", "Car Cleaned"]


def test_a_rejected_order_and_an_unexpected_event(server, redis_client):
    rejected = publish(server, order("Placed", "r-1"), order("Confirmed", "r-1"), order("Rejected", "r-1"))
    document = execution(server, rejected)
    assert document["status"] == "SUCCEEDED" and received(document) == ["Order Confirmed", "Order Rejected"]
    unexpected = publish(server, order("Placed", "u-1"), order("Confirmed", "u-1"), order("Canceled", "u-1"))
    document = execution(server, unexpected)
    assert (document["status"], document["error"]) == ("FAILED", "UnexpectedEvent")


def car(kind: str, car_id: str, **detail) -> dict:
    source = "dealer.cars" if kind == "Car Announced" else "dealer.workshop"
    return {"source": source, "detail-type": kind, "detail": {"id": car_id, **detail}}


def test_a_failed_inspection_and_an_unexpected_workshop_event_end_in_their_fail_states(server, redis_client):
    answers = publish(server, car("Car Announced", "f-1", model="Polo"), car("Inspection Completed", "f-1", passed=False))
    assert (execution(server, answers)["error"]) == "InspectionFailed"
    answers = publish(server, car("Car Announced", "d-1", model="Polo"), car("Car Cleaned", "d-1"),
                      car("Car Damaged", "d-1"))
    assert answers[1]["buffered"] is True  # the cleaning is not the inspection's: kept for its own task
    document = execution(server, answers)
    assert (document["status"], document["error"]) == ("FAILED", "UnexpectedEvent")
    assert received(document) == ["Car Damaged"]


def test_the_document_lists_what_each_open_wait_waits_for_and_the_history_which_event_answered(server, redis_client):
    answers = publish(server, {**order("Placed", "w-1"), "id": "w-placed"}, {**order("Confirmed", "w-1"), "id": "w-conf"})
    document = execution(server, answers)
    [wait] = document["continuations"]
    assert (wait["state"], wait["kind"]) == ("WaitForDecision", "event")
    assert wait["detail"]["waitsFor"] == {"correlationKey": "w-1", "detailTypes": None, "pattern": None,
                                          "answer": "detail"}  # any event of the order: the Choice decides
    [resumed] = [e for e in document["history"] if e["type"] == "ExecutionResumed"]
    assert (resumed["state"], resumed["event"]) == ("WaitForConfirmation", {
        "eventId": "w-conf", "source": "marketplace.orders", "detailType": "Order Confirmed"})


def test_boto3_publishes_with_put_events_and_reads_the_history_with_get_execution_history(server, redis_client):
    """boto3's events client with endpoint_url drives a car through; boto3's stepfunctions client reads, in
    its history, which event answered each task (the TaskSucceeded's output)."""
    import boto3

    from .aws_clients import NO_RETRIES, over_http

    events = boto3.client("events", endpoint_url=server, region_name="us-east-1", aws_access_key_id="AKID",
                          aws_secret_access_key="secret", config=NO_RETRIES)

    def entry(event: dict) -> dict:
        return {"Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"])}

    put = events.put_events(Entries=[entry(car("Car Announced", "b-1", model="Golf")),
                                     entry(car("Car Cleaned", "b-1"))])
    assert put["FailedEntryCount"] == 0
    announced, cleaned = (e["EventId"] for e in put["Entries"])
    put = events.put_events(Entries=[entry(car("Inspection Completed", "b-1", passed=True))])
    [inspected] = (e["EventId"] for e in put["Entries"])
    from chalicelib.service.events import execution_name

    arn = f"arn:aws:states:us-east-1:000000000000:execution:car-dealer:{execution_name('car-dealer', announced)}"
    sfn = over_http(server)
    assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
    history = sfn.get_execution_history(executionArn=arn)["events"]
    answered = [json.loads(e["taskSucceededEventDetails"]["output"]) for e in history
                if e["type"] == "TaskSucceeded" and "output" in e["taskSucceededEventDetails"]]
    assert answered == [{"eventId": inspected, "source": "dealer.workshop", "detailType": "Inspection Completed"},
                        {"eventId": cleaned, "source": "dealer.workshop", "detailType": "Car Cleaned"}]


def test_many_cars_with_their_events_sent_at_once_from_several_processes(server, redis_client):
    """The short form of bench/events.py: 30 cars × 3 events, shuffled, from 4 processes in batches of 2."""
    entries = send_concurrently([server], car_events(30, "c"), processes=4, batch=2)
    assert len(entries) == 90 and not [e for e in entries if "error" in e]
    assert check_outcomes(server, 30, "c") == {"SUCCEEDED": 30, "other": 0, "wrong history": 0}


def test_simulate_waits_each_step_s_delay_times_speed_and_refuses_a_bad_file(server, redis_client, monkeypatch,
                                                                             capsys, tmp_path):
    import time

    from chalicelib.__main__ import main

    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # the delays as asked, without waiting for them
    file = os.path.join(ROOT, "state_machines/simulations/marketplace-order.json")
    assert main(["events", "simulate", file, "--url", server, "--speed", "0.5"]) == 0
    assert slept == [0.0, 0.5, 0.5, 1.0]  # the file's delaySeconds: 0, 1, 1, 2
    answers = [json.loads(line)["entries"][0] for line in capsys.readouterr().out.splitlines()]
    assert [a["eventId"] for a in answers] == ["sim-order-placed", "sim-order-accepted", "sim-order-confirmed",
                                               "sim-order-delivered"]
    bad = tmp_path / "bad.json"
    for text, message in (('{"event": {}}', "a simulation is a list"),
                          ('[{"event": {}, "delaySeconds": -1}]', "step 0: give 'event' and a 'delaySeconds'"),
                          ('[5]', "step 0 is not an event")):
        bad.write_text(text)
        assert main(["events", "simulate", str(bad), "--url", server]) == 2
        assert message in capsys.readouterr().err
    bad.write_text(json.dumps([{"source": "s", "detail-type": "t", "detail": []}]))
    assert main(["events", "simulate", str(bad), "--url", server]) == 1  # refused by the service: 400
    assert json.loads(capsys.readouterr().out)["error"] == "InvalidRequest"
