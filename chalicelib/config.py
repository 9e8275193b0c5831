"""Settings, read from the environment each time a request runs.

Chalice sets a stage's ``environment_variables`` (``.chalice/config.json``)
for the Lambda function and for ``chalice local``; its test client sets them
per call, so nothing here is read at import time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

ONE_YEAR = 365 * 24 * 3600
DEV_SECRET = "dev-only-signing-secret-change-me"
#: What inline definitions may call by default: the ``module:`` handlers and activities (both call nothing outside).
DEFAULT_ALLOWED_RESOURCES = "module:*,arn:aws:states:*:activity:*"
MERMAID_URL = "https://cdn.jsdelivr.net/npm/mermaid@11.4.1/dist/mermaid.esm.min.mjs"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw.strip() else default


@dataclass(frozen=True)
class Settings:
    redis_url: str | None
    redis_cluster: bool  # REDIS_URL names one node of a Redis Cluster
    continuation_ttl: int
    event_buffer_seconds: int  # how long an event no task waits for yet is kept
    public_base_url: str | None
    trusted_hosts: tuple[str, ...]  # host[:port] names links may take from a request (lower case)
    max_body_bytes: int
    request_max_transitions: int
    request_max_seconds: float
    execution_max_transitions: int  # over the whole execution; it fails with States.Runtime then
    lease_seconds: int
    retention_seconds: int
    inline_wait_seconds: float
    allowed_resources: tuple[str, ...]
    signing_secret: str
    history_limit: int
    redis_socket_timeout: float
    local_data_dir: str
    tick_seconds: float
    email_mode: str  # "ses" or "outbox"
    email_from: str
    outbox_dir: str
    diagram_script_url: str  # where pages load mermaid.js from; empty: show the diagram as text
    redrive_max_bytes: int  # the largest snapshot an execution that ends unsuccessfully keeps for a redrive
    aws_region: str  # the region and account in the Step Functions API's ARNs
    aws_account_id: str
    aws_access_keys: dict[str, str]  # access key ID -> secret: the protocol then needs SigV4 (or x-api-key)
    activity_poll_seconds: float  # how long GetActivityTask waits for a task: under the stage's request timeout
    map_max_concurrency: int  # a Distributed Map's children at once when its MaxConcurrency is unset or 0
    map_chunk_size: int  # children a map run's worker claims at a time
    local_map_workers: int  # threads that run map runs' workers under chalice local


def settings() -> Settings:
    env = os.environ
    allowed = env.get("ALLOWED_RESOURCES", DEFAULT_ALLOWED_RESOURCES)
    local_data_dir = env.get("LOCAL_DATA_DIR") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".local")
    deployed = bool(env.get("AWS_LAMBDA_FUNCTION_NAME")) and not env.get("AWS_CHALICE_CLI_MODE")
    return Settings(
        redis_url=env.get("REDIS_URL") or None,
        redis_cluster=env.get("REDIS_CLUSTER", "").strip().lower() in ("1", "true", "yes"),
        continuation_ttl=min(_int("CONTINUATION_TTL_SECONDS", 86400), ONE_YEAR),
        event_buffer_seconds=min(_int("EVENT_BUFFER_SECONDS", _int("CONTINUATION_TTL_SECONDS", 86400)), ONE_YEAR),
        public_base_url=(env.get("PUBLIC_BASE_URL") or "").rstrip("/") or None,
        trusted_hosts=tuple(h.strip().lower() for h in env.get("TRUSTED_HOSTS", "").split(",") if h.strip()),
        max_body_bytes=_int("MAX_BODY_BYTES", 256 * 1024),
        request_max_transitions=_int("REQUEST_MAX_TRANSITIONS", 10_000),
        request_max_seconds=_float("REQUEST_MAX_SECONDS", 10.0),
        execution_max_transitions=_int("EXECUTION_MAX_TRANSITIONS", 25_000),
        lease_seconds=_int("LEASE_SECONDS", 30),
        retention_seconds=_int("RETENTION_SECONDS", 7 * 86400),
        inline_wait_seconds=_float("INLINE_WAIT_SECONDS", 5.0),
        allowed_resources=tuple(p.strip() for p in allowed.split(",") if p.strip()),
        signing_secret=env.get("SIGNING_SECRET") or DEV_SECRET,
        history_limit=_int("HISTORY_LIMIT", 1000),
        redrive_max_bytes=_int("REDRIVE_MAX_BYTES", 1024 * 1024),
        redis_socket_timeout=_float("REDIS_SOCKET_TIMEOUT", 2.0),
        local_data_dir=local_data_dir,
        tick_seconds=_float("TIMER_TICK_SECONDS", 60.0),
        email_mode=(env.get("EMAIL_MODE") or ("ses" if deployed else "outbox")).strip().lower(),
        email_from=env.get("EMAIL_FROM") or "approvals@example.com",
        outbox_dir=env.get("OUTBOX_DIR") or os.path.join(local_data_dir, "outbox"),
        diagram_script_url=env.get("DIAGRAM_SCRIPT_URL", MERMAID_URL).strip(),
        aws_region=(env.get("STATES_REGION") or "us-east-1").strip(),
        aws_account_id=(env.get("STATES_ACCOUNT_ID") or "000000000000").strip(),
        aws_access_keys=_access_keys(env.get("AWS_ACCESS_KEYS", "")),
        # AWS waits 60 s; API Gateway answers 504 after 29 s, so a deployed stage waits 25 s by default
        activity_poll_seconds=min(max(_float("ACTIVITY_POLL_SECONDS", 25.0 if deployed else 60.0), 0.0), 60.0),
        map_max_concurrency=min(max(1, _int("MAP_MAX_CONCURRENCY", 1000)), 10_000),
        map_chunk_size=max(1, _int("MAP_CHUNK_SIZE", 10)),
        local_map_workers=max(1, _int("LOCAL_MAP_WORKERS", 4)),
    )


def _access_keys(raw: str) -> dict[str, str]:
    """``AKID:secret,AKID2:secret2`` as a mapping (entries without a colon are ignored)."""
    keys = {}
    for entry in raw.split(","):
        key, sep, secret = entry.strip().partition(":")
        if sep and key and secret:
            keys[key] = secret
    return keys
