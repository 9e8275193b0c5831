"""Executions driven by events through the service on real Redis: started by a rule, resumed by
correlation key, early events buffered and delivered in arrival order, duplicates delivered once."""
from __future__ import annotations

import dataclasses
import json

import pytest
from redis.crc import key_slot

from chalicelib.asl import VirtualClock
from chalicelib.config import settings
from chalicelib.service import Service
from chalicelib.store import Store
from chalicelib.store.events import EventStore

NOW = 1_800_000_000.0


@pytest.fixture
def clock():
    return VirtualClock(NOW)


@pytest.fixture
def service(redis_client, clock):
    return Service(dataclasses.replace(settings(), event_buffer_seconds=3600), Store(redis_client), clock=clock)


def order(kind: str, order_id: str = "o-1", event_id: str | None = None, **detail) -> dict:
    event = {"source": "marketplace.orders", "detail-type": f"Order {kind}", "detail": {"id": order_id, **detail}}
    return {**event, "id": event_id} if event_id else event


def car(kind: str, car_id: str = "car-1", **detail) -> dict:
    source = "dealer.cars" if kind == "Car Announced" else "dealer.workshop"
    if kind == "Car Announced":
        detail = {"model": "Golf", **detail}
    return {"source": source, "detail-type": kind, "detail": {"id": car_id, **detail}}


def publish(service, *events) -> list[dict]:
    return service.publish(list(events))


def started(service, event) -> str:
    [result] = publish(service, event)
    [execution] = result["started"]
    return execution["executionId"]


def received(document: dict) -> list[tuple[str, str]]:
    """(task, detail-type) of each event that answered a task, in order: named on the task's resumption."""
    return [(e["state"], e["event"]["detailType"]) for e in document["history"]
            if e["type"] == "ExecutionResumed" and "event" in e]


def test_an_order_is_started_by_its_first_event_and_moved_on_by_the_later_ones(service):
    execution = started(service, order("Placed", total=30))
    document = service.describe(execution)
    assert document["stateMachine"] == "marketplace-order" and document["status"] == "SUSPENDED"
    [wait] = document["continuations"]
    assert (wait["state"], wait["kind"]) == ("WaitForConfirmation", "event")
    assert wait["detail"]["waitsFor"] == {"correlationKey": "o-1", "detailTypes": ["Order Confirmed"],
                                          "pattern": {"detail-type": ["Order Confirmed"]}, "answer": "detail"}
    [confirmed] = publish(service, order("Confirmed", event_id="c-1"))
    assert [(r["executionId"], r["state"]) for r in confirmed["resumed"]] == [(execution, "WaitForConfirmation")]
    publish(service, order("Accepted", seller="s-9"))
    publish(service, order("Delivered"))
    document = service.describe(execution)
    assert document["status"] == "SUCCEEDED"
    assert document["output"]["decision"] == {"id": "o-1", "seller": "s-9", "eventName": "Order Accepted"}
    assert received(document) == [("WaitForConfirmation", "Order Confirmed"), ("WaitForDecision", "Order Accepted"),
                                  ("WaitForDelivery", "Order Delivered")]
    assert document["history"][-2]["state"] == "Delivered"
    [resumed] = [e for e in document["history"] if e["type"] == "ExecutionResumed" and e["state"] == "WaitForConfirmation"]
    assert resumed["event"] == {"eventId": "c-1", "source": "marketplace.orders", "detailType": "Order Confirmed"}
    assert [e["id"] for e in document["history"]] == list(range(1, len(document["history"]) + 1))


def test_a_rejected_order_ends_at_rejected(service):
    execution = started(service, order("Placed"))
    publish(service, order("Confirmed"), order("Rejected", reason="sold out"))
    document = service.describe(execution)
    assert document["status"] == "SUCCEEDED"
    assert document["output"]["decision"]["reason"] == "sold out"
    assert "Rejected" in [e.get("state") for e in document["history"] if e["type"] == "StateEntered"]


def test_an_unexpected_event_leads_to_the_fail_state(service):
    execution = started(service, order("Placed"))
    publish(service, order("Confirmed"), order("Delivered"))  # delivered before it was accepted
    document = service.describe(execution)
    assert (document["status"], document["error"]) == ("FAILED", "UnexpectedEvent")


def test_an_early_event_is_buffered_and_delivered_in_order(service):
    execution = started(service, order("Placed"))
    [early] = publish(service, order("Accepted"))  # before the order was confirmed
    assert early == {**early, "buffered": True, "resumed": [], "started": []}
    assert service.describe(execution)["continuations"][0]["state"] == "WaitForConfirmation"
    publish(service, order("Confirmed"))
    document = service.describe(execution)
    assert received(document) == [("WaitForConfirmation", "Order Confirmed"), ("WaitForDecision", "Order Accepted")]
    assert document["continuations"][0]["state"] == "WaitForDelivery"


