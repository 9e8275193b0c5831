"""Activities: the registry of activities created through the Step Functions API, and their task queues.

Keys, all under one hash tag, so each change is one script on one slot of a Redis Cluster too::

    asl:{act}:a:<name>    hash: the activity (created, encryption type); it lives until deleted, as in AWS
    asl:{act}:names       sorted set: the names, for listing in order
    asl:{act}:q:<name>    list: the activity's queued tasks, each "<executionId>|<point>";
                          kept as long as the longest-lived task pushed to it

A queued task names its execution and suspension point (a retried task waits at a new point),
never a usable task token. Its input is not copied: it is the waiting point's parameters,
read from the execution when a worker takes it.
"""
from __future__ import annotations

import time

from redis import Redis

from .registry import Registry, text

PREFIX = "asl:{act}"
# KEYS: activity hash, queue. ARGV: task, ttl, LPUSH (last out) or RPUSH (next out).
# Queues the task if the activity exists: 1, else 0.
_PUSH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call(ARGV[3], KEYS[2], ARGV[1])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return 1
"""


class ActivityStore(Registry):
    """Registered activities by name (see :class:`~.registry.Registry`), and the queue of each."""

    def __init__(self, redis: Redis, socket_timeout: float | None = None):
        super().__init__(redis, PREFIX, "a")
        self._push = redis.register_script(_PUSH)
        # A blocking pop waits at most this long per call: under the client's socket timeout.
        self.slice_seconds = max(0.1, (socket_timeout or 2.0) - 0.5)

    @staticmethod
    def queue_key(name: str) -> str:
        return f"{PREFIX}:q:{name}"

    def delete(self, name: str) -> bool:
        """Remove the activity and the tasks still queued for it (their executions wait on their timeouts)."""
        return super().delete(name, self.queue_key(name))

    # -- the queue ----------------------------------------------------------------

    def push(self, name: str, execution_id: str, point: str, ttl: int, *, first: bool = False) -> bool:
        """Queue a task, last or (``first``) next out (False: there is no such activity)."""
        task = f"{execution_id}|{point}"
        return bool(self._push(keys=[self.key(name), self.queue_key(name)],
                               args=[task, max(1, int(ttl)), "RPUSH" if first else "LPUSH"]))

    def pop(self, name: str, seconds: float) -> tuple[str, str] | None:
        """The oldest queued task, waiting up to ``seconds`` for one: (executionId, point), or None.

        A blocking pop (``BRPOP``): Redis hands each task to exactly one of the callers waiting on the
        queue. It waits in calls of at most ``slice_seconds``, so no call outlasts the client's socket
        timeout; a task pushed meanwhile is taken by the next call, nothing is lost in between.
        """
        deadline = time.monotonic() + seconds
        while True:
            wait = round(min(deadline - time.monotonic(), self.slice_seconds), 2)
            if wait <= 0:  # (a timeout of 0 would block forever)
                return None
            reply = self.redis.brpop([self.queue_key(name)], timeout=wait)
            if reply is not None:
                execution_id, _, point = text(reply[1]).partition("|")
                return execution_id, point

    def queued(self, name: str) -> int:
        return self.redis.llen(self.queue_key(name))
