"""Unknown paths and wrong methods answer in the service's own error format, through the Lambda
handler (API Gateway proxy events, as deployed) and under `chalice local` (started as ``make run``
starts it), whatever the request's Content-Type."""
from __future__ import annotations

import http.client
import json
import urllib.parse

import pytest

from chalicelib.api import fallback

from ..local_server import chalice_local
from .test_package import HOST, api_event


class Context:
    function_name = "asl-continuations-dev"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self):
        return 28000


def lambda_answer(event: dict) -> tuple[int, dict, dict]:
    from app import app

    response = app(event, Context())
    return response["statusCode"], json.loads(response["body"]), response["headers"]


@pytest.mark.parametrize("method,resource,path,parameters,allow", [
    ("PUT", "/executions", "/executions", None, "GET, POST"),
    ("DELETE", "/state-machines/validate", "/state-machines/validate", None, "POST"),
    ("GET", "/", "/", None, "POST"),
    ("PATCH", "/executions/{execution_id}", "/executions/abc", {"execution_id": "abc"}, "GET, DELETE"),
    ("GET", "/continuations/{continuation}/failure", "/continuations/K/failure", {"continuation": "K"}, "POST"),
    ("DELETE", "/state-machines/{name}", "/state-machines/incsquare", {"name": "incsquare"}, "GET"),
])
def test_a_wrong_method_is_405_with_allow_through_the_lambda_handler(method, resource, path, parameters, allow):
    status, body, headers = lambda_answer(api_event(method, resource, path, parameters))
    assert status == 405
    assert body["error"] == "MethodNotAllowed" and set(body) == {"error", "message"}
    assert headers["Allow"] == allow and headers["Content-Type"] == "application/json"


def test_an_unknown_path_is_404_through_the_lambda_handler():
    for method in ("GET", "POST", "DELETE"):
        event = api_event(method, fallback.UNKNOWN_PATH, "/a/b/c", {"proxy": "a/b/c"})
        status, body, headers = lambda_answer(event)
        assert (status, body["error"]) == (404, "RouteNotFound")
        assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded"])
def test_the_fallbacks_answer_json_whatever_the_content_type(content_type):
    for method, resource, path, parameters, status in [("PUT", "/executions", "/executions", None, 405),
                                                       ("POST", fallback.UNKNOWN_PATH, "/nope", {"proxy": "nope"}, 404)]:
        event = api_event(method, resource, path, parameters)
        event["headers"]["Content-Type"] = content_type
        event["multiValueHeaders"]["Content-Type"] = [content_type]
        event["body"] = "<a>not json</a>"
        answer_status, body, headers = lambda_answer(event)
        assert answer_status == status and headers["Content-Type"] == "application/json"
        assert body["error"] in ("MethodNotAllowed", "RouteNotFound")


def test_the_fallbacks_need_no_api_key_and_reveal_nothing(monkeypatch):
    monkeypatch.setenv("API_KEY", "stage-key")
    monkeypatch.setenv("TRUSTED_HOSTS", HOST)
    status, body, _ = lambda_answer(api_event("PUT", "/executions/{execution_id}", "/executions/x",
                                              {"execution_id": "x"}))
    assert (status, body["error"]) == (405, "MethodNotAllowed")
    status, _, _ = lambda_answer(api_event("GET", "/executions/{execution_id}", "/executions/x",
                                           {"execution_id": "x"}))
    assert status == 403  # the real route still needs the key


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with chalice_local(tmp_path_factory.mktemp("fallback") / "chalice-local.log") as base:
        yield urllib.parse.urlsplit(base)


def local(server, method: str, path: str, body: bytes | None = None, content_type: str | None = None):
    connection = http.client.HTTPConnection(server.hostname, server.port, timeout=10)
    headers = {"Content-Type": content_type} if content_type else {}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, response.headers, data


@pytest.mark.parametrize("method,path,allow", [
    ("PUT", "/executions", "GET, POST"),
    ("GET", "/", "POST"),
    ("POST", "/state-machines", "GET"),
    ("PUT", "/continuations/K", "GET, POST"),
    ("GET", "/continuations/K/heartbeat", "POST"),
    ("OPTIONS", "/openapi.json", "GET"),
])
def test_a_wrong_method_is_405_with_allow_under_chalice_local(server, method, path, allow):
    status, headers, data = local(server, method, path, b"x", "text/plain")
    assert status == 405 and headers["Allow"] == allow
    assert headers["Content-Type"] == "application/json"
    assert json.loads(data)["error"] == "MethodNotAllowed"


def test_head_of_a_post_only_path_is_405_under_chalice_local(server):
    status, headers, _ = local(server, "HEAD", "/state-machines/validate")
    assert status == 405 and headers["Allow"] == "POST"


@pytest.mark.parametrize("path", ["/nope", "/a/b/c", "/continuations/K/decide/more", "/executions/x/y",
                                  "/state-machines/incsquare/diagram/z"])
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json"])
def test_an_unknown_path_is_404_under_chalice_local(server, path, content_type):
    for method in ("GET", "POST", "DELETE"):
        status, headers, data = local(server, method, path, b"{}" if method == "POST" else None, content_type)
        assert status == 404, (method, path, data)
        assert headers["Content-Type"] == "application/json"
        assert json.loads(data)["error"] == "RouteNotFound"


def test_known_routes_still_answer_under_chalice_local(server):
    status, _, data = local(server, "GET", "/state-machines/incsquare")
    assert status == 200 and json.loads(data)["name"] == "incsquare"
    status, _, data = local(server, "GET", "/state-machines/nothing-here")
    assert (status, json.loads(data)["error"]) == (404, "StateMachineNotFound")
