"""Task-token calls are made only after the continuation they name is stored.

The same fast callback through `chalice local` and the Lambda handler: `tests/api/test_fast_callback.py`.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.store import Store

from .test_redemption import make_service, settings

HTTP_TASK = {"StartAt": "Call", "States": {"Call": {
    "Type": "Task", "Resource": "arn:aws:states:::http:invoke.waitForTaskToken",
    "Parameters": {"ApiEndpoint": "URL", "Method": "POST", "RequestBody": {"token.$": "$$.Task.Token"}},
    "ResultPath": "$.reply", "End": True}}}


@pytest.fixture
def answering_endpoint():
    """An HTTP endpoint on loopback that redeems the token it receives, from another thread, before it responds.

    Yields its URL, a dict whose ``"redeem"`` the test sets (token -> what the redemption answered),
    and the list of those answers. The stage must allow loopback (ALLOWED_HTTP_HOSTS).
    """
    answers: list[dict] = []
    holder: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            worker = threading.Thread(target=lambda: answers.append(
                holder["redeem"](body["token"])))
            worker.start()
            worker.join()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", holder, answers
    server.shutdown()


def http_task(url: str) -> dict:
    return json.loads(json.dumps(HTTP_TASK).replace('"URL"', json.dumps(url)))


def test_a_token_answered_during_the_call_redeems_it(redis_client, answering_endpoint, monkeypatch):
    monkeypatch.setenv("ALLOWED_HTTP_HOSTS", "127.0.0.1")  # loopback is refused by default
    url, holder, answers = answering_endpoint
    service = make_service(settings(), Store(redis_client))
    holder["redeem"] = lambda token: service.redeem(token, result={"ok": 1})
    document = service.start(http_task(url), {"q": 1}, state_machine=None, trusted=True)
    assert answers[0]["status"] == "SUCCEEDED"
    # the start answers what is stored, not a stale SUSPENDED
    assert document["status"] == "SUCCEEDED" and document["output"] == {"q": 1, "reply": {"ok": 1}}
    assert service.describe(document["executionId"])["status"] == "SUCCEEDED"


def test_a_failed_token_call_fails_its_task_after_the_commit(redis_client):
    calls: list[str] = []

    def refuse(payload, context):
        calls.append(payload["token"])
        raise RuntimeError("no such queue")

    service = make_service(settings(), Store(redis_client), handlers={"test:send": refuse})
    definition = {"StartAt": "Send", "States": {
        "Send": {"Type": "Task", "Resource": "test:send.waitForTaskToken",
                 "Parameters": {"token.$": "$$.Task.Token"}, "End": True,
                 "Catch": [{"ErrorEquals": ["RuntimeError"], "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": True}}}
    document = service.start(definition, {}, state_machine=None, trusted=True)
    assert len(calls) == 1
    assert document["status"] == "SUCCEEDED"
    assert document["output"]["Error"] == "RuntimeError"
    assert document["output"]["Cause"] == "no such queue"
