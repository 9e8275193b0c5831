"""No stored execution without its effect: a worker killed around a task-token call loses none.

Each test starts an execution in a worker process (``tests/crash_worker.py``) whose only
state waits on a task-token call, kills the worker with SIGKILL at one boundary
(after the commit, during the call, after the call before the outbox entry is removed),
lets the lease run out and has the timer sweep (or a GET) finish the call. Then: the
target got the call (twice only at the later boundaries, always with the same
idempotency key and token), the outbox is empty, and answering the token ends the
execution.
"""
from __future__ import annotations

import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.api import runtime
from chalicelib.approvals import make_service as approval_service
from chalicelib.asl.clock import VirtualClock
from chalicelib.config import settings

from ..crash_worker import kill_at, record_aws_calls
from .test_faults import LEASE, api, call, server  # noqa: F401 - fixtures

TARGETS = ["email", "http", "child", "lambda", "sqs", "sns"]
BOUNDARIES = ["committed", "called", "made"]


@pytest.fixture
def endpoint():
    """An HTTP endpoint that records each call's Idempotency-Key header and body."""
    received: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.headers.get("Idempotency-Key"), body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/hook", received
    httpd.shutdown()


@pytest.fixture
def targets(tmp_path, monkeypatch, endpoint):
    """Where calls land, for the worker and for this process alike."""
    log, outbox = tmp_path / "calls.jsonl", tmp_path / "outbox"
    environment = {"CALL_LOG": str(log), "OUTBOX_DIR": str(outbox), "EMAIL_MODE": "outbox",
                   "LEASE_SECONDS": str(LEASE), "ALLOWED_HTTP_HOSTS": "127.0.0.1"}  # the test endpoint is local
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    from chalicelib.resources import aws

    monkeypatch.setattr(aws, "client", aws.client)  # undone after the test
    record_aws_calls()
    return {"environment": environment, "log": log, "outbox": outbox, "url": endpoint[0], "http": endpoint[1]}


def calls_made(target: str, targets: dict, api) -> list[tuple[str, str]]:
    """(idempotency key, token) of every call the target got (for a child: every child started)."""
    if target == "http":
        return [(key, body["token"]) for key, body in targets["http"]]
    if target == "email":
        messages = sorted(targets["outbox"].glob("*.eml")) if targets["outbox"].exists() else []
        found = []
        for message in messages:
            text = message.read_text()
            assert f"Message-ID: <{message.stem}@outbox.local>" in text
            found.append((message.stem, re.search(r"/continuations/([A-Za-z0-9_-]+)", text).group(1)))
        assert not list(targets["outbox"].glob("*.part")) if targets["outbox"].exists() else True
        return found
    if target == "child":
        return children(api)
    entries = [json.loads(line) for line in targets["log"].read_text().splitlines()] if targets["log"].exists() else []
    if target == "lambda":
        return [(json.loads(base64.b64decode(e["ClientContext"]))["custom"]["idempotencyKey"],
                 json.loads(e["Payload"])["token"]) for e in entries if e["op"] == "invoke"]
    if target == "sns":
        return [(e["MessageDeduplicationId"], json.loads(e["Message"])["token"]) for e in entries if e["op"] == "publish"]
    return [(e["MessageDeduplicationId"], json.loads(e["MessageBody"])["token"])
            for e in entries if e["op"] == "send_message"]


def children(api) -> list[tuple[str, str]]:
    """Child executions in the store (any execution of incsquare): (name, token in its input)."""
    client = runtime.make_service(None).store.redis
    found = []
    for key in client.scan_iter("asl:*:x:*"):
        document = call(api, "get", f"/executions/{key.decode().rsplit(':', 1)[1]}")[1]
        if document["stateMachine"] == "incsquare":
            found.append((document["name"], document["input"]["token"]))
    return found


def outbox_keys() -> list[bytes]:
    return list(runtime.make_service(None).store.redis.scan_iter("asl:*:o:*"))


def sweeper(at: float):
    """The service as the ticker runs it, its clock at ``at``: "within the lease" holds however slow the machine."""
    config = settings()
    return approval_service(config, runtime.store_for(config), clock=VirtualClock(at))


