"""Starting is idempotent by name, as in Step Functions: a retried start finds the first execution."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from ..conftest import REDIS_URL, ROOT
from ..crash_worker import kill_at

JSON = {"Content-Type": "application/json"}


def post(client, path, body):
    response = client.http.post(path, headers=JSON, body=json.dumps(body))
    return response.status_code, json.loads(response.body)


def executions(redis_client) -> int:
    return sum(1 for _ in redis_client.scan_iter(match="asl:*:x:*"))


def test_the_same_name_and_input_answer_the_first_execution(client, redis_client):
    start = {"stateMachine": "incsquare", "input": {"value": 6}, "name": "order-17"}
    status, first = post(client, "/executions", start)
    assert status == 200 and first["status"] == "SUSPENDED" and "alreadyExisted" not in first
    # the same input with its keys in another order is the same input
    status, again = post(client, "/executions", {**start, "input": json.loads('{"value": 6}')})
    assert status == 200 and again["alreadyExisted"] is True
    assert again["executionId"] == first["executionId"]
    assert again["continuations"] == first["continuations"]
    assert executions(redis_client) == 1


def test_the_same_name_with_other_input_or_machine_is_409(client, redis_client):
    post(client, "/executions", {"stateMachine": "incsquare", "input": {"value": 6}, "name": "n1"})
    status, error = post(client, "/executions", {"stateMachine": "incsquare", "input": {"value": 7}, "name": "n1"})
    assert status == 409 and error["error"] == "ExecutionAlreadyExists" and error["name"] == "n1"
    status, error = post(client, "/executions", {"definition": {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "End": True}}}, "input": {"value": 6}, "name": "n1"})
    assert status == 409 and error["error"] == "ExecutionAlreadyExists"
    assert executions(redis_client) == 1


def test_an_execution_is_found_by_its_name(client):
    _, first = post(client, "/executions", {"stateMachine": "incsquare", "input": {"value": 2}, "name": "by-name"})
    response = client.http.get("/executions/by-name")
    assert response.status_code == 200
    found = json.loads(response.body)
    assert found["executionId"] == first["executionId"]
    # the whole document, history too, is the same by name as by ID
    by_id = json.loads(client.http.get(f"/executions/{first['executionId']}").body)
    assert found["history"] and found == by_id
    assert client.http.get("/executions/no-such-name").status_code == 404


def test_the_name_lives_as_long_as_the_records(client, redis_client, monkeypatch):
    monkeypatch.setenv("RETENTION_SECONDS", "2")  # an ended execution's records go 2 s after it ends
    monkeypatch.setenv("LEASE_SECONDS", "1")  # a name is taken over no sooner than a lease after its reservation
    start = {"stateMachine": "incsquare", "input": {"value": 2}, "name": "kept"}
    _, first = post(client, "/executions", start)
    record_ttl = redis_client.ttl(f"asl:{{{first['executionId'][:4]}}}:x:{first['executionId']}")
    assert redis_client.ttl("asl:n:kept") >= record_ttl - 1  # at least as long as the records
    post(client, f"/continuations/{first['continuations'][0]['id']}", {})
    other = {**start, "input": {"value": 3}}
    status, error = post(client, "/executions", other)  # the ended execution's records are still kept
    assert (status, error["error"]) == (409, "ExecutionAlreadyExists")
    assert post(client, "/executions", start)[1]["executionId"] == first["executionId"]
    time.sleep(3)  # the records expire; the name is free for a new execution
    assert client.http.get("/executions/kept").status_code == 404
    status, second = post(client, "/executions", other)
    assert (status, second["status"], second.get("alreadyExisted")) == (200, "SUSPENDED", None), second
    assert second["executionId"] != first["executionId"]


START = """
import json, sys, time
from chalicelib.api import runtime as web
from chalicelib.service import ServiceError
at = float(sys.argv[1])
while time.time() < at:
    pass
try:
    document = web.make_service(None).start(
        open("state_machines/approval.json").read(),
        {"item": "laptop", "requester": "ann", "reason": "broke", "approver": "kim@example.com"},
        state_machine="approval", trusted=True, name="same-name")
    print(json.dumps({"id": document["executionId"], "again": document.get("alreadyExisted", False)}))
except ServiceError as error:
    print(json.dumps({"error": error.code}))
