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

Where it connects is checked first (``network.py``): by default only public
addresses, resolved once and connected to as checked; ``ALLOWED_HTTP_HOSTS``
opens others. A refused destination fails the task with
``Http.DestinationNotAllowed``, its cause naming the host and the address. Redirects
(301, 302, 303, 307, 308) are followed here, at most ``MAX_REDIRECTS`` of them, each
hop checked the same way; 303, and 301/302 after a POST, become a GET without the
body, and ``Authorization``/``Cookie`` are not sent on to another host.
Proxy settings of the environment are not used.

Only the standard library, so the Lambda package stays small.
"""
from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from ..asl import errors
from ..asl.errors import StatesError
from ..asl.states import MAX_PAYLOAD_BYTES
from ..asl.tasks import Handler, TaskContext, TaskFailed
from ..asl.templates import compact_json
from . import network
from .aws import integration, json_text

SOCKET_TIMEOUT_SECONDS = 60.0  # AWS gives up on an HTTP Task after 60 seconds
SOCKET_ERROR = "States.Http.Socket"
STATUS_ERROR = "States.Http.StatusCode."
REFUSED_ERROR = "Http.DestinationNotAllowed"  # the address policy (network.py) refused where the URL points
MAX_REDIRECTS = 5
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")
JSON_TYPE = "application/json; charset=UTF-8"


def resolve(resource: str) -> Handler | None:
    return invoke if integration(resource) == "http:invoke" else None


def invoke(payload: Any, context: TaskContext) -> dict:
    import http.client

    method, url, headers, data = _request(payload)
    if context.idempotency_key and not any(name.lower() == "idempotency-key" for name in headers):
        headers["Idempotency-Key"] = context.idempotency_key  # the same on every try of this call
    timeout = min(context.timeout_seconds or SOCKET_TIMEOUT_SECONDS, SOCKET_TIMEOUT_SECONDS)
    deadline = time.monotonic() + timeout
    rules = network.policy()
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            status, reason, answer_headers, body = _exchange(method, url, headers, data, rules,
                                                             max(deadline - time.monotonic(), 0.001))
            location = answer_headers.get("Location") if status in REDIRECT_STATUSES else None
            target = urljoin(url, location.strip()) if location else None
            if target is None or urlsplit(target).scheme not in ("http", "https") or not urlsplit(target).hostname:
                break
            method, headers, data = _redirected(status, method, headers, data, url, target)
            url = target
        else:
            raise TaskFailed(SOCKET_ERROR, f"{_where(method, url)}: more than {MAX_REDIRECTS} redirects") from None
    except network.Refused as refused:
        raise TaskFailed(REFUSED_ERROR, f"{_where(method, url)}: {refused}") from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        if isinstance(error, TimeoutError) and timeout < SOCKET_TIMEOUT_SECONDS:
            raise TaskFailed(errors.TIMEOUT, "") from None
        raise TaskFailed(SOCKET_ERROR, f"{_where(method, url)}: {error or type(error).__name__}") from None
    result = _result(status, reason, answer_headers, body)
    if not 200 <= status < 300:
        raise TaskFailed(f"{STATUS_ERROR}{status}", compact_json(result))
    return result


def _where(method: str, url: str) -> str:
    where = urlsplit(url)  # without the query, which may hold credentials
    return f"{method} {where.scheme}://{where.netloc.rpartition('@')[2]}{where.path}"


def _exchange(method: str, url: str, headers: dict, data: bytes | None, rules: network.Policy, timeout: float):
    """One request and its answer, on a connection to the checked address of the URL's host."""
    import http.client

    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    family, sockaddr = network.resolve(host, port, rules)
    if parts.scheme == "https":
        import ssl

        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    # The Host header and the TLS server name keep the URL's host; the socket goes to the address checked.
    connection._create_connection = lambda address, timeout=None, source=None: network.connect(family, sockaddr, timeout)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=data, headers=headers)
        response = connection.getresponse()
        # A body longer than the payload limit is cut there: the result then fails the
        # task with States.DataLimitExceeded, as any result over the limit does.
        body = response.read(MAX_PAYLOAD_BYTES + 1)
        return response.status, response.reason, response.headers, body
    finally:
        connection.close()


_BODY_HEADERS = ("content-type", "content-length", "content-encoding", "content-language")
_CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")


def _redirected(status: int, method: str, headers: dict, data: bytes | None, url: str, target: str):
    """The request a redirect asks for: 303 (and 301/302 after a POST) become a GET without the body;
    credentials are not sent on to another host."""
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, data = "GET", None
        headers = {name: value for name, value in headers.items() if name.lower() not in _BODY_HEADERS}
    if (urlsplit(url).hostname, urlsplit(url).port) != (urlsplit(target).hostname, urlsplit(target).port):
        headers = {name: value for name, value in headers.items() if name.lower() not in _CREDENTIAL_HEADERS}
    return method, headers, data


def _request(payload: Any) -> tuple[str, str, dict, bytes | None]:
    if not isinstance(payload, dict):
        raise _invalid("The Parameters must be an object with ApiEndpoint and Method.")
    url, method = payload.get("ApiEndpoint"), payload.get("Method")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not _host_of(url):
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
    return method, url.split("#", 1)[0], headers, data


def _host_of(url: str) -> str | None:
    try:
        urlsplit(url).port  # a port that is not a number raises
        return urlsplit(url).hostname
    except ValueError:
        return None


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