def kill_worker_at(boundary: str, target: str, name: str, targets: dict, server) -> None:
    kill_at(boundary, "effect", boundary, target, name, targets["url"],
            environment={**targets["environment"], "REDIS_URL": server.url})


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("target", TARGETS)
def test_a_worker_killed_around_a_call_leaves_no_execution_without_its_effect(api, server, targets, target,
                                                                           boundary):
    name = f"outbox-{target}-{boundary}"
    kill_worker_at(boundary, target, name, targets, server)
    before = calls_made(target, targets, api)
    [pending] = outbox_keys()
    redis = runtime.make_service(None).store.redis
    [value] = [v.decode() for v in redis.hgetall(pending).values()]
    stored, since = json.dumps([value]), float(value.split("|", 1)[0])  # "<since>|<call>"
    assert 0 < redis.ttl(pending)  # kept as long as the execution's record, no longer
    # within the lease the sweep leaves the call to its maker, who might be at it still
    assert sweeper(since + LEASE - 0.1).tick()["calls"] == 0
    assert sweeper(since + LEASE + 0.1).tick()["calls"] == 1  # the lease ended: the sweep makes the call
    assert sweeper(since + LEASE + 0.2).tick()["calls"] == 0  # once
    assert outbox_keys() == []

    status, document = call(api, "get", f"/executions/{name}")[:2]
    assert (status, document["status"]) == (200, "SUSPENDED")
    [waiting] = document["continuations"]
    key = f"{document['executionId']}-p1"  # the key names the execution and the point (its first, p1)
    made = calls_made(target, targets, api)
    if boundary == "committed":  # the dead worker made no call; the sweep made it
        assert len(before) == 0 and len(made) == 1
    elif target in ("email", "child"):  # made twice, kept once: by the file name, by the child's name
        assert len(before) == 1 and len(made) == 1
    else:  # made twice, with the same key, so the target can keep one
        assert len(before) == 1 and len(made) == 2
    assert set(made) == {(key, waiting["id"])}
    assert waiting["id"] not in stored  # the outbox held a marker, not the token


    answer = {"decision": "approve"}
    status, done, _ = call(api, "post", f"/continuations/{waiting['id']}", answer)
    assert (status, done["status"], done["output"]["reply"]) == (200, "SUCCEEDED", answer)


def test_a_get_of_the_execution_finishes_a_call_whose_maker_died(api, server, targets):
    kill_worker_at("committed", "http", "outbox-get", targets, server)
    assert targets["http"] == []
    time.sleep(LEASE + 0.2)
    document = call(api, "get", "/executions/outbox-get")[1]
    assert [body["token"] for _, body in targets["http"]] == [document["continuations"][0]["id"]]
    assert outbox_keys() == []
    assert runtime.make_service(None).tick()["calls"] == 0  # nothing left for the sweep


def test_a_call_made_at_once_leaves_nothing_for_the_sweep(api, targets, monkeypatch):
    monkeypatch.setenv("ALLOWED_RESOURCES", "module:*,arn:aws:states:::http:invoke*")
    status, document, _ = call(api, "post", "/executions", {"definition": _http(targets["url"]), "input": {}})
    assert (status, document["status"]) == (200, "SUSPENDED")
    assert len(targets["http"]) == 1 and outbox_keys() == []
    time.sleep(LEASE + 0.2)
    assert runtime.make_service(None).tick()["calls"] == 0
    assert len(targets["http"]) == 1


def _http(url: str) -> dict:
    from ..crash_worker import effect_definition

    return effect_definition("http", url)


def test_an_approval_email_goes_out_only_for_a_stored_execution(api, targets, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from chalicelib.service import catalog
    from chalicelib.store import Store

    def broken(store, change):
        raise RedisConnectionError("connection lost")

    monkeypatch.setattr(Store, "commit", broken)
    with pytest.raises(RedisConnectionError):
        runtime.make_service(None).start(catalog.load_text("approval"), {"item": "desk", "requester": "lee",
                                         "reason": "new"}, state_machine="approval", trusted=True)
    assert not targets["outbox"].exists() or list(targets["outbox"].glob("*.eml")) == []
