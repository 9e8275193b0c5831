"""Faults on purpose, against redis-server processes the tests own: nothing is lost, nothing applied twice.

Everything is checked through the HTTP API (``chalice.test.Client``) and generic
Redis facts (the ``asl:*`` keys and their TTLs), never the store's record layout.
"""
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

from ..conftest import ROOT
from ..redis_servers import RedisServer, persistent
from ..crash_worker import kill_at

SOCKET_TIMEOUT = 0.5  # REDIS_SOCKET_TIMEOUT of the app under test
LEASE = 1  # LEASE_SECONDS: how long a claimed continuation stays refused to others
INCSQUARE = {6: 50, 2: 10}  # input value -> output value of incsquare: (value + 1) ** 2, then + 1 after the answer


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


def answer_for(waiting: dict) -> dict:
    """The answer a test gives a continuation: each Parallel branch's answer says which branch it was."""
    return {"decision": "approve", "from": waiting["state"]}


class Run:
    """Suspended executions, the answers given so far, and the checks of how they must end."""

    def __init__(self, api):
        self.api = api
        self.documents = [self.start("incsquare", {"value": value}) for value in INCSQUARE]
        self.documents += [self.start("parallel-approval", {"n": n}) for n in range(2)]
        self.answered: set[str] = set()

    def start(self, machine: str, input: dict) -> dict:
        status, document, _ = call(self.api, "post", "/executions", {"stateMachine": machine, "input": input})
        assert (status, document["status"]) == (200, "SUSPENDED"), document
        return document

    @property
    def waiting(self) -> list[dict]:
        return [w for d in self.documents for w in d["continuations"]]

    def answer(self, waiting: dict) -> dict:
        status, body, _ = call(self.api, "post", f"/continuations/{waiting['id']}", answer_for(waiting))
        assert status == 200, body
        self.answered.add(waiting["id"])
        return body

    def answer_some(self) -> None:
        """Mid-run: one incsquare finished, one branch of one parallel approval answered."""
        self.answer(self.documents[0]["continuations"][0])
        self.answer(self.documents[-1]["continuations"][1])

    def finish(self) -> None:
        """Answer what is still open; each execution ends as its answers say, each answer applied once."""
        for waiting in self.waiting:
            if waiting["id"] not in self.answered:
                self.answer(waiting)
        for document in self.documents:
            status, final, _ = call(self.api, "get", f"/executions/{document['executionId']}")
            assert (status, final["status"]) == (200, "SUCCEEDED"), final
            if document["stateMachine"] == "incsquare":
                value = INCSQUARE[document["input"]["value"]]
                assert final["output"] == {"value": value, **answer_for(document["continuations"][0])}
            else:
                assert final["output"]["answers"] == [{"decision": "approve", "from": "AskFinance"},
                                                      {"decision": "approve", "from": "AskLegal"}]
            assert resumes(final) == len(document["continuations"])
        for waiting in self.waiting:  # the same answer again is a replay; another one is refused
            status, body, _ = call(self.api, "post", f"/continuations/{waiting['id']}", answer_for(waiting))
            assert (status, body["replay"]) == (200, True), body
            status, body, _ = call(self.api, "post", f"/continuations/{waiting['id']}", {"other": 1})
            assert (status, body["error"]) == (409, "ContinuationAlreadyRedeemed")
        for document in self.documents:
            status, final, _ = call(self.api, "get", f"/executions/{document['executionId']}")
            assert resumes(final) == len(document["continuations"])


def resumes(document: dict) -> int:
    return [e["type"] for e in document["history"]].count("ExecutionResumed")


def assert_unavailable(api, run: Run, victim: dict, limit: float) -> list[float]:
    """Each kind of request answers 503 StoreUnavailable, none slower than ``limit`` seconds; their times."""
    open_id = next(w["id"] for w in run.waiting if w["id"] not in run.answered)
    requests = [
        ("post", "/executions", {"stateMachine": "incsquare", "input": {"value": 6}}),
        ("post", f"/continuations/{open_id}", {"decision": "approve"}),
        ("get", f"/continuations/{open_id}", None),
        ("get", f"/executions/{run.documents[0]['executionId']}", None),
        ("delete", f"/executions/{victim['executionId']}", None),
    ]
    seconds = []
    for method, path, body in requests:
        status, answer, took = call(api, method, path, body)
        assert (status, answer["error"]) == (503, "StoreUnavailable"), (method, path, answer)
        assert "Traceback" not in json.dumps(answer)
        assert took < limit, (method, path, took)
        seconds.append(took)
    return seconds


def asl_keys(server: RedisServer) -> dict[bytes, int]:
    """Every ``asl:*`` key and its remaining time to live in milliseconds."""
    client = server.client()
    try:
        return {key: client.pttl(key) for key in client.scan_iter("asl:*")}
    finally:
        client.close()


