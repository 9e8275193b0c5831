"""Shared fixtures: a real Redis server (REDIS_URL, default 127.0.0.1:6379/0) and the app."""
from __future__ import annotations

import os
import tempfile

import pytest
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("REDIS_URL", REDIS_URL)
# Emails that examples send under test go to a throwaway outbox, not the project's .local/.
os.environ.setdefault("OUTBOX_DIR", tempfile.mkdtemp(prefix="outbox-"))


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def cluster_url():
    """A local 3-master Redis Cluster, started once for the session's store tests."""
    from .redis_cluster import redis_cluster

    with redis_cluster() as url:
        yield url


@pytest.fixture(params=["server", "cluster"])
def store_redis(request):
    """A client of the Redis the store tests run against: the server at REDIS_URL, then a Redis Cluster.

    Flushed first; the store gets this client, so its scripts and pipelines run on both.
    """
    if request.param == "server":
        client = redis.Redis.from_url(REDIS_URL)
    else:
        from redis.cluster import RedisCluster

        client = RedisCluster.from_url(request.getfixturevalue("cluster_url"))
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def client(redis_client, monkeypatch):
    from chalice.test import Client

    from app import app

    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    with Client(app, stage_name="dev", project_dir=ROOT) as test_client:
        yield test_client