def test_events_before_the_start_wait_in_arrival_order(service):
    """Cleaned and Inspection come before the car is announced: both are kept, and each goes to the
    task that takes it; two early decisions go in the order they came."""
    publish(service, car("Car Cleaned"), car("Inspection Completed", passed=True))
    execution = started(service, car("Car Announced", model="Golf"))
    document = service.describe(execution)
    assert document["status"] == "SUCCEEDED"
    assert received(document) == [("WaitForInspection", "Inspection Completed"), ("WaitForCleaning", "Car Cleaned")]

    publish(service, order("Confirmed", "o-2"), order("Rejected", "o-2"), order("Accepted", "o-2"))
    second = started(service, order("Placed", "o-2"))
    assert service.describe(second)["output"]["decision"]["eventName"] == "Order Rejected"  # the first to come


def test_the_event_that_starts_an_execution_answers_none_of_its_waits(service):
    """Confirmed and Accepted come before the order is placed: its start takes both, and the Placed event
    (the execution's input) is not given to the WaitForDelivery that then waits, which takes any event."""
    publish(service, order("Confirmed", "o-3"), order("Accepted", "o-3"))
    [placed] = publish(service, order("Placed", "o-3"))
    assert placed["resumed"] == [] and placed["buffered"] is False
    document = service.describe(placed["started"][0]["executionId"])
    assert document["status"] == "SUSPENDED" and document["continuations"][0]["state"] == "WaitForDelivery"
    assert received(document) == [("WaitForConfirmation", "Order Confirmed"), ("WaitForDecision", "Order Accepted")]


def test_a_duplicate_event_is_delivered_once(service):
    [first] = publish(service, order("Placed", event_id="e-1"))
    [again] = publish(service, order("Placed", event_id="e-1"))
    assert again["started"] == [{**first["started"][0], "alreadyExisted": True}]
    execution = first["started"][0]["executionId"]
    publish(service, order("Confirmed", event_id="e-2"))
    [duplicate] = publish(service, order("Confirmed", event_id="e-2"))  # would answer WaitForDecision
    assert duplicate["duplicate"] is True
    document = service.describe(execution)
    assert received(document) == [("WaitForConfirmation", "Order Confirmed")]
    assert document["continuations"][0]["state"] == "WaitForDecision"
    [buffered] = publish(service, order("Shipped", "o-9", event_id="e-3"))
    assert buffered["buffered"] is True
    assert publish(service, order("Shipped", "o-9", event_id="e-3"))[0]["duplicate"] is True
    assert len(EventStore(service.store.redis).read("o-9")[2]) == 1  # kept once


def test_one_event_answers_every_execution_waiting_on_its_key(service):
    executions = {started(service, order("Placed", "shared", event_id=f"placed-{n}")) for n in range(3)}
    [confirmed] = publish(service, order("Confirmed", "shared"))
    assert {r["executionId"] for r in confirmed["resumed"]} == executions
    for execution in executions:
        assert service.describe(execution)["continuations"][0]["state"] == "WaitForDecision"


def test_a_buffered_event_expires(service, clock):
    publish(service, car("Inspection Completed", passed=True))
    clock.advance(3601)
    execution = started(service, car("Car Announced"))
    document = service.describe(execution)
    assert document["status"] == "SUSPENDED" and document["continuations"][0]["state"] == "WaitForInspection"
    assert EventStore(service.store.redis).read("car-1")[2] == []  # dropped when the wait opened


def test_a_wait_whose_opening_was_cut_off_is_opened_by_the_timer_sweep(service, clock, monkeypatch):
    """Registering the wait is the task's call, kept in the outbox with the commit: a process that dies
    before making it leaves it there, and the sweep makes it once the lease has ended."""
    publish(service, car("Inspection Completed", passed=False))

    def dies(*args, **kwargs):
        raise KeyboardInterrupt  # as if the process died: no failure is recorded

    monkeypatch.setattr(EventStore, "open", dies)
    with pytest.raises(KeyboardInterrupt):
        publish(service, car("Car Announced"))
    monkeypatch.undo()
    [execution] = [key.decode().rsplit(":", 1)[1] for key in service.store.redis.scan_iter("asl:*:x:*")]
    assert service.runs.load(execution).status == "SUSPENDED"
    clock.advance(service.settings.lease_seconds + 1)
    assert service.tick()["calls"] == 1
    document = service.describe(execution)
    assert (document["status"], document["error"]) == ("FAILED", "InspectionFailed")


