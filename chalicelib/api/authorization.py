"""Who may call which route: one rules table, applied to every request by one middleware.

Roles:

* ``public``: anyone (the catalog of definitions, validation, the OpenAPI document).
* ``api-key``: a caller with the stage's ``API_KEY`` (``x-api-key``), or with an IAM identity
  when ``AUTH_MODE=iam`` (API Gateway's IAM authorizer checked the signature; the request
  context carries the identity): start, list, read and stop executions, see every continuation.
* ``continuation``: the holder of one continuation ID (in the path): read, answer once, fail,
  heartbeat it. The service refuses continuations only it answers (``child``: 403).
* ``decision-link``: the holder of one signed decision link (checked by the handler: 403).
* ``fallback``: anyone; the answers to a method a path does not have (405) and to an unknown
  path (404), declared by ``fallback.install`` (they run nothing and reveal nothing).

``POST /`` (the prototype) is ``api-key`` when it starts an execution (``?input=``) and
``continuation`` when it redeems one (``?continuation=``).
"""
from __future__ import annotations

import hmac
import json
import os
from typing import Any

from chalice import Response

PUBLIC, API_KEY, CONTINUATION, DECISION_LINK = "public", "api-key", "continuation", "decision-link"
FALLBACK = "fallback"

#: (method, route path) -> role. Every route of the app has a rule (a test checks it); ``install``
#: adds a ``FALLBACK`` rule for each answer ``fallback.install`` declared.
RULES: dict[tuple[str, str], str] = {
    ("POST", "/executions"): API_KEY,
    ("GET", "/executions"): API_KEY,
    ("GET", "/executions/{execution_id}"): API_KEY,
    ("DELETE", "/executions/{execution_id}"): API_KEY,
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
    ("POST", "/"): API_KEY,  # with ?continuation= it is CONTINUATION, see role_of
    ("GET", "/openapi.json"): PUBLIC,
}


def role_of(method: str, path: str, query: dict | None) -> str | None:
    """The role a request needs; None for a route without a rule (refused)."""
    role = RULES.get((method.upper(), path))
    if (method.upper(), path) == ("POST", "/") and "continuation" in (query or {}):
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
    # compare bytes: a non-ASCII header (as latin-1 text) must be refused, not raise
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def refusal(request) -> Response | None:
    """The 403 answer for a request its role does not allow, else None."""
    context = request.context or {}
    path = context.get("resourcePath") or request.path
    role = role_of(request.method, path, request.query_params)
    if role is None:
        return _forbidden("Forbidden", "This route has no authorization rule.")
    if role == API_KEY and not is_api_caller(request):
        needed = "An IAM-signed request is required." if os.environ.get("AUTH_MODE", "").lower() == "iam" \
            else "A valid x-api-key header is required."
        return _forbidden("Forbidden", needed)
    return None


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
