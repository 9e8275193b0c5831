"""The OpenAPI document is true to the routes, and a real server answers generated requests as it says.

The generated requests (schemathesis: valid ones, and invalid ones made from the
document) go to a real ``chalice local``. Every answer must be one the document
describes (status, content type, body) and none may be a 5xx. Requests on
``{continuation}`` and ``{execution_id}`` paths get, where their path is valid, a
real waiting continuation or suspended execution in place of the generated ID, so
hostile bodies and forms reach real questions.
"""
from __future__ import annotations

import itertools
import json
import re
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate as validate_openapi
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from app import app
from chalicelib.api import fallback, openapi

from ..local_server import call, chalice_local

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]
MAX_EXAMPLES = 50
APPROVAL_INPUT = {"item": "laptop", "requester": "ann", "reason": "the old one broke"}


#: (path, METHOD) -> operation, as the document has them.
OPERATIONS = {(path, method.upper()): operation for path, item in openapi.document()["paths"].items()
              for method, operation in item.items() if method != "parameters"}
#: The operations that answer browsers with HTML pages.
PAGES = {key for key, operation in OPERATIONS.items()
         if any("text/html" in response["content"] for response in operation["responses"].values())}


def test_the_document_names_exactly_the_routes_of_the_app():
    """Every operation; the fallback answers (405 for a path's other methods, 404 for unknown paths) are
    described in the document's description, not listed as operations."""
    routes = {(path, method) for path, methods in app.routes.items() for method, entry in methods.items()
              if not fallback.is_fallback(entry)}
    assert routes and set(OPERATIONS) == routes
    fallbacks = {(path, method) for path, methods in app.routes.items() for method in methods} - routes
    assert (fallback.UNKNOWN_PATH, "GET") in fallbacks and ("/executions", "PUT") in fallbacks
    description = openapi.document()["info"]["description"]
    assert "405 MethodNotAllowed" in description and "404 RouteNotFound" in description


def test_the_document_is_valid_openapi_and_every_schema_is_used():
    document = openapi.document("http://127.0.0.1:8000")
    validate_openapi(document)
    text = json.dumps(document)
    for name in openapi.SCHEMAS:
        assert f"\"#/components/schemas/{name}\"" in text, f"{name} is never used"
    unknown = {ref for ref in _refs(document) if ref.split("/")[-1] not in openapi.SCHEMAS}
    assert not unknown


def _refs(value):
    if isinstance(value, dict):
        if "$ref" in value:
            yield value["$ref"]
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def test_every_route_documents_its_errors_with_the_error_body():
    """415 everywhere, 400/413 where a body is read, 503 where Redis is (no test server produces 413 or 503 by
    chance), and every JSON error is the one error body."""
    for (path, method), operation in OPERATIONS.items():
        statuses = set(operation["responses"])
        assert "415" in statuses, (method, path)
        if "requestBody" in operation:
            assert {"400", "413"} <= statuses, (method, path)
        if path.startswith(("/executions", "/continuations")) or path == "/":
            assert "503" in statuses, (method, path)
        for status, response in operation["responses"].items():
            body = response["content"].get("application/json")
            if status.startswith(("4", "5")) and status != "415" and body is not None:
                assert "#/components/schemas/Error" in json.dumps(body), (method, path, status)


