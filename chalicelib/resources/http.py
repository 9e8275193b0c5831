"""``arn:aws:states:::http:invoke``: call an HTTP API, as Step Functions' HTTP Task does.

Parameters: ``ApiEndpoint`` (an http or https URL), ``Method`` (GET, POST,
PUT, DELETE, PATCH, OPTIONS, HEAD), ``Headers``, ``QueryParameters`` (values
may be lists: the name repeats), ``RequestBody`` (an object or array is sent
as JSON, text as it is; the ``Content-Type`` defaults to JSON or plain text).
``Authentication`` names an EventBridge connection in AWS; it is not used
here: give credentials in ``Headers``.

The result: ``{"StatusCode", "StatusText", "Headers", "ResponseBody"}``,
headers by lower-case name, each with the list of its values, and the body
parsed when the response is JSON, else its text. A status outside 2xx fails
the task with ``States.Http.StatusCode.<status>``, the cause being that result
as JSON text. No connection, or no answer within 60 seconds, fails it with
``States.Http.Socket``; a shorter ``TimeoutSeconds`` on the Task fails it with
``States.Timeout`` when it runs out.

Only the standard library, so the Lambda package stays small.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit

from ..asl import errors
from ..asl.errors import StatesError
from ..asl.states import MAX_PAYLOAD_BYTES
from ..asl.tasks import Handler, TaskContext, TaskFailed
from ..asl.templates import compact_json
from .aws import integration, json_text

SOCKET_TIMEOUT_SECONDS = 60.0  # AWS gives up on an HTTP Task after 60 seconds
SOCKET_ERROR = "States.Http.Socket"
STATUS_ERROR = "States.Http.StatusCode."
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")
JSON_TYPE = "application/json; charset=UTF-8"


def resolve(resource: str) -> Handler | None:
    return invoke if integration(resource) == "http:invoke" else None


def invoke(payload: Any, context: TaskContext) -> dict:
    import http.client
    import urllib.error

    request = _request(payload)
    timeout = min(context.timeout_seconds or SOCKET_TIMEOUT_SECONDS, SOCKET_TIMEOUT_SECONDS)
    # A body longer than the payload limit is cut there: the result then fails the
    # task with States.DataLimitExceeded, as any result over the limit does.
    try:
        with _opener().open(request, timeout=timeout) as response:
            return _result(response.status, response.reason, response.headers, response.read(MAX_PAYLOAD_BYTES + 1))
    except urllib.error.HTTPError as answer:  # any status outside 2xx
        with answer:
            result = _result(answer.code, answer.reason, answer.headers, answer.read(MAX_PAYLOAD_BYTES + 1))
        raise TaskFailed(f"{STATUS_ERROR}{answer.code}", compact_json(result)) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, TimeoutError) and timeout < SOCKET_TIMEOUT_SECONDS:
            raise TaskFailed(errors.TIMEOUT, "") from None
        where = urlsplit(request.full_url)  # without the query, which may hold credentials
        raise TaskFailed(SOCKET_ERROR, f"{request.get_method()} {where.scheme}://{where.netloc}{where.path}: "
                                       f"{reason}") from None


def _request(payload: Any):
    import urllib.request

    if not isinstance(payload, dict):
        raise _invalid("The Parameters must be an object with ApiEndpoint and Method.")
    url, method = payload.get("ApiEndpoint"), payload.get("Method")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise _invalid(f"ApiEndpoint must be an http or https URL, not {compact_json(url)}.")
    if method not in METHODS:
        raise _invalid(f"Method must be one of {', '.join(METHODS)}, not {compact_json(method)}.")
    headers = payload.get("Headers") or {}
    query = payload.get("QueryParameters") or {}
    if not isinstance(headers, dict) or not isinstance(query, dict):
        raise _invalid("Headers and QueryParameters must be objects.")
    headers = {name: json_text(value) for name, value in headers.items()}
    if query:
        pairs = [(name, json_text(item)) for name, value in query.items()
                 for item in (value if isinstance(value, list) else [value])]
        url += ("&" if urlsplit(url).query else "?") + urlencode(pairs)
    data = None
    body = payload.get("RequestBody")
    if body is not None:
        data = json_text(body).encode("utf-8")
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "text/plain; charset=UTF-8" if isinstance(body, str) else JSON_TYPE
    return urllib.request.Request(url, data=data, method=method, headers=headers)


def _invalid(message: str) -> StatesError:
    return StatesError(errors.RUNTIME, f"The HTTP Task's Parameters are not valid: {message}")


def _result(status: int, reason: str, headers, data: bytes) -> dict:
    collected: dict[str, list[str]] = {}
    for name, value in headers.items():
        collected.setdefault(name.lower(), []).append(value)
    text = data.decode(headers.get_content_charset() or "utf-8", errors="replace")
    body: Any = text
    content_type = headers.get_content_type()
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            body = json.loads(text)
        except ValueError:
            pass
    return {"StatusCode": status, "StatusText": reason or "", "Headers": collected, "ResponseBody": body}


_openers: list[Any] = []


def _opener():
    """urllib's opener, following redirects to http and https URLs only."""
    if not _openers:
        import urllib.request

        class Redirects(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, req, fp, code, msg, headers, newurl):
                if urlsplit(newurl).scheme not in ("http", "https"):
                    return None
                return super().redirect_request(req, fp, code, msg, headers, newurl)

        _openers.append(urllib.request.build_opener(Redirects))
    return _openers[0]
