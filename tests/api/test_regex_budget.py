"""Hostile regexes through a real `chalice local` process: each request ends at its budget.

A loop runs a JSONPath ``=~ '(a+)+$'`` filter and a JSONata ``$match(/(a+)+$/)`` on 5,000 ``a`` and a ``!``,
over and over. The start request runs ``REQUEST_MAX_TRANSITIONS`` transitions and answers 202; the rest runs
in background slices of the same budget while the process keeps answering other requests. Every request
here has the HTTP client's own timeout (``local_server.call``, 10 s): on a backtracking engine the first
search never ends, so the start request does not answer and the test fails instead of hanging.
"""
from __future__ import annotations

import json
import time

import pytest

from ..local_server import call, chalice_local

HOSTILE = "a" * 5000 + "!"
ROUNDS = 60
BUDGET = 20  # transitions per request or background slice

LOOP = {
    "StartAt": "Filter",
    "States": {
        "Filter": {"Type": "Pass", "Next": "Match", "Parameters": {
            "items.$": "$.items", "round.$": "States.MathAdd($.round, 1)",
            "kept.$": "$.items[?(@.s =~ '(a+)+$')].s"}},
        "Match": {"Type": "Pass", "QueryLanguage": "JSONata", "Next": "Again", "Output": (
            "{% $merge([$states.input, {'matches': $count($match($states.input.items[0].s, /(a+)+$/)) "
            "+ $count($match($states.input.items[1].s, /(a+)+$/))}]) %}")},
        "Again": {"Type": "Choice", "Default": "Filter",
                  "Choices": [{"Variable": "$.round", "NumericGreaterThanEquals": ROUNDS, "Next": "Done"}]},
        "Done": {"Type": "Succeed"},
    },
}


@pytest.fixture
def server(redis_client, tmp_path):
    with chalice_local(tmp_path / "chalice-local.log", REQUEST_MAX_TRANSITIONS=str(BUDGET)) as base:
        yield base


def test_hostile_regexes_run_within_each_requests_budget(server):
    items = [{"s": HOSTILE}, {"s": "aaaa"}]
    body = json.dumps({"definition": LOOP, "input": {"items": items, "round": 0}}).encode()
    status, document = call("POST", server + "/executions", body)
    assert (status, document["status"]) == (202, "RUNNING"), document

    deadline = time.monotonic() + 60
    while document["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        status, listing = call("GET", server + "/state-machines")  # the process answers meanwhile
        assert status == 200 and listing["stateMachines"]
        status, document = call("GET", f"{server}/executions/{document['executionId']}")
        assert status == 200
        time.sleep(0.05)
    assert document["status"] == "SUCCEEDED", document
    assert document["output"] == {"items": items, "round": ROUNDS, "kept": ["aaaa"], "matches": 1}
    # Three transitions a round (Filter, Match, Again): ROUNDS * 3 / BUDGET slices, each ending at its budget.
    entered = [event["state"] for event in document["history"] if event["type"] == "StateEntered"]
    assert entered[:3] == ["Filter", "Match", "Again"] and entered.count("Match") == ROUNDS
