"""Continuation IDs: unguessable, URL-safe, and never stored in Redis.

An ID is ``<tag><secret part>``: the 4-character shard tag of its execution
(so the store finds the right Redis slot) followed by 22 URL-safe characters
derived with HMAC-SHA256 from a 128-bit random nonce (``secrets``) and the
service's signing secret. Redis stores the nonce and a SHA-256 hash of the ID:
the service can show an execution's open IDs again, while someone with only a
copy of the Redis data can neither compute an ID nor reverse a hash.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

TAG_LENGTH = 4
_SECRET_PART = 22
_ID = re.compile(r"^[A-Za-z0-9_-]{%d}$" % (TAG_LENGTH + _SECRET_PART))


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def continuation_id(tag: str, nonce: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), nonce.encode(), hashlib.sha256).digest()
    return tag + base64.urlsafe_b64encode(digest).decode()[:_SECRET_PART]


def id_hash(continuation: str) -> str:
    """What Redis keys a continuation by: 22 URL-safe characters (132 bits) of its SHA-256."""
    digest = hashlib.sha256(continuation.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:_SECRET_PART]


def is_well_formed(continuation: str) -> bool:
    return bool(_ID.match(continuation or ""))


def tag_of(continuation: str) -> str:
    return continuation[:TAG_LENGTH]


def new_execution_id() -> str:
    """22 URL-safe characters (128 random bits); the first 4 are the shard tag."""
    return secrets.token_urlsafe(16)


def plausible_id(execution_id: str) -> bool:
    """Whether ``execution_id`` could name an execution (what its key may be built from)."""
    return 4 <= len(execution_id) <= 64 and all(c.isalnum() or c in "-_" for c in execution_id)
