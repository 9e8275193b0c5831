"""Checking an AWS Signature Version 4 on a Step Functions API request, with botocore's own signer.

The received request is rebuilt as a botocore ``AWSRequest`` with exactly the headers the
client signed, at the instant its ``X-Amz-Date`` names, and ``SigV4Auth`` (service
``states``, the region of the credential scope) computes the signature again over it:
method, path, query, signed headers and the SHA-256 of the body as received. The
signature must match, the access key must be one of the stage's, and ``X-Amz-Date``
must be within 5 minutes of now. Refusals carry AWS's codes.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from datetime import datetime, timezone

SERVICE = "states"
WINDOW_SECONDS = 5 * 60
#: The time the date window is checked against (tests replace it).
clock = time.time

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})\s*$")
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.")


def check(request, keys: dict[str, str], service_name: str = SERVICE) -> tuple[str, str] | None:
    """None when the request carries a valid signature by one of ``keys`` for ``service_name`` (``states``,
    or ``events`` for EventBridge's PutEvents); else (AWS code, message)."""
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    authorization = headers.get("authorization")
    if not authorization:
        return "MissingAuthenticationTokenException", "Missing Authentication Token"
    match = _AUTHORIZATION.match(authorization)
    if match is None:
        return "IncompleteSignatureException", "The Authorization header is not a well-formed AWS4-HMAC-SHA256 signature."
    scope = match["credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return "IncompleteSignatureException", f"Credential should be scoped to a valid region and service: {match['credential']}."
    access_key, day, region, service = scope[:4]
    if service != service_name:
        return "InvalidSignatureException", f"Credential should be scoped to correct service: '{service_name}'."
    secret = keys.get(access_key)
    if secret is None:
        return "UnrecognizedClientException", "The security token included in the request is invalid."
    signed = match["signed"].split(";")
    amz_date = headers.get("x-amz-date", "")
    if "x-amz-date" not in signed or "host" not in signed:
        return "IncompleteSignatureException", "The signed headers must include host and x-amz-date."
    try:
        instant = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return "IncompleteSignatureException", f"X-Amz-Date is not a valid date: {amz_date!r}."
    now = clock()
    if abs(now - instant) > WINDOW_SECONDS:
        stamp = datetime.fromtimestamp(now - WINDOW_SECONDS, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        later = "earlier" if instant < now else "later"
        return "InvalidSignatureException", (f"Signature expired: {amz_date} is now {later} than {stamp} "
                                             f"({datetime.fromtimestamp(now, tz=timezone.utc):%Y%m%dT%H%M%SZ} "
                                             f"{'-' if later == 'earlier' else '+'} 5 min.)")
    if day != amz_date[:8]:
        return "InvalidSignatureException", "The credential scope's date is not the day of X-Amz-Date."
    body = request.raw_body or b""
    claimed = headers.get("x-amz-content-sha256")
    if claimed is not None and claimed != hashlib.sha256(body).hexdigest():
        return "InvalidSignatureException", "The body does not match X-Amz-Content-SHA256."
    if any(name not in headers for name in signed):
        return "InvalidSignatureException", MISMATCH
    expected = _signature(request, headers, signed, body, access_key, secret, region, amz_date, service_name)
    if not hmac.compare_digest(expected, match["signature"]):
        return "InvalidSignatureException", MISMATCH
    return None


def _signature(request, headers: dict, signed: list[str], body: bytes, access_key: str, secret: str,
               region: str, amz_date: str, service_name: str = SERVICE) -> str:
    """What botocore's signer computes for this request, as the client signed it."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    path = _signed_path(request)
    query = "&".join(f"{k}={v}" for k, v in sorted((request.query_params or {}).items()))
    url = f"http://{headers['host']}{path}" + (f"?{query}" if query else "")
    aws_request = AWSRequest(method=request.method, url=url, data=body,
                             headers={name: headers[name] for name in signed})
    aws_request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(access_key, secret), service_name, region)
    canonical = signer.canonical_request(aws_request)
    return signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)


def _signed_path(request) -> str:
    """The path the client sent: behind API Gateway it includes the stage (``/api/``)."""
    context = request.context or {}
    return context.get("path") or request.path or "/"
