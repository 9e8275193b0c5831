"""At the door: header bytes HTTP does not allow are a 400 on any header, never a 500 (Lambda events and raw
sockets against `chalice local`); a keyed stage refuses to run without a source of links; with TRUSTED_HOSTS,
links come only from a host it names."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.parse

import pytest

from ..conftest import REDIS_URL, ROOT
from ..local_server import chalice_local
from ..make_run import free_port, make_run_command
from .test_fallback import lambda_answer
from .test_package import HOST, api_event

START = {"stateMachine": "incsquare", "input": {"value": 6}}
HEADERS = ["Content-Type", "Accept", "Host", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-For", "Cookie",
           "Idempotency-Key", "User-Agent", "X-Anything"]
#: As API Gateway may hand them over: non-ASCII text, lone surrogates (bytes that were not UTF-8), controls.
EVENT_VALUES = ["caf\u00e9", "\u043a\u043b\u044e\u0447", "\udcff", "\ud800", "a\x00b", "a\x7fb", "a\x1bb"]


def event_with(name: str, value: str, method="POST", resource="/executions", path="/executions", body=START):
    event = api_event(method, resource, path, None, body)
    if name in ("Content-Type", "Accept"):
        value = "application/json; " + value
    event["headers"][name] = value
    event["multiValueHeaders"][name] = [value]
    return event


@pytest.mark.parametrize("name", HEADERS)
@pytest.mark.parametrize("value", EVENT_VALUES)
def test_bad_header_text_in_a_lambda_event_is_400_and_starts_nothing(redis_client, name, value):
    status, body, headers = lambda_answer(event_with(name, value))
    assert (status, body["error"]) == (400, "InvalidHeader"), body
    assert name.lower() in body["message"].lower() and headers["Content-Type"] == "application/json"
    assert redis_client.dbsize() == 0  # nothing ran


@pytest.mark.parametrize("route", [("GET", "/state-machines", "/state-machines"),
                                   ("GET", "/openapi.json", "/openapi.json"),
                                   ("PUT", "/executions", "/executions"),
                                   ("GET", "/{proxy+}", "/nope")])
def test_bad_header_text_is_400_on_every_kind_of_route(route):
    method, resource, path = route
    for value in ("\udcff", "a\x00b", "\u00e9"):
        status, body, _ = lambda_answer(event_with("X-Anything", value, method, resource, path, None))
        assert (status, body["error"]) == (400, "InvalidHeader")


def test_a_header_name_that_is_not_a_token_is_400():
    event = api_event("GET", "/state-machines", "/state-machines")
    for name in ("X-Caf\u00e9", "X-\udcff", "X Space"):
        event["headers"] = {**event["headers"], name: "1"}
        event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
        status, body, _ = lambda_answer(event)
        assert (status, body["error"]) == (400, "InvalidHeader")
        del event["headers"][name]


@pytest.mark.parametrize("value", ["\ud800", "\udcff", "caf\u00e9"])
def test_a_bad_api_key_is_403_not_500(monkeypatch, value):
    monkeypatch.setenv("API_KEY", "stage-key")
    monkeypatch.setenv("TRUSTED_HOSTS", HOST)
    status, body, _ = lambda_answer(event_with("x-api-key", value))
    assert (status, body["error"]) == (403, "Forbidden")


def test_ordinary_headers_still_pass(redis_client):
    event = event_with("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)\tok")
    event["headers"]["Cookie"] = event["multiValueHeaders"]["Cookie"] = "a=1; b=\"two\""
    event["multiValueHeaders"]["Cookie"] = [event["headers"]["Cookie"]]
    status, body, _ = lambda_answer(event)
    assert status == 200 and body["status"] == "SUSPENDED"


# -- raw bytes against chalice local ---------------------------------------------------------

@pytest.fixture(scope="module")
def local_server(tmp_path_factory):
    with chalice_local(tmp_path_factory.mktemp("admission") / "chalice-local.log") as base:
        yield urllib.parse.urlsplit(base)


def raw_request(server, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    with socket.create_connection((server.hostname, server.port), timeout=10) as sock:
        sock.sendall(head + b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


RAW_VALUES = [b"\xff\xfe", b"caf\xc3\xa9", b"\x80", b"a\x00b", b"a\x01b", b"a\x7fb"]


@pytest.mark.parametrize("name", [n.encode() for n in HEADERS])
@pytest.mark.parametrize("value", RAW_VALUES)
def test_bad_header_bytes_over_a_socket_are_400(local_server, name, value):
    headers = {b"Host": b"127.0.0.1", b"Content-Type": b"application/json"}
    headers[name] = b"application/json; " + value if name in (b"Content-Type", b"Accept") else value
    head = b"POST /executions HTTP/1.1\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in headers.items())
    status, body = raw_request(local_server, head, json.dumps(START).encode())
    assert status == 400, body
    assert json.loads(body)["error"] == "InvalidHeader"


def test_good_bytes_over_a_socket_still_start(local_server):
    head = b"POST /executions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Note: a\tb ~\r\n"
    status, body = raw_request(local_server, head, json.dumps(START).encode())
    assert status == 200 and json.loads(body)["status"] == "SUSPENDED"


# -- a keyed stage and where its links come from ----------------------------------------------

def test_a_keyed_stage_without_a_source_of_links_refuses_every_request(client, monkeypatch):
    monkeypatch.setenv("API_KEY", "stage-key")
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    monkeypatch.delenv("TRUSTED_HOSTS", raising=False)
    for method, path, body in [("GET", "/state-machines", None), ("POST", "/executions", json.dumps(START))]:
        response = client.http.request(method, path, body=body,
                                       headers={"x-api-key": "stage-key", "Content-Type": "application/json"})
        answer = json.loads(response.body)
        assert (response.status_code, answer["error"]) == (500, "ConfigurationError")
        assert "TRUSTED_HOSTS" in answer["message"] and "PUBLIC_BASE_URL" in answer["message"]


@pytest.fixture
def trusting(client, monkeypatch):
    monkeypatch.setenv("API_KEY", "stage-key")
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    monkeypatch.setenv("TRUSTED_HOSTS", "api.example.com, localhost:8000")
    return client


def start_with(client, **headers):
    response = client.http.post("/executions", body=json.dumps(START), headers={
        "x-api-key": "stage-key", "Content-Type": "application/json", **headers})
    return response.status_code, json.loads(response.body)


@pytest.mark.parametrize("headers,base", [
    ({"Host": "api.example.com"}, "http://api.example.com"),
    ({"Host": "API.example.com:8443", "X-Forwarded-Proto": "https"}, "https://API.example.com:8443"),
    ({"Host": "localhost:8000"}, "http://localhost:8000"),
    ({"Host": "10.0.0.7", "X-Forwarded-Host": "api.example.com"}, "http://api.example.com"),
])
def test_links_take_a_trusted_host(trusting, headers, base):
    status, document = start_with(trusting, **headers)
    assert status == 200
    [waiting] = document["continuations"]
    assert waiting["url"] == f"{base}/continuations/{waiting['id']}"


@pytest.mark.parametrize("headers", [{"Host": "evil.example"}, {"Host": "localhost:9000"}, {},
                                     {"Host": "api.example.com", "X-Forwarded-Host": "evil.example"},
                                     {"Host": "api.example.com.evil.example"}])
def test_an_untrusted_host_is_400_and_starts_nothing(trusting, redis_client, headers):
    status, answer = start_with(trusting, **headers)
    assert (status, answer["error"]) == (400, "UntrustedHost")
    assert redis_client.dbsize() == 0


def test_public_base_url_needs_no_trusted_host(client, monkeypatch):
    monkeypatch.setenv("API_KEY", "stage-key")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://approvals.example.com")
    status, document = start_with(client, Host="evil.example")
    assert status == 200 and document["continuations"][0]["url"].startswith("https://approvals.example.com/")


def test_chalice_local_refuses_to_start_a_keyed_stage_without_a_source_of_links(redis_client):
    env = {**os.environ, "REDIS_URL": REDIS_URL, "API_KEY": "stage-key"}
    env.pop("PUBLIC_BASE_URL", None)
    env.pop("TRUSTED_HOSTS", None)
    process = subprocess.run(make_run_command(free_port()), cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=60)
    assert process.returncode != 0
    assert "refusing to start" in process.stderr + process.stdout
    assert "TRUSTED_HOSTS" in process.stderr + process.stdout


@pytest.mark.parametrize("extra,fails", [({}, True), ({"TRUSTED_HOSTS": HOST}, False),
                                         ({"PUBLIC_BASE_URL": "https://approvals.example.com"}, False)])
def test_the_deployed_function_fails_its_cold_start_when_keyed_without_a_source_of_links(extra, fails):
    env = {k: v for k, v in os.environ.items() if k not in ("PUBLIC_BASE_URL", "TRUSTED_HOSTS",
                                                             "AWS_CHALICE_CLI_MODE")}
    env.update({"AWS_LAMBDA_FUNCTION_NAME": "asl-continuations-prod", "API_KEY": "stage-key", **extra})
    process = subprocess.run([sys.executable, "-c", "import app"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=60)
    assert (process.returncode != 0) == fails, process.stderr
    if fails:
        assert "ConfigurationError" in process.stderr and "TRUSTED_HOSTS" in process.stderr