def test_post_slash_documents_the_step_functions_api(client):
    """POST / names in X-Amz-Target the operations the server serves and no other Step Functions operation,
    the JSON 1.0 media type for the request and its answers, and AWS's error shape for the errors."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("stepfunctions")
    post = json.loads(client.http.get("/openapi.json").body)["paths"]["/"]["post"]
    [target] = [p for p in post["parameters"] if p["name"] == "X-Amz-Target"]
    assert target["in"] == "header" and target["required"] is False
    named = set(target["schema"]["enum"])
    served = set()
    for operation in model.operation_names:
        response = client.http.post("/", body="{}", headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AWSStepFunctions.{operation}"})
        if json.loads(response.body).get("__type") != "UnknownOperationException":
            served.add(f"AWSStepFunctions.{operation}")
    assert len(served) >= 19
    assert named == served | {"AWSEvents.PutEvents"}
    assert "application/x-amz-json-1.0" in post["requestBody"]["content"]
    for status in ("200", "400", "403", "503"):
        schema = post["responses"][status]["content"]["application/x-amz-json-1.0"]["schema"]
        if status != "200":
            assert schema == {"$ref": "#/components/schemas/AwsError"}, status


# -- what the generated requests found ---------------------------------------------------------

def post_json(client, path: str, body: str, **headers):
    return client.http.post(path, body=body, headers={"Content-Type": "application/json", **headers})


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_numbers_json_cannot_carry_are_refused_before_anything_runs(client, redis_client, number):
    """Python's parser takes them, but no JSON answer could carry them back (the document echoed ``NaN``)."""
    response = post_json(client, "/executions", f'{{"stateMachine": "incsquare", "input": {{"value": {number}}}}}')
    assert (response.status_code, json.loads(response.body)["error"]) == (400, "MalformedJSON")
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    response = post_json(client, f"/?input={number}", definition)
    assert (response.status_code, json.loads(response.body)["error"]) == (400, "InvalidRequest")
    assert redis_client.dbsize() == 0


def test_large_finite_numbers_still_run(client):
    response = post_json(client, "/?input=1e300", json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass",
                                                                                             "End": True}}}))
    assert (response.status_code, json.loads(response.body)["value"]) == (200, 1e300)


def test_a_decision_link_with_a_non_ascii_signature_is_refused_not_a_server_error(client):
    document = json.loads(post_json(client, "/executions", json.dumps(
        {"stateMachine": "approval", "input": APPROVAL_INPUT})).body)
    ident = document["continuations"][0]["id"]
    link = f"/continuations/{ident}/decide?choice=approve&sig=%C3%A4%F0%9F%94%91"
    for response in (client.http.get(link), client.http.post(link, body=b""),
                     client.http.get(link, headers={"Accept": "text/html"})):
        assert response.status_code == 403
    assert json.loads(client.http.get(link).body)["error"] == "InvalidSignature"
    assert json.loads(client.http.get(f"/continuations/{ident}").body)["status"] == "waiting"


# -- against a real server ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with chalice_local(tmp_path_factory.mktemp("openapi") / "chalice-local.log") as base:
        yield base


def test_the_server_serves_the_document_as_json(server):
    response = requests.get(server + "/openapi.json", timeout=10)
    assert (response.status_code, response.headers["Content-Type"]) == (200, "application/json")
    assert response.json() == openapi.document(server)


def test_every_route_answers_a_content_type_it_does_not_take_with_the_documented_415(server):
    for path, method in OPERATIONS:
        response = requests.request(method, server + re.sub(r"{[^}]+}", "x", path), data=b"{}",
                                    headers={"Content-Type": "text/plain"}, timeout=10)
        assert response.status_code == 415, (method, path)
        assert_documented(method, path, response)


def assert_documented(method: str, path: str, response: requests.Response) -> None:
    """The status and content type are documented for the operation, and the body fits its schema."""
    documented = OPERATIONS[(path, method)]["responses"].get(str(response.status_code))
    assert documented, f"{method} {path} answered {response.status_code}, which is not documented"
    assert response.headers["Content-Type"].split(";")[0] in documented["content"], (method, path, response.headers)
    schema[path][method].validate_response(response)


