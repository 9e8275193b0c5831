"""The links an approver gets: the continuation's page and one signed link per choice.

A decision link carries its choice and a signature, an HMAC-SHA256 with the
stage's ``SIGNING_SECRET`` over the continuation ID and the choice. Editing
the choice in the URL breaks the signature (403) instead of deciding something
else. The continuation ID alone already lets its holder answer anything; the
signature makes a link mean exactly one answer.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

_SIGNATURE_CHARS = 22  # 132 bits of the HMAC, URL-safe base64


def signature(secret: str, continuation: str, choice: str) -> str:
    message = f"decision\0{continuation}\0{choice}".encode("utf-8", "surrogatepass")
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:_SIGNATURE_CHARS]


def verify(secret: str, continuation: str, choice: str, given: str | None) -> bool:
    """Whether ``given`` is the signature of (continuation, choice); constant-time.

    Compared as bytes: ``compare_digest`` refuses ``str`` with non-ASCII characters.
    """
    expected = signature(secret, continuation, choice).encode()
    return hmac.compare_digest(expected, (given or "").encode("utf-8", "surrogatepass"))


def page_url(base_url: str, continuation: str) -> str:
    return f"{base_url}/continuations/{continuation}"


def decision_url(base_url: str, continuation: str, choice: str, secret: str) -> str:
    query = urlencode({"choice": choice, "sig": signature(secret, continuation, choice)})
    return f"{page_url(base_url, continuation)}/decide?{query}"


def decision_urls(base_url: str, continuation: str, choices, secret: str) -> dict[str, str]:
    """``{choice: signed URL}`` in the order of ``choices``."""
    return {choice: decision_url(base_url, continuation, choice, secret) for choice in choices}
