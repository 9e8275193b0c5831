"""The main flows over real HTTP against a `chalice local` process."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from .conftest import REDIS_URL, ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chalice_command() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "chalice")
    return beside if os.path.exists(beside) else shutil.which("chalice")


def call(method: str, url: str, body: bytes | None = None, content_type: str = "application/json"):
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def server(redis_client):
    port = free_port()
    process = subprocess.Popen(
        [chalice_command(), "local", "--port", str(port), "--stage", "dev", "--no-autoreload"],
        cwd=ROOT, env={**os.environ, "REDIS_URL": REDIS_URL},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if call("GET", base + "/state-machines")[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise AssertionError("chalice local did not start:\n" + process.stdout.read().decode())
    yield base
    process.terminate()
    process.wait(10)


def test_incsquare_over_http(server):
    status, document = call("POST", server + "/executions",
                            json.dumps({"stateMachine": "incsquare", "input": {"value": 6}}).encode())
    assert status == 200 and document["continuations"][0]["parameters"] == {"value": 49}
    url = document["continuations"][0]["url"]
    assert url.startswith(server + "/continuations/")
    status, done = call("POST", url, b'{"by": "http"}')
    assert (status, done["output"]) == (200, {"value": 50, "by": "http"})
    assert call("POST", url, b"{}")[0] == 409


def test_prototype_curl_calls_over_http(server):
    with open(os.path.join(ROOT, "state_machines", "incsquare.json"), "rb") as handle:
        definition = handle.read()
    status, first = call("POST", server + "/?input=6", definition)
    assert status == 200 and first["value"] == 49
    request = urllib.request.Request(f"{server}/?continuation={first['CONTINUATION']}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        done = json.loads(response.read())
    assert done["value"] == 50 and done["status"] == "SUCCEEDED"


def test_parallel_approval_and_errors_over_http(server):
    status, document = call("POST", server + "/executions",
                            json.dumps({"stateMachine": "parallel-approval", "input": {"id": 1}}).encode())
    for waiting in document["continuations"]:
        status, last = call("POST", waiting["url"], b'{"decision": "approve"}')
        assert status == 200
    assert last["status"] == "SUCCEEDED" and last["output"]["outcome"] == "approved"
    assert call("POST", server + "/executions", b"{broken")[1]["error"] == "MalformedJSON"
    assert call("GET", server + "/continuations/unknown")[0] == 404
