"""HTTP plumbing shared by every route: reading requests, shaping answers and errors.

Every handler wrapped by :func:`endpoint` or :func:`page_endpoint` answers errors as
``{"error": "<Code>", "message": "..."}`` with a 4xx/5xx status; nothing returns a traceback.
"""
from __future__ import annotations

import functools
import json
import logging
from typing import Any, Callable
from urllib.parse import parse_qs

from chalice import Response
from redis.exceptions import RedisClusterException, RedisError

from ..approvals import views
from ..asl.limits import MAX_REQUEST_DEPTH, TooDeep, payload_size
from ..config import Settings
from ..service import ServiceError
from .runtime import make_service

log = logging.getLogger(__name__)


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(body=json.dumps(body, ensure_ascii=False), status_code=status,
                    headers={"Content-Type": "application/json", **(headers or {})})


def error_response(error: ServiceError) -> Response:
    return json_response(error.to_json(), error.status, error.headers)


def page_response(page: views.Page, headers: dict | None = None) -> Response:
    return Response(body=page.body, status_code=page.status, headers={**page.headers, **(headers or {})})


def wants_html(request) -> bool:
    """Content negotiation: browsers (``Accept`` naming text/html) get pages, others JSON."""
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    return "text/html" in headers.get("accept", "").lower()


def endpoint(handler: Callable[..., Any]) -> Callable[..., Response]:
    """Turn a handler's result or error into a JSON response."""
    return _answering(handler, lambda args, error: error_response(error))


def page_endpoint(handler: Callable[..., Any]) -> Callable[..., Response]:
    """As :func:`endpoint`; for a browser, errors about the continuation are friendly pages.

    The handler is ``handler(request, continuation, ...)``.
    """
    def on_error(args: tuple, error: ServiceError) -> Response:
        request, continuation = args[0], args[1]
        if not wants_html(request):
            return error_response(error)
        service = make_service(request)
        try:
            return page_response(views.refusal_page(service, continuation, error), error.headers)
        except ServiceError as again:  # the store failed again while explaining
            return page_response(views.error_page(service, again))
        except STORE_ERRORS:
            return page_response(views.error_page(service, _store_unavailable()))

    return _answering(handler, on_error)


def browser_endpoint(handler: Callable[..., Any]) -> Callable[..., Response]:
    """As :func:`endpoint`; for a browser, errors are pages (the developer's pages of executions)."""
    def on_error(args: tuple, error: ServiceError) -> Response:
        request = args[0]
        if not wants_html(request):
            return error_response(error)
        return page_response(views.error_page(make_service(request), error), error.headers)

    return _answering(handler, on_error)


# What redis-py raises when Redis cannot answer; a cluster client's own errors are not RedisErrors.
STORE_ERRORS = (RedisError, RedisClusterException)


def _store_unavailable() -> ServiceError:
    return ServiceError(503, "StoreUnavailable", "The continuation store is not reachable; try again.")


def _answering(handler: Callable[..., Any], on_error: Callable[[tuple, ServiceError], Response]):
    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            result = handler(*args, **kwargs)
        except ServiceError as error:
            return on_error(args, error)
        except STORE_ERRORS as exc:
            log.warning("store unavailable: %s", type(exc).__name__)
            return on_error(args, _store_unavailable())
        except Exception:  # noqa: BLE001 - logged, answered without details
            log.exception("unexpected error")
            return on_error(args, ServiceError(500, "InternalError", "The service failed unexpectedly."))
        if isinstance(result, Response):
            return result
        if isinstance(result, views.Page):
            return page_response(result)
        status, body = result if isinstance(result, tuple) else (200, result)
        return json_response(body, status)

    return wrapper


# -- reading requests ---------------------------------------------------------------------

def read_body(request, config: Settings) -> bytes:
    raw = request.raw_body or b""
    if len(raw) > config.max_body_bytes:
        raise ServiceError(413, "PayloadTooLarge",
                           f"The request body is larger than {config.max_body_bytes} bytes.")
    return raw


def is_form(request) -> bool:
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    return headers.get("content-type", "").lower().startswith("application/x-www-form-urlencoded")


def read_form(request, config: Settings) -> dict[str, list[str]]:
    """An HTML form's fields, ``{name: [values]}``."""
    try:
        return parse_qs(read_body(request, config).decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise ServiceError(400, "InvalidRequest", "The form is not UTF-8.") from None


def _not_a_json_number(text: str) -> float:
    """NaN, Infinity and numbers beyond a float's range parse in Python but are not JSON."""
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} is not a JSON number")
    return value


#: ``json.loads`` options refusing what no JSON answer could carry back (``NaN``, ``1e400``).
JSON_NUMBERS_ONLY = {"parse_constant": _not_a_json_number, "parse_float": _not_a_json_number}


def too_deep(what: str = "The request body") -> ServiceError:
    return ServiceError(400, "InvalidRequest",
                        f"{what} nests arrays and objects more than {MAX_REQUEST_DEPTH} levels deep.")


def nests_too_deep(value: Any) -> bool:
    """``value`` nests more than ``MAX_REQUEST_DEPTH`` levels: answers that echo it could not be read back."""
    try:
        payload_size(value, float("inf"), MAX_REQUEST_DEPTH)
    except TooDeep:
        return True
    return False


def check_depth(value: Any, what: str = "The request body") -> Any:
    """``value``, if it does not nest too deep (else 400 InvalidRequest)."""
    if nests_too_deep(value):
        raise too_deep(what)
    return value


def parse_json(text: str | bytes, what: str = "The request body") -> Any:
    """JSON a request sends, refused as :func:`check_depth` says; ValueError when it does not parse."""
    try:
        value = json.loads(text, **JSON_NUMBERS_ONLY)
    except RecursionError:
        raise too_deep(what) from None
    return check_depth(value, what)


def read_json(request, config: Settings, *, required: bool = True) -> Any:
    raw = read_body(request, config)
    if not raw.strip():
        if required:
            raise ServiceError(400, "InvalidRequest", "The request needs a JSON body.")
        return None
    try:
        value = parse_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError(400, "MalformedJSON", f"The request body is not valid JSON: {exc}") from None
    try:  # a lone surrogate ("\ud800") parses, but could never be written out again
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeError:
        raise ServiceError(400, "MalformedJSON", "The request body holds text that is not valid Unicode.") from None
    return value


def require_object(value: Any, what: str = "The request body") -> dict:
    if not isinstance(value, dict):
        raise ServiceError(400, "InvalidRequest", f"{what} must be a JSON object.")
    return value

