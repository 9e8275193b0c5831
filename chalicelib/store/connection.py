"""One Redis client per process and URL, reused across requests (and Lambda invocations).

With ``REDIS_URL`` unset, local development gets an embedded Redis: a
``redis-server`` child process with its data in ``LOCAL_DATA_DIR`` (see
``embedded.py``), so suspended executions survive restarts of ``chalice local``. The deployed service always sets ``REDIS_URL``; with
``REDIS_CLUSTER=true`` it names one node of a Redis Cluster (ElastiCache in
cluster mode: its configuration endpoint), and the client finds the others.
"""
from __future__ import annotations

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
        return _embedded(settings)
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


def _embedded(settings: Settings) -> Redis:
    from .embedded import EmbeddedRedis

    server = EmbeddedRedis(settings.local_data_dir).start()
    return server.client(socket_timeout=settings.redis_socket_timeout,
                         socket_connect_timeout=settings.redis_socket_timeout, health_check_interval=30)
