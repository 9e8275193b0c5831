"""Faults on purpose, against redis-server processes the tests own: nothing is lost, nothing applied twice."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from chalice.test import Client

from app import app

from .conftest import ROOT
from .redis_servers import RedisServer, persistent

SOCKET_TIMEOUT = 0.5
LEASE = 1


@pytest.fixture
def server():
    with persistent() as running:
        yield running


@pytest.fixture
def api(server, monkeypatch):
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT", str(SOCKET_TIMEOUT))
    monkeypatch.setenv("LEASE_SECONDS", str(LEASE))
    with Client(app, stage_name="dev", project_dir=ROOT) as client:
        yield client


def call(api, method: str, path: str, body=None):
    """(status, JSON body, seconds taken) of one request."""
    began = time.monotonic()
    kwargs = {"headers": {"Content-Type": "application/json"}, "body": json.dumps(body)} if body is not None else {}
    response = getattr(api.http, method)(path, **kwargs)
    return response.status_code, json.loads(response.body), time.monotonic() - began


def start_some(api) -> list[dict]:
    """Executions waiting for answers: three incsquare (one question each), two parallel (two each)."""
    documents = [call(api, "post", "/executions", {"stateMachine": "incsquare", "input": {"value": i}})[1]
                 for i in range(3)]
    documents += [call(api, "post", "/executions", {"stateMachine": "parallel-approval", "input": {"n": i}})[1]
                  for i in range(2)]
    assert all(d["status"] == "SUSPENDED" for d in documents)
    return documents


def answer_all(api, documents: list[dict]) -> None:
    """Redeem every continuation once; each execution ends as its answers say."""
    for document in documents:
        for waiting in document["continuations"]:
            status, body, _ = call(api, "post", f"/continuations/{waiting['id']}", {"decision": "approve"})
            assert status == 200, body
        status, final, _ = call(api, "get", f"/executions/{document['executionId']}")
        assert final["status"] == "SUCCEEDED"
        if document["stateMachine"] == "incsquare":
            value = document["input"]["value"]
            assert final["output"] == {"value": (value + 1) ** 2 + 1, "decision": "approve"}
        else:
            assert [a["decision"] for a in final["output"]["answers"]] == ["approve", "approve"]
        resumes = [e for e in final["history"] if e["type"] == "ExecutionResumed"]
        assert len(resumes) == len(document["continuations"])
        for waiting in document["continuations"]:
            assert call(api, "post", f"/continuations/{waiting['id']}", {})[1]["error"] == \
                "ContinuationAlreadyRedeemed"


def assert_unavailable(api, documents: list[dict], limit: float) -> None:
    """Every kind of request answers 503 StoreUnavailable, none slower than ``limit`` seconds."""
    ident = documents[0]["continuations"][0]["id"]
    requests = [
        ("post", "/executions", {"stateMachine": "incsquare", "input": {"value": 1}}),
        ("post", f"/continuations/{ident}", {"decision": "approve"}),
        ("get", f"/continuations/{ident}", None),
        ("get", f"/executions/{documents[0]['executionId']}", None),
        ("delete", f"/executions/{documents[1]['executionId']}", None),
    ]
    for method, path, body in requests:
        status, answer, seconds = call(api, method, path, body)
        assert (status, answer["error"]) == (503, "StoreUnavailable"), (method, path, answer)
        assert "Traceback" not in json.dumps(answer)
        assert seconds < limit, (method, path, seconds)


def test_redis_stopped_mid_run_answers_503_then_every_continuation_still_works(api, server):
    documents = start_some(api)
    server.stop(signal.SIGTERM)
    assert_unavailable(api, documents, limit=SOCKET_TIMEOUT + 1)
    server.start()
    answer_all(api, documents)


def test_a_hung_redis_answers_503_within_the_socket_timeout(api, server):
    documents = start_some(api)
    server.pause()  # accepts nothing, answers nothing: only the socket timeout ends a request
    try:
        # a request may time out once per connection attempt and command: twice the timeout, plus slack
        assert_unavailable(api, documents, limit=2 * SOCKET_TIMEOUT + 1)
    finally:
        server.resume()
    # the redemption sent while Redis hung may have claimed its continuation when Redis woke up;
    # its lease runs out, and then it works like the others
    time.sleep(LEASE + 0.2)
    answer_all(api, documents)


def test_a_worker_killed_between_claim_and_commit_loses_no_answer(api, server):
    document = start_some(api)[0]
    ident = document["continuations"][0]["id"]
    worker = subprocess.Popen([sys.executable, "-m", "tests.crash_worker", ident], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "REDIS_URL": server.url, "LEASE_SECONDS": str(LEASE)})
    try:
        assert worker.stdout.readline().strip() == "claimed"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        worker.kill()
    status, body, _ = call(api, "post", f"/continuations/{ident}", {"by": "second"})
    assert (status, body["error"]) == (409, "ContinuationAlreadyRedeemed")  # the dead worker's lease holds
    assert call(api, "get", f"/executions/{document['executionId']}")[1]["status"] == "SUSPENDED"
    time.sleep(LEASE + 0.2)
    status, done, _ = call(api, "post", f"/continuations/{ident}", {"by": "second"})
    value = document["input"]["value"]
    assert (status, done["status"], done["output"]) == (200, "SUCCEEDED", {"value": (value + 1) ** 2 + 1, "by": "second"})
    history = call(api, "get", f"/executions/{document['executionId']}")[1]["history"]
    assert [e["type"] for e in history].count("ExecutionResumed") == 1
    assert call(api, "post", f"/continuations/{ident}", {})[1]["error"] == "ContinuationAlreadyRedeemed"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["shutdown", "crash"])
def test_suspended_executions_survive_a_restart_with_persistence(api, server, sig):
    documents = start_some(api)
    server.stop(sig)
    server.start()
    answer_all(api, documents)


def test_without_persistence_a_restart_loses_them_and_says_so(monkeypatch):
    """The other side of the previous test: the guarantee needs persistence, and the answer is a clear 404."""
    with RedisServer() as server:
        monkeypatch.setenv("REDIS_URL", server.url)
        with Client(app, stage_name="dev", project_dir=ROOT) as api:
            documents = start_some(api)
            server.stop(signal.SIGKILL)
            server.start()
            ident = documents[0]["continuations"][0]["id"]
            status, body, _ = call(api, "post", f"/continuations/{ident}", {})
            assert (status, body["error"]) == (404, "ContinuationNotFound")
