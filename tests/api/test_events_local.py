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
    return [e["detailType"] for e in document["history"] if e["type"] == "EventReceived"]


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


def test_a_failed_inspection_ends_in_its_fail_state(server, redis_client):
    answers = publish(server, {"source": "dealer.cars", "detail-type": "Car Announced",
                               "detail": {"id": "f-1", "model": "Polo"}},
                      {"source": "dealer.workshop", "detail-type": "Inspection Completed",
                       "detail": {"id": "f-1", "passed": False}})
    assert (execution(server, answers)["error"]) == "InspectionFailed"


def test_many_cars_with_their_events_sent_at_once_from_several_processes(server, redis_client):
    """The short form of bench/events.py: 30 cars × 3 events, shuffled, from 4 processes in batches of 2."""
    entries = send_concurrently([server], car_events(30, "c"), processes=4, batch=2)
    assert len(entries) == 90 and not [e for e in entries if "error" in e]
    assert check_outcomes(server, 30, "c") == {"SUCCEEDED": 30, "other": 0, "wrong history": 0}
