"""Execution-level bounds in the service: the transition limit over every slice, fan-outs within a request."""
from __future__ import annotations

import pytest

from chalicelib.approvals import make_service
from chalicelib.asl import VirtualClock
from chalicelib.config import settings
from chalicelib.service import ServiceError
from chalicelib.store import TIMERS_KEY, Store

START = 1_800_000_000.0


@pytest.fixture
def clock():
    return VirtualClock(START)


def start(service, definition, input=None):
    return service.start(definition, {} if input is None else input, state_machine=None, trusted=True)


ASK_WHILE_LOOPING = {"StartAt": "Both", "States": {"Both": {
    "Type": "Parallel", "End": True,
    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
    "Branches": [
        {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "module:suspend",
                                              "TimeoutSeconds": 3600, "End": True}}},
        {"StartAt": "Spin", "States": {
            "Spin": {"Type": "Pass", "Next": "Again"},
            "Again": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "IsPresent": True, "Next": "Out"}],
                      "Default": "Spin"},
            "Out": {"Type": "Succeed"}}},
    ]}, "Caught": {"Type": "Succeed"}}}


def test_a_runaway_execution_fails_at_its_limit_over_many_slices_and_frees_what_it_held(
        store_redis, clock, monkeypatch):
    monkeypatch.setenv("REQUEST_MAX_TRANSITIONS", "30")
    monkeypatch.setenv("EXECUTION_MAX_TRANSITIONS", "200")
    dispatched = []
    service = make_service(settings(), Store(store_redis), clock=clock, dispatch=dispatched.append)
    document = start(service, ASK_WHILE_LOOPING)
    assert document["status"] == "RUNNING" and dispatched == [document["executionId"]]
    [ask] = document["continuations"]
    assert store_redis.zcard(TIMERS_KEY) == 2  # the Ask's timeout, and the timer that hands a stranded RUNNING execution out again

    stored = service.runs.load(document["executionId"])
    assert 30 <= stored.snapshot["transitions"] < 60  # the first request's work, stored with the execution
    document = service.continue_running(document["executionId"])  # one committed slice after the other
    commits = service.runs.load(document["executionId"]).version - stored.version
    assert commits >= (200 - 60) // 30
    assert document["status"] == "FAILED"
    assert document["error"] == "States.Runtime"
    assert document["cause"] == "The execution exceeded its limit of 200 state transitions."
    assert document["continuations"] == []
    assert service.describe(document["executionId"])["history"][-1]["type"] == "ExecutionFailed"

    refused = pytest.raises(ServiceError)
    with refused as caught:
        service.redeem(ask["id"], result={})
    assert (caught.value.status, caught.value.code) == (410, "ContinuationExpired")
    assert service.describe_continuation(ask["id"])["status"] == "closed"
    clock.advance(3600)
    service.tick()
    assert store_redis.zcard(TIMERS_KEY) == 0
    assert service.describe(document["executionId"])["status"] == "FAILED"


def test_a_large_suspending_fan_out_opens_within_each_requests_budget(store_redis, clock, monkeypatch):
    monkeypatch.setenv("REQUEST_MAX_TRANSITIONS", "25")
    dispatched = []
    service = make_service(settings(), Store(store_redis), clock=clock, dispatch=dispatched.append)
    fan_out = {"StartAt": "M", "States": {"M": {
        "Type": "Map", "MaxConcurrency": 100, "End": True,
        "ItemProcessor": {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "module:suspend",
                                                               "End": True}}}}}}
    document = start(service, fan_out, list(range(100)))
    # 25 iterations started, the last as the budget ran out: its Ask runs in the next request
    assert document["status"] == "RUNNING" and len(document["continuations"]) == 24
    answered = service.redeem(document["continuations"][0]["id"], result={"n": 0})
    assert answered["status"] == "RUNNING"  # opened points can be answered while the rest still starts
    document = service.continue_running(document["executionId"])
    assert document["status"] == "SUSPENDED"
    assert len(document["continuations"]) == 99


def test_an_inline_map_without_max_concurrency_keeps_40_iterations_open(store_redis, clock):
    service = make_service(settings(), Store(store_redis), clock=clock)
    fan_out = {"StartAt": "M", "States": {"M": {
        "Type": "Map", "End": True,
        "ItemProcessor": {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "module:suspend",
                                                               "End": True}}}}}}
    document = start(service, fan_out, list(range(1000)))
    assert document["status"] == "SUSPENDED"
    assert [c["branch"] for c in document["continuations"]] == [f"M[{i}]" for i in range(40)]
    service.redeem(document["continuations"][0]["id"], result={"n": 0})
    document = service.describe(document["executionId"])
    assert [c["branch"] for c in document["continuations"]] == [f"M[{i}]" for i in range(1, 41)]


def test_a_document_signs_and_links_only_the_continuations_it_lists(store_redis, clock, monkeypatch):
    monkeypatch.setenv("REQUEST_MAX_TRANSITIONS", "10000")
    service = make_service(settings(), Store(store_redis), clock=clock)
    fan_out = {"StartAt": "M", "States": {"M": {
        "Type": "Map", "MaxConcurrency": 500, "End": True,
        "ItemProcessor": {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "module:suspend",
                                                               "End": True}}}}}}
    document = start(service, fan_out, list(range(500)))
    assert document["continuationsCount"] == 500 and len(document["continuations"]) == 100
    linked = []
    links = service.questions.links
    monkeypatch.setattr(service.questions, "links", lambda ident, parameters: linked.append(ident) or links(ident, parameters))
    page = service.describe(document["executionId"], limit=10, next_token=document["continuationsNextToken"])
    assert [c["branch"] for c in page["continuations"]] == [f"M[{i}]" for i in range(100, 110)]
    assert linked == [c["id"] for c in page["continuations"]]
