"""Map run workers for the tests: ``python -m tests.map_worker <runId>`` is one worker of that run.

Run with REDIS_URL set. ``module:map-count`` (the children's task) counts each call per item
in Redis (``test:map:counts``) and the thread or process that made it (``test:map:workers``);
with ``MAP_KILL_AT=<n>`` the process kills itself (SIGKILL) inside the call for item ``n``,
after the children before it have been recorded.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

import redis

from chalicelib.resources import default_handlers, module_handler

COUNTS, WORKERS = "test:map:counts", "test:map:workers"
_clients: dict[str, redis.Redis] = {}


def _redis() -> redis.Redis:
    url = os.environ["REDIS_URL"]
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


@module_handler("map-count")
def map_count(payload, context):
    n = payload["n"]
    client = _redis()
    client.hincrby(COUNTS, str(n), 1)
    client.hset(WORKERS, f"{os.getpid()}/{threading.current_thread().name}", 1)
    if os.environ.get("MAP_KILL_AT") == str(n):
        os.kill(os.getpid(), signal.SIGKILL)
    return {"n": n, "twice": 2 * n}


def service(clock=None, dispatch_worker=None):
    from chalicelib.config import settings
    from chalicelib.service import Service
    from chalicelib.store import Store

    return Service(settings(), Store(_redis()), clock=clock, handlers=default_handlers(),
                   dispatch_worker=dispatch_worker)


if __name__ == "__main__":
    print(service().work_map_run(sys.argv[1]), flush=True)