def test_a_task_needs_a_correlation_key(service):
    definition = {"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": "module:event", "End": True}}}
    document = service.start(definition, {"no": "detail"}, state_machine=None, trusted=True)
    assert (document["status"], document["error"]) == ("FAILED", "Events.InvalidCorrelationKey")
    bad = {"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": "module:event", "End": True,
                                            "Parameters": {"CorrelationKey": "k", "Pattern": {"a": "b"}}}}}
    document = service.start(bad, {}, state_machine=None, trusted=True)
    assert (document["status"], document["error"]) == ("FAILED", "Events.InvalidPattern")


def test_a_task_with_a_pattern_and_the_whole_event_as_answer(service):
    definition = {"StartAt": "W", "States": {"W": {
        "Type": "Task", "Resource": "module:event", "End": True,
        "Parameters": {"CorrelationKey.$": "$.key", "Answer": "event",
                       "Pattern": {"detail": {"amount": [{"numeric": [">", 100]}]}}}}}}
    document = service.start(definition, {"key": 7}, state_machine=None, trusted=True)
    small = {"source": "pay", "detail-type": "Paid", "detail": {"id": 7, "amount": 5}}
    large = {"source": "pay", "detail-type": "Paid", "detail": {"id": 7, "amount": 500}, "id": "pay-1"}
    assert publish(service, small)[0]["buffered"] is True
    assert publish(service, {**large, "detail": {"id": "7", "amount": 500}})[0]["buffered"] is True  # "7" is not 7
    publish(service, large)
    output = service.describe(document["executionId"])["output"]
    assert output["key"] == 7 and output["eventName"] == "Paid"
    assert (output["id"], output["source"], output["detail"]) == ("pay-1", "pay", {"id": 7, "amount": 500})
    assert json.dumps(output)  # plain JSON


def test_a_wait_that_timed_out_takes_no_event(service, clock):
    """A task that stopped waiting (TimeoutSeconds) leaves its registration behind; the next event of its
    key is not swallowed by it: it is buffered for the next wait."""
    definition = {"StartAt": "W", "States": {
        "W": {"Type": "Task", "Resource": "module:event", "TimeoutSeconds": 60,
              "Parameters": {"CorrelationKey": "k-1"}, "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Gone"}],
              "End": True},
        "Gone": {"Type": "Pass", "Result": "timed out", "End": True}}}
    document = service.start(definition, {}, state_machine=None, trusted=True)
    clock.advance(61)
    service.tick()
    assert service.describe(document["executionId"])["output"] == "timed out"
    [late] = publish(service, {"source": "s", "detail-type": "Late", "detail": {"id": "k-1"}})
    assert (late["resumed"], late["buffered"]) == ([], True)
    again = service.start(definition, {}, state_machine=None, trusted=True)
    assert service.describe(again["executionId"])["output"]["eventName"] == "Late"


def test_a_wait_stays_registered_as_long_as_its_task_may_wait(service, clock):
    definition = {"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": "module:event", "End": True,
                                                   "TimeoutSeconds": 7200, "Parameters": {"CorrelationKey": "k-2"}}}}
    document = service.start(definition, {}, state_machine=None, trusted=True)
    waits = EventStore.keys("k-2")["w"]
    assert 7000 < service.store.redis.ttl(waits) <= 7201  # longer than the buffer's hour
    clock.advance(3700)
    publish(service, {"source": "s", "detail-type": "Late", "detail": {"id": "k-2"}})
    assert service.describe(document["executionId"])["status"] == "SUCCEEDED"


def test_the_shipped_start_rules_load():
    from chalicelib.service.events import start_rules

    assert sorted(machine for machine, _ in start_rules()) == ["car-dealer", "marketplace-order"]


def test_an_unexpected_workshop_event_ends_the_car_in_its_fail_state(service):
    """A workshop event the car does not expect where its inspection (or cleaning) is due ends it in
    UnexpectedEvent; an early Car Cleaned is not one: the inspection's wait does not take it."""
    execution = started(service, car("Car Announced"))
    [wait] = service.describe(execution)["continuations"]
    assert wait["detail"]["waitsFor"] == {
        "correlationKey": "car-1", "detailTypes": None, "answer": "detail",
        "pattern": {"detail-type": [{"anything-but": "Car Cleaned"}], "source": ["dealer.workshop"]}}
    [early] = publish(service, car("Car Cleaned"))
    assert early["buffered"] is True
    [damaged] = publish(service, car("Car Damaged"))
    assert [r["state"] for r in damaged["resumed"]] == ["WaitForInspection"]
    document = service.describe(execution)
    assert (document["status"], document["error"]) == ("FAILED", "UnexpectedEvent")
    assert received(document) == [("WaitForInspection", "Car Damaged")]

    second = started(service, car("Car Announced", "car-2"))
    publish(service, car("Inspection Completed", "car-2", passed=True), car("Inspection Completed", "car-2"))
    document = service.describe(second)
    assert (document["status"], document["error"]) == ("FAILED", "UnexpectedEvent")  # inspected twice
    assert received(document) == [("WaitForInspection", "Inspection Completed"),
                                  ("WaitForCleaning", "Inspection Completed")]


