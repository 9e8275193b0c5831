"""The main flows over real HTTP against a `chalice local` process."""
from __future__ import annotations

import http.client
import json
import os
import statistics
import time
import urllib.parse
import urllib.request

import pytest

from ..conftest import ROOT
from ..local_server import call, chalice_local


@pytest.fixture
def server(redis_client, tmp_path):
    with chalice_local(tmp_path / "chalice-local.log") as base:
        yield base


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
    assert last["status"] == "SUCCEEDED" and last["outputPrivate"] is True
    assert call("POST", server + "/executions", b"{broken")[1]["error"] == "MalformedJSON"
    assert call("GET", server + "/continuations/unknown")[0] == 404


def test_keep_alive_requests_are_not_held_back_by_nagle_and_delayed_ack(redis_client, tmp_path):
    """Started with ``make run``'s command: the headers and the body of an answer go out in two
    sends; without TCP_NODELAY the body waits for the client's delayed ACK (about 40 ms)."""
    with chalice_local(tmp_path / "chalice-local.log") as base:
        address = urllib.parse.urlsplit(base)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        seconds = []
        for _ in range(15):
            started = time.perf_counter()
            connection.request("GET", "/state-machines")
            response = connection.getresponse()
            assert response.status == 200
            response.read()
            seconds.append(time.perf_counter() - started)
        connection.close()
    assert statistics.median(seconds) < 0.02, seconds  # 40 ms or more with Nagle on
