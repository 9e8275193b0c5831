"""Who may call which route: one rules table, applied to every request by one middleware.

Roles:

* ``public``: anyone (the catalog of definitions, validation, the OpenAPI document).
* ``api-key``: a caller with the stage's ``API_KEY`` (``x-api-key``), or with an IAM identity
  when ``AUTH_MODE=iam`` (API Gateway's IAM authorizer checked the signature; the request
  context carries the identity): start, list, read and stop executions, see every continuation,
  publish events (``POST /events``, which starts and resumes executions).
* ``continuation``: the holder of one continuation ID (in the path): read, answer once, fail,
  heartbeat it. The service refuses continuations only it answers (``child``: 403).
* ``decision-link``: the holder of one signed decision link (checked by the handler: 403).
* ``fallback``: anyone; the answers to a method a path does not have (405) and to an unknown
  path (404), declared by ``fallback.install`` (they run nothing and reveal nothing).

``POST /`` (the prototype) is ``api-key`` when it starts an execution (``?input=``) and
``continuation`` when it redeems one (``?continuation=``). With ``X-Amz-Target`` it is the
Step Functions API (``stepfunctions``): ``aws-api`` (the stage's API key, or a valid
Signature Version 4 with a key of ``AWS_ACCESS_KEYS``; nothing when the stage sets
neither), except the task-token operations, which are ``continuation`` (the token in the
body is the continuation ID). Its refusals have AWS's error shape. EventBridge's
``AWSEvents.PutEvents`` there is ``aws-api`` too, its signature scoped to service ``events``.
"""
from __future__ import annotations

import hmac
import json
import os
from typing import Any

from chalice import Response

from ..config import settings
from . import eventbridge, sigv4, stepfunctions

PUBLIC, API_KEY, CONTINUATION, DECISION_LINK = "public", "api-key", "continuation", "decision-link"
FALLBACK = "fallback"
AWS_API = "aws-api"

#: (method, route path) -> role. Every route of the app has a rule (a test checks it); ``install``
#: adds a ``FALLBACK`` rule for each answer ``fallback.install`` declared.
RULES: dict[tuple[str, str], str] = {
    ("POST", "/executions"): API_KEY,
    ("GET", "/executions"): API_KEY,
    ("GET", "/executions/{execution_id}"): API_KEY,
    ("DELETE", "/executions/{execution_id}"): API_KEY,
    ("POST", "/executions/{execution_id}/redrive"): API_KEY,  # as a stop: it starts what the execution calls
    ("POST", "/events"): API_KEY,  # events start and resume executions, as a start does
    ("GET", "/continuations/{continuation}"): CONTINUATION,
    ("POST", "/continuations/{continuation}"): CONTINUATION,
    ("POST", "/continuations/{continuation}/failure"): CONTINUATION,
    ("POST", "/continuations/{continuation}/heartbeat"): CONTINUATION,
    ("GET", "/continuations/{continuation}/decide"): DECISION_LINK,
    ("POST", "/continuations/{continuation}/decide"): DECISION_LINK,
    ("GET", "/state-machines"): PUBLIC,
    ("POST", "/state-machines/validate"): PUBLIC,
    ("GET", "/state-machines/{name}"): PUBLIC,
    ("GET", "/state-machines/{name}/diagram"): PUBLIC,
    ("POST", "/"): API_KEY,  # ?continuation=: CONTINUATION; X-Amz-Target: AWS_API or CONTINUATION; see role_of
    ("GET", "/openapi.json"): PUBLIC,
}


def role_of(method: str, path: str, query: dict | None, operation: str | None = None) -> str | None:
    """The role a request needs; None for a route without a rule (refused).

    ``operation``: the Step Functions operation ``X-Amz-Target`` names on ``POST /``, if any.
    """
    role = RULES.get((method.upper(), path))
    if (method.upper(), path) == ("POST", "/"):
        if operation is not None:
            return CONTINUATION if operation in stepfunctions.TOKEN_OPERATIONS else AWS_API
        if "continuation" in (query or {}):
            return CONTINUATION
    return role


def is_api_caller(request) -> bool:
    """The request carries the stage's API key (or an IAM identity, with ``AUTH_MODE=iam``)."""
    if os.environ.get("AUTH_MODE", "").lower() == "iam":
        identity = ((request.context or {}).get("identity") or {})
        return bool(identity.get("userArn") or identity.get("caller"))
    expected = os.environ.get("API_KEY")
    if not expected:
        return True
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    given = headers.get("x-api-key", "")
    # compare bytes: a non-ASCII header (latin-1 text, or a lone surrogate from an event) is refused, never raises
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def refusal(request) -> Response | None:
    """The 403 answer for a request its role does not allow, else None."""
    context = request.context or {}
    path = context.get("resourcePath") or request.path
    operation = stepfunctions.operation_of(request) if path == "/" else None
    role = role_of(request.method, path, request.query_params, operation)
    if role == AWS_API:
        return _aws_refusal(request)
    if role is None:
        return _forbidden("Forbidden", "This route has no authorization rule.")
    if role == API_KEY and not is_api_caller(request):
        needed = "An IAM-signed request is required." if os.environ.get("AUTH_MODE", "").lower() == "iam" \
            else "A valid x-api-key header is required."
        return _forbidden("Forbidden", needed)
    return None


def _aws_refusal(request) -> Response | None:
    """The Step Functions API's check: the API key, or a SigV4 signature; AWS's 403 otherwise."""
    config = settings()
    key_set = bool(os.environ.get("API_KEY"))
    if not key_set and not config.aws_access_keys:
        return None
    if key_set and _header(request, "x-api-key") is not None and is_api_caller(request):
        return None
    if config.aws_access_keys:
        service = eventbridge.SERVICE if eventbridge.is_target(request) else sigv4.SERVICE
        refused = sigv4.check(request, config.aws_access_keys, service)
        if refused is None:
            return None
        return stepfunctions.error_response(stepfunctions.AwsError(refused[0], refused[1], 403))
    return stepfunctions.error_response(stepfunctions.AwsError(
        "MissingAuthenticationTokenException", "A valid x-api-key header is required.", 403))


def _header(request, name: str) -> str | None:
    return {k.lower(): v for k, v in (request.headers or {}).items()}.get(name)


def _forbidden(code: str, message: str) -> Response:
    body: dict[str, Any] = {"error": code, "message": message}
    return Response(body=json.dumps(body), status_code=403, headers={"Content-Type": "application/json"})


def install(app) -> None:
    """Check every request of ``app`` against :data:`RULES` before its handler runs."""
    from .fallback import is_fallback

    RULES.update({(method, path): FALLBACK for path, methods in app.routes.items()
                  for method, entry in methods.items() if is_fallback(entry)})

    @app.middleware("http")
    def authorize(event, get_response):
        refused = refusal(event)
        return refused if refused is not None else get_response(event)

    if os.environ.get("AUTH_MODE", "").lower() == "iam":
        from chalice import IAMAuthorizer

        authorizer = IAMAuthorizer()
        for path, methods in app.routes.items():
            for method, entry in methods.items():
                if RULES.get((method, path)) == API_KEY:
                    entry.authorizer = authorizer
                    entry.authorizer_name = "AWS_IAM"
