"""Security checks: unguessable IDs, nothing usable in Redis, no secrets or tracebacks in errors, size limits."""
from __future__ import annotations

import base64
import json

import pytest
import redis
from chalice.test import Client

from app import app
from chalicelib import catalog
from chalicelib.asl import VirtualClock
from chalicelib.config import settings
from chalicelib.continuations import TAG_LENGTH
from chalicelib.service import Service
from chalicelib.store import Store, unpack_record

from .conftest import REDIS_URL, ROOT

JSON = {"Content-Type": "application/json"}


def start_many(count: int, clock=None, name=None) -> list[dict]:
    service = Service(settings(), Store(redis.Redis.from_url(REDIS_URL)), clock=clock or VirtualClock(1.8e9))
    return [service.start(catalog.load_text("incsquare"), {"value": 1}, state_machine="incsquare",
                          trusted=True, name=name) for _ in range(count)]


def secret_bits(ident: str) -> str:
    """The first 128 bits of an ID after its shard tag (22 base64 characters carry 132)."""
    raw = base64.urlsafe_b64decode(ident[TAG_LENGTH:] + "==")
    return "".join(f"{byte:08b}" for byte in raw)[:128]


def test_ids_are_neither_sequential_nor_time_based_nor_derived_from_the_execution(redis_client):
    frozen = VirtualClock(1.8e9)  # one instant for all: any time-based part would repeat
    documents = start_many(600, clock=frozen, name="same-name")
    idents = [d["continuations"][0]["id"] for d in documents]
    assert len(set(idents)) == len(idents)
    for document, ident in zip(documents, idents):
        execution = document["executionId"]
        assert ident[:TAG_LENGTH] == execution[:TAG_LENGTH]  # only the documented shard tag is shared
        rest, other = ident[TAG_LENGTH:], execution[TAG_LENGTH:]
        assert not any(rest[i:i + 6] in other for i in range(len(rest) - 5))
    # every bit position is set in about half of the IDs (a counter or clock would fix the high bits)
    bits = [secret_bits(i) for i in idents]
    for position in range(128):
        ones = sum(b[position] == "1" for b in bits)
        assert 200 < ones < 400, position  # binomial(600, 0.5): > 8 standard deviations of margin
    # consecutive IDs share no more leading characters than chance gives
    shared = [len(_common_prefix(a[TAG_LENGTH:], b[TAG_LENGTH:])) for a, b in zip(idents, idents[1:])]
    assert max(shared) <= 3
    assert all(set(i) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") for i in idents)


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def test_redis_holds_no_id_and_no_decision_signature_in_any_encoding(redis_client):
    service = Service(settings(), Store(redis.Redis.from_url(REDIS_URL)), clock=VirtualClock(1.8e9),
                      base_url="http://test")
    documents = [service.start(catalog.load_text("parallel-approval"), {"n": i}, state_machine="parallel-approval",
                               trusted=True) for i in range(3)]
    service.redeem(documents[0]["continuations"][0]["id"], result={"decision": "approve"})
    secrets_ = []
    for document in documents:
        for waiting in document["continuations"]:
            secrets_.append(waiting["id"][TAG_LENGTH:])
            secrets_ += [url.split("sig=")[1] for url in waiting["decisions"].values()]
    forms = []
    for secret in secrets_:
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
        forms += [secret, raw.hex(), base64.b64encode(raw).decode().rstrip("=")[:20]]
    stored = _everything(redis_client)
    for form in forms:
        assert form.encode() not in stored
    assert documents[1]["continuations"][0]["id"][TAG_LENGTH:].encode() not in stored


def _everything(client) -> bytes:
    """Every key and value in Redis, execution records unpacked (they are compressed)."""
    parts = []
    for key in client.scan_iter("*"):
        parts.append(key)
        kind = client.type(key).decode()
        if kind == "string":
            value = client.get(key)
            if b":x:" in key:
                record = unpack_record(key.decode().rsplit(":", 1)[1], value)
                value = json.dumps([record.document, record.snapshot, record.open, record.history]).encode()
            parts.append(value)
        elif kind == "hash":
            parts += [b"%s=%s" % item for item in client.hgetall(key).items()]
        elif kind == "zset":
            parts += client.zrange(key, 0, -1)
        elif kind == "list":
            parts += client.lrange(key, 0, -1)
    return b"\n".join(parts)


LEAKS = ("Traceback", 'File "', ".py", "s3cr3t-signing", "hunter2pass")


def _no_leak(body: str) -> None:
    for leak in LEAKS:
        assert leak not in body, leak


def test_errors_echo_no_secret_and_no_traceback(redis_client, monkeypatch):
    monkeypatch.setenv("SIGNING_SECRET", "s3cr3t-signing")
    with Client(app, stage_name="dev", project_dir=ROOT) as client:
        requests = [
            ("post", "/executions", "{not json"),
            ("post", "/executions", json.dumps({"stateMachine": 5})),
            ("post", "/executions", json.dumps({"definition": {"StartAt": "X", "States": {"X": {"Type": "Nope"}}}})),
            ("post", "/executions", json.dumps({"definition": {"StartAt": "T", "States": {"T": {
                "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:x", "End": True}}}})),
            ("post", "/executions", json.dumps({"stateMachine": "incsquare", "input": {"value": "not a number"}})),
            ("post", "/continuations/" + "A" * 26, "{}"),
            ("get", "/continuations/%00%ff", None),
            ("post", "/state-machines/validate", "[]"),
            ("get", "/executions/../../etc/passwd", None),
        ]
        for method, path, body in requests:
            kwargs = {"headers": JSON, "body": body} if body is not None else {}
            response = getattr(client.http, method)(path, **kwargs)
            assert 400 <= response.status_code < 500 or response.status_code == 200, (path, response.status_code)
            _no_leak(response.body.decode())
        # a failing task's error is the task's, not the service's internals
        response = client.http.post("/executions", headers=JSON,
                                    body=json.dumps({"stateMachine": "incsquare", "input": {"value": "x"}}))
        document = json.loads(response.body)
        _no_leak(json.dumps(document))


def test_an_unreachable_redis_does_not_reveal_its_password(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2pass@127.0.0.1:1/0")
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT", "0.5")
    with Client(app, stage_name="dev", project_dir=ROOT) as client:
        for method, path in (("post", "/executions"), ("get", "/executions/abcdefgh")):
            response = getattr(client.http, method)(path, headers=JSON, body=json.dumps({"stateMachine": "incsquare"}))
            assert response.status_code == 503 and json.loads(response.body)["error"] == "StoreUnavailable"
            _no_leak(response.body.decode())


@pytest.mark.parametrize("path", ["/executions", "/continuations/{id}", "/continuations/{id}/failure",
                                  "/continuations/{id}/heartbeat", "/state-machines/validate", "/"])
def test_every_post_route_holds_the_size_limit(redis_client, monkeypatch, path):
    monkeypatch.setenv("MAX_BODY_BYTES", "2000")
    with Client(app, stage_name="dev", project_dir=ROOT) as client:
        ident = json.loads(client.http.post("/executions", headers=JSON, body=json.dumps(
            {"stateMachine": "incsquare", "input": {"value": 1}})).body)["continuations"][0]["id"]
        path = path.format(id=ident)

        def body_of(size: int) -> str:
            head = {"error": "E", "stateMachine": "incsquare", "definition": json.loads(catalog.load_text("incsquare"))}
            text = json.dumps({**head, "pad": ""})
            return json.dumps({**head, "pad": "x" * (size - len(text))})

        over = client.http.post(path, headers=JSON, body=body_of(2001))
        assert over.status_code == 413 and json.loads(over.body)["error"] == "PayloadTooLarge"
        form = client.http.post(path, headers={"Content-Type": "application/x-www-form-urlencoded"},
                                body="a=" + "x" * 2000)
        assert form.status_code in (413, 415)  # form posts: too large where forms are accepted
        at_limit = client.http.post(path, headers=JSON, body=body_of(2000))
        assert at_limit.status_code != 413 and at_limit.status_code < 500