def test_answers_generated_requests_rarely_reach_are_documented_too(server):
    """Too large, aborted, already finished, a resource the stage does not allow: each as documented."""
    def send(method: str, path: str, concrete: str, body=None, **headers) -> requests.Response:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        response = requests.request(method, server + concrete, data=data, timeout=10,
                                    headers={"Content-Type": "application/json", **headers})
        assert_documented(method, path, response)
        return response

    too_large = b'{"stateMachine": "incsquare", "input": "' + b"x" * (256 * 1024) + b'"}'
    assert send("POST", "/executions", "/executions", too_large).status_code == 413
    lambda_call = {"StartAt": "L", "States": {"L": {"Type": "Task", "End": True,
                                                    "Resource": "arn:aws:lambda:eu-west-1:123456789012:function:f"}}}
    assert send("POST", "/executions", "/executions", {"definition": lambda_call}).status_code == 403
    document = RealTargets(server).waiting()
    execution, ident = document["executionId"], document["continuations"][0]["id"]
    assert send("DELETE", "/executions/{execution_id}", f"/executions/{execution}").json()["status"] == "ABORTED"
    assert send("DELETE", "/executions/{execution_id}", f"/executions/{execution}").status_code == 409
    assert send("GET", "/executions/{execution_id}", f"/executions/{execution}").json()["history"]
    for accept in ("application/json", "text/html"):
        assert send("POST", "/continuations/{continuation}", f"/continuations/{ident}", {},
                    Accept=accept).status_code == 410
        assert send("GET", "/continuations/{continuation}", f"/continuations/{ident}",
                    Accept=accept).status_code == (200 if accept == "application/json" else 410)
    assert send("POST", "/continuations/{continuation}/failure", f"/continuations/{ident}/failure",
                {"error": "E"}).status_code == 410
    heartbeat = f"/continuations/{ident}/heartbeat"
    assert send("POST", "/continuations/{continuation}/heartbeat", heartbeat).status_code == 410
    assert send("POST", "/", f"/?continuation={ident}").status_code == 410


class RealTargets:
    """Fresh waiting continuations and executions of the approval example, made on demand."""

    def __init__(self, base: str):
        self.base = base
        self.turn = itertools.count()

    def waiting(self) -> dict:
        status, document = call("POST", self.base + "/executions",
                                json.dumps({"stateMachine": "approval", "input": APPROVAL_INPUT}).encode())
        assert status == 200 and document["status"] == "SUSPENDED", document
        return document

    def substitute(self, case) -> None:
        """On every other case whose path is valid, aim it at a real continuation or execution."""
        path = case.path_parameters or {}
        if not ({"continuation", "execution_id"} & set(path)) or case.meta.is_negative_at(ParameterLocation.PATH):
            return
        if next(self.turn) % 2:
            return
        document = self.waiting()
        if "execution_id" in path:
            path["execution_id"] = document["executionId"]
            return
        waiting = document["continuations"][0]
        path["continuation"] = waiting["id"]
        if case.path.endswith("/decide") and not case.meta.is_negative_at(ParameterLocation.QUERY):
            signed = parse_qsl(urlsplit(waiting["decisions"]["approve"]).query)
            case.query = {**(case.query or {}), **dict(signed)}


@pytest.fixture(scope="module")
def targets(server):
    return RealTargets(server)


@schemathesis.serializer("application/x-amz-json-1.0", "application/x-amz-json-1.1")
def aws_json(ctx, value) -> bytes:
    """The Step Functions API's and EventBridge's bodies are JSON under their own media types."""
    return json.dumps(value).encode()


# TRACE and QUERY never reach the app: the dev server answers them 501 itself (API Gateway refuses them).
CONFIG = schemathesis.Config.from_dict({
    "seed": 20240601,
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    "phases": {"coverage": {"unexpected-methods": ["get", "put", "post", "delete", "patch", "options"]}},
})
schema = schemathesis.openapi.from_dict(openapi.document(), config=CONFIG)


@settings(deadline=None, suppress_health_check=list(HealthCheck))
@schema.parametrize()
def test_every_answer_is_documented_and_none_is_a_server_error(case, server, targets):
    targets.substitute(case)
    case.call_and_validate(base_url=server, checks=CHECKS)
    if (case.path, case.method.upper()) in PAGES:  # what a browser gets: HTML pages where the document says so
        case.call_and_validate(base_url=server, checks=CHECKS, headers={"Accept": "text/html"})
