"""A local 3-master Redis Cluster (``redis-server --cluster-enabled yes`` on loopback ports)."""
from __future__ import annotations

import contextlib
import shutil
import subprocess
import time

import redis
from redis.cluster import RedisCluster

from .redis_servers import RedisServer, free_port

REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


@contextlib.contextmanager
def redis_cluster(masters: int = 3):
    """Yield the URL of one node of a new cluster of ``masters`` nodes (no replicas); stop it after.

    Each node gets its own free bus port (``--cluster-port``): the default, the port + 10000, does
    not exist for ports above 55535, and free ports often are.
    """
    nodes = [RedisServer("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                         "--cluster-port", str(free_port()), "--cluster-node-timeout", "5000",
                         "--appendonly", "no") for _ in range(masters)]
    try:
        for node in nodes:
            node.start()
        created = subprocess.run([REDIS_CLI, "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes],
                                  "--cluster-replicas", "0", "--cluster-yes"],
                                 capture_output=True, text=True, timeout=60)
        if created.returncode:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}{created.stderr}")
        for node in nodes:
            _wait_until_ok(node.port)
        yield nodes[0].url
    finally:
        for node in nodes:
            node.close()


def _wait_until_ok(port: int) -> None:
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + 30
        while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster node {port} is not ready")
            time.sleep(0.1)
    finally:
        client.close()


def cluster_client(url: str) -> RedisCluster:
    return RedisCluster.from_url(url)
