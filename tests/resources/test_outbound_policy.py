"""Where HTTP Tasks may connect: public addresses by default, ALLOWED_HTTP_HOSTS opens others.

Every test here runs behind a tripwire: a connection to any address outside loopback is
recorded and never made, so no test sends traffic anywhere but this machine.
"""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from .test_resources import go, task

HTTP = "arn:aws:states:::http:invoke"
REFUSED = "Http.DestinationNotAllowed"


@pytest.fixture(autouse=True)
def tripwire(monkeypatch):
    """Records every connect() outside loopback and refuses it; loopback connects go through."""
    attempts: list = []
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host.removeprefix("::ffff:").startswith("127.") or host == "::1":
            return real_connect(sock, address)
        attempts.append(address)
        raise ConnectionRefusedError("the test's tripwire: only loopback is reached")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.delenv("ALLOWED_HTTP_HOSTS", raising=False)
    return attempts


class Endpoint:
    """A local HTTP server: /json answers JSON; /to?url=U redirects there (status ?code=, default 302);
    /hop/N redirects to /hop/N-1 until /hop/0, which answers JSON."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.requests: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else None
                parts = urlsplit(self.path)
                endpoint.requests.append({"method": self.command, "path": parts.path, "body": body,
                                          "headers": {k.lower(): v for k, v in self.headers.items()}})
                query = parse_qs(parts.query)
                if parts.path == "/to":
                    return self.answer(int(query.get("code", ["302"])[0]), b"", {"Location": query["url"][0]})
                if parts.path.startswith("/hop/") and parts.path != "/hop/0":
                    return self.answer(302, b"", {"Location": f"/hop/{int(parts.path[5:]) - 1}"})
                data = json.dumps({"method": self.command, "host": self.headers.get("Host")}).encode()
                return self.answer(200, data, {"Content-Type": "application/json"})

            def answer(self, status, data, headers):
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = handle_any

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def endpoint():
    running = Endpoint()
    yield running
    running.close()


def call(url: str, method: str = "GET", **parameters) -> dict:
    return go(task(HTTP, Parameters={"ApiEndpoint": url, "Method": method, **parameters}))


def assert_refused(result: dict, *mentions: str) -> None:
    assert result["status"] == "FAILED", result
    assert result["error"] == REFUSED, result
    assert "ALLOWED_HTTP_HOSTS" in result["cause"], result
    for mention in mentions:
        assert mention in result["cause"], (mention, result["cause"])


# Spellings of 127.0.0.1 that resolvers read as it (inet_aton forms, IPv4-mapped IPv6), and ::1.
LOOPBACK_SPELLINGS = ["127.0.0.1", "localhost", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001",
                      "127.1", "127.0.1", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]"]


def test_loopback_in_any_spelling_is_refused_by_default_and_nothing_reaches_it(endpoint, tripwire):
    for host in LOOPBACK_SPELLINGS:
        result = call(f"http://{host}:{endpoint.port}/json")
        assert_refused(result, "loopback")
    assert endpoint.requests == []
    assert_refused(call("http://[::1]:9/json"), "::1", "loopback")
    assert tripwire == []


NON_PUBLIC = {
    "169.254.169.254": "link-local",        # the instance metadata service
    "169.254.170.2": "link-local",          # the ECS task metadata endpoint
    "[fd00:ec2::254]": "private",           # the metadata service over IPv6
    "10.0.0.1": "private", "172.16.5.4": "private", "192.168.1.1": "private",
    "100.64.0.1": "shared (CGNAT)", "100.127.255.254": "shared (CGNAT)",
    "224.0.0.1": "multicast", "[ff02::1]": "multicast",
    "240.0.0.1": "reserved", "255.255.255.255": "reserved",
    "0.0.0.0": "unspecified", "[::]": "unspecified", "0": "unspecified",
    "[fc00::1]": "private", "[fe80::1]": "link-local",
    "[::ffff:169.254.169.254]": "link-local", "[::ffff:10.1.2.3]": "private",
    "[64:ff9b::a9fe:a9fe]": "link-local",   # NAT64 spelling of 169.254.169.254
    "[2002:a9fe:a9fe::]": "link-local",     # 6to4 spelling of it
    "2852039166": "link-local",             # 169.254.169.254 as one decimal number
    "0251.0376.0251.0376": "link-local",    # ... in octal
    "0xa9.0xfe.0xa9.0xfe": "link-local",    # ... in hex
    "192.0.2.10": "private", "198.18.0.1": "private",
}


def test_non_public_addresses_are_refused_before_any_connection(tripwire):
    for host, kind in NON_PUBLIC.items():
        result = call(f"http://{host}/latest/meta-data/", "POST", RequestBody={"x": 1})
        assert_refused(result, kind)
        assert "/latest/meta-data/" in result["cause"] and "POST" in result["cause"]
    assert tripwire == []  # not one connection was tried


def test_https_urls_are_checked_as_well(tripwire):
    assert_refused(call("https://169.254.169.254/"), "link-local")
    assert_refused(call("https://[::1]/"), "loopback")
    assert tripwire == []


def test_a_refusal_is_not_a_socket_error_so_retrying_on_socket_errors_does_not_repeat_it(tripwire):
    definition = task(HTTP, Parameters={"ApiEndpoint": "http://10.0.0.1/", "Method": "GET"},
                      Retry=[{"ErrorEquals": ["States.Http.Socket"], "MaxAttempts": 3}],
                      Catch=[{"ErrorEquals": [REFUSED], "Next": "Caught"}])
    result = go(definition)
    assert result["status"] == "SUCCEEDED" and result["output"]["Error"] == REFUSED, result
    assert tripwire == []


def test_allowed_http_hosts_opens_names_addresses_and_cidr_blocks(endpoint, monkeypatch, tripwire):
    for allowed in ("127.0.0.1", "127.0.0.0/8", " 10.0.0.0/8 , 127.0.0.1/32 ", "::ffff:127.0.0.1"):
        monkeypatch.setenv("ALLOWED_HTTP_HOSTS", allowed)
        for host in ("127.0.0.1", "2130706433", "127.1", "[::ffff:127.0.0.1]"):
            result = call(f"http://{host}:{endpoint.port}/json")
            assert result["status"] == "SUCCEEDED", (allowed, host, result)
    # A host name is matched against the URL's host, whatever it resolves to.
    monkeypatch.setenv("ALLOWED_HTTP_HOSTS", "LocalHost")
    assert call(f"http://localhost:{endpoint.port}/json")["status"] == "SUCCEEDED"
    assert_refused(call(f"http://127.0.0.1:{endpoint.port}/json"), "loopback")
    # An allowed block opens only itself.
    monkeypatch.setenv("ALLOWED_HTTP_HOSTS", "127.0.0.1,10.1.0.0/16")
    assert_refused(call("http://10.2.0.1/"), "private")
    assert_refused(call("http://169.254.169.254/"), "link-local")
    assert len(endpoint.requests) == 4 * 4 + 1 and tripwire == []


def test_every_redirect_hop_is_checked(endpoint, monkeypatch, tripwire):
    monkeypatch.setenv("ALLOWED_HTTP_HOSTS", "127.0.0.1")
    other = Endpoint("127.0.0.2")  # loopback too, but not allowed: stands for an internal service
    try:
        for target in ("http://169.254.169.254/latest/meta-data/iam/", f"{other.url}/json",
                       f"http://2130706434:{other.port}/json", "http://[::ffff:10.0.0.1]/",
                       f"http://[::1]:{endpoint.port}/json"):
            for code in (301, 302, 303, 307, 308):
                redirect = f"{endpoint.url}/to?code={code}&url={target}"
                assert_refused(call(redirect, "POST", RequestBody={"a": 1}))
        assert other.requests == [] and tripwire == []
        assert len(endpoint.requests) == 5 * 5
    finally:
        other.close()


def test_redirects_are_followed_to_allowed_hosts_up_to_a_limit(endpoint, monkeypatch, tripwire):
    monkeypatch.setenv("ALLOWED_HTTP_HOSTS", "127.0.0.1")
    followed = call(f"{endpoint.url}/hop/5")
    assert followed["status"] == "SUCCEEDED", followed
    assert [r["path"] for r in endpoint.requests] == ["/hop/5", "/hop/4", "/hop/3", "/hop/2", "/hop/1", "/hop/0"]
    endpoint.requests.clear()
    too_many = call(f"{endpoint.url}/hop/6")
    assert too_many["status"] == "FAILED" and too_many["error"] == "States.Http.Socket", too_many
    assert "redirects" in too_many["cause"] and len(endpoint.requests) == 6
    # 303 turns a POST into a GET without its body; 307 keeps both.
    endpoint.requests.clear()
    seen = call(f"{endpoint.url}/to?code=303&url=/json", "POST", RequestBody={"a": 1})
    assert seen["output"]["ResponseBody"]["method"] == "GET"
    kept = call(f"{endpoint.url}/to?code=307&url=/json", "POST", RequestBody={"a": 1})
    assert kept["output"]["ResponseBody"]["method"] == "POST"
    assert [(r["method"], r["body"]) for r in endpoint.requests] == [
        ("POST", '{"a":1}'), ("GET", None), ("POST", '{"a":1}'), ("POST", '{"a":1}')]


def test_credentials_are_not_sent_on_to_another_host(endpoint, monkeypatch):
    monkeypatch.setenv("ALLOWED_HTTP_HOSTS", "127.0.0.1,127.0.0.2")
    other = Endpoint("127.0.0.2")
    try:
        call(f"{endpoint.url}/to?url={other.url}/json", Headers={"Authorization": "Bearer s3cret", "X-Trace": "t"})
        assert endpoint.requests[0]["headers"]["authorization"] == "Bearer s3cret"
        assert "authorization" not in other.requests[0]["headers"]
        assert other.requests[0]["headers"]["x-trace"] == "t"
    finally:
        other.close()


def test_the_address_checked_is_the_address_connected_to(monkeypatch, tripwire):
    """DNS rebinding: a name answering an allowed address once and a refused one the next time
    (or the other way round) is connected to at the address that was checked, Host kept."""
    monkeypatch.setenv("ALLOWED_HTTP_HOSTS", "127.0.0.1")
    allowed = Endpoint("127.0.0.1")
    internal = Endpoint("127.0.0.2", allowed.port)  # same port: only the address differs
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(answers):
        def getaddrinfo(host, port, *args, **kwargs):
            if host != "rebind.test":
                return real_getaddrinfo(host, port, *args, **kwargs)
            lookups.append(host)
            address = answers[min(len(lookups) - 1, len(answers) - 1)]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return getaddrinfo

    try:
        url = f"http://rebind.test:{allowed.port}/json"
        monkeypatch.setattr(socket, "getaddrinfo", rebinding(["127.0.0.2", "127.0.0.1"]))
        assert_refused(call(url), "127.0.0.2", "rebind.test")
        assert lookups == ["rebind.test"]
        lookups.clear()
        monkeypatch.setattr(socket, "getaddrinfo", rebinding(["127.0.0.1", "127.0.0.2"]))
        result = call(url)
        assert result["status"] == "SUCCEEDED", result
        assert result["output"]["ResponseBody"]["host"] == f"rebind.test:{allowed.port}"
        assert lookups == ["rebind.test"]
        assert internal.requests == [] and len(allowed.requests) == 1 and tripwire == []
    finally:
        allowed.close()
        internal.close()


def test_a_name_with_any_allowed_address_is_connected_at_that_address(endpoint, monkeypatch, tripwire):
    real_getaddrinfo = socket.getaddrinfo

    def two_answers(host, port, *args, **kwargs):
        if host != "mixed.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.9.9.9", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", two_answers)
    monkeypatch.setenv("ALLOWED_HTTP_HOSTS", "127.0.0.1")
    assert call(f"http://mixed.test:{endpoint.port}/json")["status"] == "SUCCEEDED"
    monkeypatch.delenv("ALLOWED_HTTP_HOSTS")
    assert_refused(call(f"http://mixed.test:{endpoint.port}/json"), "10.9.9.9 (private)", "127.0.0.1 (loopback)")
    assert tripwire == [] and len(endpoint.requests) == 1


def test_the_dev_stage_allows_loopback_only_and_the_webhook_example_is_checked(client, endpoint, tripwire,
                                                                                 monkeypatch):
    """chalice local's dev stage lets a definition call a mock on this machine, nothing else."""
    from .test_resources import closed_port

    for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "testing"),
                        ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")):  # SES answers nothing
        monkeypatch.setenv(name, value)
    def notify(webhook):
        response = client.http.post("/executions", headers={"Content-Type": "application/json"}, body=json.dumps({
            "stateMachine": "order-notification",
            "input": {"webhook": webhook, "order": {"id": 7}, "customer": "kim@example.com",
                      "sender": "orders@example.com"}}))
        assert response.status_code == 200, response.body
        return response.json_body

    for webhook in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/hook", "http://[fd00::1]/"):
        document = notify(webhook)
        assert document["status"] == "FAILED" and document["error"] == "Notification.Failed", document
        assert json.loads(document["cause"])["Error"] == REFUSED
    assert tripwire == [] and endpoint.requests == []
    notify(f"{endpoint.url}/json")
    assert [r["body"] for r in endpoint.requests] == ['{"id":7}']