"""


def test_concurrent_starts_from_processes_give_exactly_one_execution(redis_client, tmp_path):
    environment = {**os.environ, "REDIS_URL": REDIS_URL, "PYTHONPATH": ROOT, "OUTBOX_DIR": str(tmp_path)}
    at = time.time() + 3
    workers = [subprocess.Popen([sys.executable, "-c", START, str(at)], cwd=ROOT, env=environment,
                                stdout=subprocess.PIPE, text=True) for _ in range(6)]
    answers = [json.loads(worker.communicate(timeout=60)[0].strip().splitlines()[-1]) for worker in workers]
    created = [answer for answer in answers if "id" in answer and not answer["again"]]
    assert len(created) == 1, answers
    for answer in answers:  # the others found it, or were told it is still starting
        assert answer.get("id") == created[0]["id"] or answer.get("error") == "ExecutionStarting", answers
    assert executions(redis_client) == 1
    assert len(list(tmp_path.glob("*.eml"))) == 1  # one email, not one per start


LEASE = 1  # LEASE_SECONDS of the worker and of the app under test


def start_and_kill(boundary: str, name: str) -> None:
    """A worker process starts incsquare named ``name`` and is SIGKILLed at ``boundary`` (tests/crash_worker.py)."""
    kill_at(boundary, "start", boundary, name, environment={"REDIS_URL": REDIS_URL, "LEASE_SECONDS": str(LEASE)})


def test_a_start_killed_after_its_commit_keeps_its_name(client, redis_client, monkeypatch):
    """The name outlives the lease it was reserved for even when the process dies right after the commit:
    a retry after the lease answers the stored execution, it does not start a second one."""
    monkeypatch.setenv("LEASE_SECONDS", str(LEASE))
    start_and_kill("committed", "killed-after-commit")
    [key] = redis_client.scan_iter(match="asl:*:x:*")
    stored = key.decode().rsplit(":", 1)[1]
    time.sleep(LEASE + 0.5)  # the reservation's own lease is over
    assert redis_client.ttl("asl:n:killed-after-commit") > 3600  # kept with the records, not the lease
    status, again = post(client, "/executions", {"stateMachine": "incsquare", "input": {"value": 6},
                                                 "name": "killed-after-commit"})
    assert (status, again["executionId"], again.get("alreadyExisted")) == (200, stored, True), again
    assert executions(redis_client) == 1
    status, done = post(client, f"/continuations/{again['continuations'][0]['id']}", {"by": "retry"})
    assert (status, done["output"]) == (200, {"value": 50, "by": "retry"})


def test_a_start_killed_before_its_commit_frees_its_name_after_the_lease(client, redis_client, monkeypatch):
    monkeypatch.setenv("LEASE_SECONDS", str(LEASE))
    start_and_kill("reserved", "killed-before-commit")
    start = {"stateMachine": "incsquare", "input": {"value": 6}, "name": "killed-before-commit"}
    status, error = post(client, "/executions", start)
    assert (status, error["error"]) == (409, "ExecutionStarting")  # the dead start's lease still holds
    time.sleep(LEASE + 0.5)
    status, document = post(client, "/executions", start)
    assert (status, document["status"], document.get("alreadyExisted")) == (200, "SUSPENDED", None), document
    assert executions(redis_client) == 1


def test_a_name_held_for_records_that_are_gone_is_taken_over(client, redis_client, monkeypatch):
    """A start that died between keeping its name and its commit leaves the name held with no execution
    (the name kept ahead of the commit, see Runs.commit): after the lease a new start takes it."""
    monkeypatch.setenv("LEASE_SECONDS", str(LEASE))
    holder = json.dumps({"executionId": "abcdNOSUCHEXECUTION", "machine": "incsquare", "input": "0" * 64,
                         "since": time.time() - LEASE - 1})
    redis_client.set("asl:n:orphan", holder, ex=86400)
    status, document = post(client, "/executions", {"stateMachine": "incsquare", "input": {"value": 6},
                                                    "name": "orphan"})
    assert (status, document["status"], document.get("alreadyExisted")) == (200, "SUSPENDED", None), document
    assert json.loads(redis_client.get("asl:n:orphan"))["executionId"] == document["executionId"]
    assert executions(redis_client) == 1
