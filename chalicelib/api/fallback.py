"""Answers for requests no route of the API takes, in the service's own error format.

* A known path with a method it does not have: ``405 MethodNotAllowed`` with an ``Allow`` header.
* Any other path: ``404 RouteNotFound``.

API Gateway hands the function only the methods and paths the API declares, and answers anything
else itself (``403 {"message": "Missing Authentication Token"}``), as ``chalice local`` imitates.
So these answers are declared as routes: every method a path lacks, and a greedy ``/{proxy+}``
that API Gateway matches for every path no other resource takes. They take any ``Content-Type``
(Chalice would otherwise refuse a body that is not JSON with its own 415 first), anyone may call
them (``FALLBACK`` in the rules table), and the OpenAPI document does not list them as
operations: it says in its description what they answer.

``chalice local`` matches ``{proxy+}`` as one path segment only; ``runtime.tune_local_server``
makes its matcher take a greedy last segment as API Gateway does.
"""
from __future__ import annotations

from typing import Any, Callable

from ..service import ServiceError
from .http import error_response

#: Every method API Gateway and Chalice route (``ANY`` is not a Chalice method).
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
#: The greedy path: every path that no declared resource takes.
UNKNOWN_PATH = "/{proxy+}"
ANY_CONTENT_TYPE = ["*/*"]


def is_fallback(entry) -> bool:
    """Whether a route entry of the app is one of these answers (not one of the API's operations)."""
    return getattr(entry.view_function, "fallback", False)


def install(app) -> None:
    """Declare the fallback answers of ``app``: after its routes, before its authorization."""
    for path in list(app.routes):
        methods = app.routes[path]
        allowed = [method for method in METHODS if method in methods]
        missing = [method for method in METHODS if method not in methods]
        if missing:
            app.route(path, methods=missing, content_types=ANY_CONTENT_TYPE,
                      name=f"method_not_allowed{path}")(_method_not_allowed(path, allowed))
    app.route(UNKNOWN_PATH, methods=list(METHODS), content_types=ANY_CONTENT_TYPE,
              name="route_not_found")(_route_not_found())


def _method_not_allowed(path: str, allowed: list[str]) -> Callable[..., Any]:
    allow = ", ".join(allowed)

    def method_not_allowed(**_path_parameters: str):
        return error_response(ServiceError(405, "MethodNotAllowed", f"{path} takes only {allow}.",
                                           headers={"Allow": allow}))

    method_not_allowed.fallback = True
    return method_not_allowed


def _route_not_found() -> Callable[..., Any]:
    def route_not_found(**_path_parameters: str):
        return error_response(ServiceError(404, "RouteNotFound",
                                           "There is no such path; GET /openapi.json lists them all."))

    route_not_found.fallback = True
    return route_not_found