def test_redis_stopped_mid_run_answers_503_then_every_continuation_still_works(api, server):
    run = Run(api)
    run.answer_some()
    victim = run.start("incsquare", {"value": 1})  # the DELETE sent during the outage; not checked after
    server.stop(signal.SIGTERM)
    for _ in range(3):  # a run of requests, not one: the client keeps failing fast and cleanly
        assert_unavailable(api, run, victim, limit=SOCKET_TIMEOUT + 0.5)
    server.start()
    run.finish()


def test_a_hung_redis_answers_503_within_the_socket_timeout(api, server):
    run = Run(api)
    run.answer_some()
    victim = run.start("incsquare", {"value": 1})
    server.pause()  # accepts connections, answers nothing: only the socket timeout ends a request
    try:
        # the kernel still accepts connections, so each request waits out one socket timeout, no more
        seconds = assert_unavailable(api, run, victim, limit=SOCKET_TIMEOUT + 0.5)
        assert min(seconds) >= SOCKET_TIMEOUT * 0.9  # it did wait on Redis: the hang was real
    finally:
        server.resume()
    # Redis runs what it received while hung once it wakes: the redemption sent then may have claimed
    # its continuation; its lease runs out, and then it works like the others
    time.sleep(LEASE + 0.2)
    run.finish()


def test_a_worker_killed_between_claim_and_commit_loses_no_answer(api, server):
    run = Run(api)
    document = run.documents[0]
    ident = document["continuations"][0]["id"]
    claimed = kill_at("claimed", "claim", ident, environment={"REDIS_URL": server.url, "LEASE_SECONDS": str(LEASE)})
    # while the dead worker's lease holds: busy (not "already redeemed"), and nothing has moved
    refusals = 0
    while True:
        response = api.http.post(f"/continuations/{ident}", headers={"Content-Type": "application/json"},
                                 body=json.dumps({"by": "second"}))
        status, body = response.status_code, json.loads(response.body)
        waited = time.monotonic() - claimed
        if status == 200:
            break
        assert (status, body["error"]) == (409, "ContinuationBusy"), body
        assert response.headers["Retry-After"] == str(LEASE)  # whole seconds, rounded up
        assert call(api, "get", f"/executions/{document['executionId']}")[1]["status"] == "SUSPENDED"
        assert waited < LEASE + 1, "the lease of the killed worker never ran out"
        refusals += 1
        time.sleep(0.1)
    assert refusals >= 1 and waited > LEASE - 0.3  # refused for about the lease, then it works
    assert (body["status"], body["output"]) == ("SUCCEEDED", {"value": 50, "by": "second"})
    final = call(api, "get", f"/executions/{document['executionId']}")[1]
    assert resumes(final) == 1
    assert "crashed" not in json.dumps(final)  # the killed worker's answer never took effect
    status, body, _ = call(api, "post", f"/continuations/{ident}", {"by": "third"})
    assert (status, body["error"]) == (409, "ContinuationAlreadyRedeemed")


def test_processes_retrying_one_answer_at_once_resume_it_once_and_all_get_its_outcome(api, server):
    """Six processes send the same answer to one continuation at the same moment, each retrying while busy."""
    run = Run(api)
    document = run.documents[0]
    ident = document["continuations"][0]["id"]
    env = {**os.environ, "REDIS_URL": server.url, "LEASE_SECONDS": str(LEASE)}
    workers = [subprocess.Popen([sys.executable, "-m", "tests.crash_worker", "redeem", ident, '{"by": "all"}'],
                                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
               for _ in range(6)]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:  # all at once: they meet at the claim
            worker.stdin.write("go\n")
            worker.stdin.flush()
        reports = [json.loads(worker.stdout.readline()) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(10)
            worker.stdin.close()
            worker.stdout.close()
    last = [report["tries"][-1] for report in reports]
    assert sorted(last) == ["ok"] + ["replay"] * 5, reports
    assert all(set(report["tries"][:-1]) <= {"ContinuationBusy"} for report in reports)
    assert all(report["document"]["output"] == {"value": 50, "by": "all"} for report in reports)
    final = call(api, "get", f"/executions/{document['executionId']}")[1]
    assert resumes(final) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["shutdown", "crash"])
def test_suspended_executions_survive_a_restart_with_persistence(api, server, sig):
    run = Run(api)
    run.answer_some()
    before = asl_keys(server)
    server.stop(sig)  # SIGKILL right after the last write: appendfsync always has it on disk already
    server.start()
    after = asl_keys(server)
    assert set(after) == set(before)
    assert all(0 < after[key] <= before[key] for key in after)  # the expiry times came back too
    run.finish()


def test_without_persistence_a_restart_loses_them_and_says_so(monkeypatch):
    """The other side of the previous test: the guarantee needs persistence, and the answer is a clear 404."""
    with RedisServer() as server:
        monkeypatch.setenv("REDIS_URL", server.url)
        with Client(app, stage_name="dev", project_dir=ROOT) as api:
            run = Run(api)
            server.stop(signal.SIGKILL)
            server.start()
            assert asl_keys(server) == {}
            for waiting in run.waiting:
                status, body, _ = call(api, "post", f"/continuations/{waiting['id']}", {})
                assert (status, body["error"]) == (404, "ContinuationNotFound")