def test_the_keys_of_a_correlation_value_have_ttls_and_share_one_slot(store_redis, clock):
    """On a plain server and on a Redis Cluster: the waits, buffer, seen IDs and version of one order
    live in one slot under its hash tag, each with a TTL, and the flow runs through on both."""
    service = Service(dataclasses.replace(settings(), event_buffer_seconds=3600), Store(store_redis), clock=clock)
    execution = started(service, order("Placed", "slot-1"))
    publish(service, order("Accepted", "slot-1"), order("Shipped", "other-order"))  # both buffered
    publish(service, order("Confirmed", "slot-1"))
    keys = sorted(key.decode() for key in store_redis.scan_iter("asl:{e.*"))
    # A buffered event is kept the buffer's hour; a wait (and what it changed) as long as its continuation.
    for value, lifetime in (("slot-1", service.settings.continuation_ttl), ("other-order", 3600)):
        tag = EventStore.keys(value)["w"].split("}")[0] + "}"
        mine = [key for key in keys if key.startswith(tag)]
        assert len({key_slot(key.encode()) for key in mine}) == 1
        assert all(0 < store_redis.ttl(key) <= lifetime + 1 for key in mine), mine
    mine, other = EventStore.keys("slot-1"), EventStore.keys("other-order")
    assert keys == sorted([mine["w"], mine["s"], mine["v"], other["b"], other["s"], other["v"]])  # a buffer
    # emptied (the wait took the early Accepted) is gone; no wait was ever opened on the other order
    publish(service, order("Delivered", "slot-1"))
    assert service.describe(execution)["status"] == "SUCCEEDED"


def test_events_are_kept_event_buffer_seconds_by_default_the_continuation_ttl(redis_client, clock, monkeypatch):
    monkeypatch.delenv("EVENT_BUFFER_SECONDS", raising=False)
    monkeypatch.setenv("CONTINUATION_TTL_SECONDS", "500")
    publish(Service(settings(), Store(redis_client), clock=clock), car("Inspection Completed", "default"))
    assert 490 < redis_client.ttl(EventStore.keys("default")["b"]) <= 500

    monkeypatch.setenv("EVENT_BUFFER_SECONDS", "60")
    service = Service(settings(), Store(redis_client), clock=clock)
    publish(service, car("Inspection Completed", "kept", passed=True), car("Inspection Completed", "late", passed=True))
    assert 50 < redis_client.ttl(EventStore.keys("kept")["b"]) <= 60
    clock.advance(59)
    kept = started(service, car("Car Announced", "kept"))
    assert service.describe(kept)["continuations"][0]["state"] == "WaitForCleaning"  # taken within the minute
    clock.advance(2)
    late = started(service, car("Car Announced", "late"))
    assert service.describe(late)["continuations"][0]["state"] == "WaitForInspection"  # expired at 60 s


def test_a_correlation_key_keeps_at_most_max_buffered_events(service, clock, monkeypatch):
    """Past the bound an event is refused (EventBufferFull) and not remembered, so its resend is taken once
    there is room: when a wait takes a buffered event, or the old ones expire."""
    from chalicelib.service import events

    monkeypatch.setattr(events, "MAX_BUFFERED", 2)
    first, second, third = publish(service, order("Confirmed", "busy", event_id="b-1"),
                                   order("Accepted", "busy", event_id="b-2"), order("Delivered", "busy", event_id="b-3"))
    assert first["buffered"] and second["buffered"]
    assert third == {"eventId": "b-3", "error": "EventBufferFull", "message": third["message"]}
    assert len(EventStore(service.store.redis).read("busy")[2]) == 2
    execution = started(service, order("Placed", "busy"))  # its waits take b-1 then b-2: room again
    [again] = publish(service, order("Delivered", "busy", event_id="b-3"))
    assert again.get("duplicate") is None and [r["state"] for r in again["resumed"]] == ["WaitForDelivery"]
    assert service.describe(execution)["status"] == "SUCCEEDED"

    publish(service, order("Shipped", "full", event_id="f-1"), order("Shipped", "full", event_id="f-2"))
    assert publish(service, order("Shipped", "full", event_id="f-3"))[0]["error"] == "EventBufferFull"
    clock.advance(3601)  # the two expire: dropped by the next event, which is kept
    assert publish(service, order("Shipped", "full", event_id="f-3"))[0]["buffered"] is True
    assert [json.loads(e.partition("|")[2])["id"] for e in EventStore(service.store.redis).read("full")[2]] == ["f-3"]
