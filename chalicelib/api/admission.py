"""What a request must be before any handler runs: a stage fit to serve, header bytes HTTP allows,
and a host the stage trusts.

A stage whose settings are unsafe (``runtime.configuration_problem``: an ``API_KEY`` without
``PUBLIC_BASE_URL`` or ``TRUSTED_HOSTS``) answers every request ``500 ConfigurationError``,
saying what to set; deployed it fails its cold start already, and ``chalice local`` refuses to start.

HTTP header names are tokens, and values are visible ASCII, spaces and tabs (RFC 9110: bytes
above 0x7F are obsolete text, control characters are never allowed). ``chalice local`` decodes
a header's raw bytes as Latin-1 and API Gateway hands the function Unicode text; either way a
header holding anything else (a control character, a non-ASCII letter, invalid UTF-8 bytes, a
lone surrogate) is refused with ``400 InvalidHeader`` naming the header, whatever the header is,
before any handler reads it. The authorization check runs first, so a non-ASCII ``x-api-key``
on a route that needs the key stays a ``403 Forbidden``, as any wrong key is.

With ``TRUSTED_HOSTS`` (and no ``PUBLIC_BASE_URL``), the host links would take from the request
(``X-Forwarded-Host``, else ``Host``) must be one of them: any other is ``400 UntrustedHost``.

A request of the Step Functions API or PutEvents (``X-Amz-Target``) is refused in AWS's error shape
(``ValidationException``, ``InternalFailure``), so its SDK reads the code.
"""
from __future__ import annotations

import logging
import re

from ..config import settings
from ..service import ServiceError
from . import stepfunctions
from .http import error_response
from .runtime import configuration_problem, link_host
from .sfn_protocol import translate

log = logging.getLogger(__name__)

_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_VALUE = re.compile(r"[\t\x20-\x7e]*\Z")


def bad_header(headers) -> str | None:
    """The name of the first header (as printable ASCII) whose name or value is not HTTP's, else None."""
    for name, value in (headers or {}).items():
        values = value if isinstance(value, list) else [value]
        if not (isinstance(name, str) and _NAME.match(name)) \
                or not all(isinstance(v, str) and _VALUE.match(v) for v in values):
            return ascii(name)[1:-1] if isinstance(name, str) else "?"
    return None


def refusal(request) -> object | None:
    """The answer refusing ``request`` at the door, else None."""
    refused = problem_of(request)
    if refused is None:
        return None
    if stepfunctions.operation_of(request) is not None:
        return stepfunctions.error_response(translate(refused))
    return error_response(refused)


def problem_of(request) -> ServiceError | None:
    config = settings()
    problem = configuration_problem(config)
    if problem is not None:
        log.error("configuration: %s", problem)
        return ServiceError(500, "ConfigurationError", problem)
    name = bad_header(request.headers)
    if name is not None:
        return ServiceError(400, "InvalidHeader", f"The header {name!r} holds bytes that are not "
                            "visible ASCII (control characters, non-ASCII text or invalid bytes).")
    if config.trusted_hosts and not config.public_base_url and link_host(request, config) is None:
        return ServiceError(400, "UntrustedHost", "The request's host (X-Forwarded-Host, else "
                            "Host) is not one this stage serves (TRUSTED_HOSTS).")
    return None


def install(app) -> None:
    """Check the headers of every request of ``app`` (after the authorization check)."""
    @app.middleware("http")
    def admit(event, get_response):
        refused = refusal(event)
        return refused if refused is not None else get_response(event)
