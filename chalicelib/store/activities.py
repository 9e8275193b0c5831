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

PREFIX = "asl:{act}"
NAMES_KEY = f"{PREFIX}:names"

# KEYS: activity hash, names set. ARGV: name, then field/value pairs. Returns the existing fields, or {}.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HGETALL', KEYS[1]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return {}
"""
# KEYS: activity hash, queue. ARGV: task, ttl, LPUSH (last out) or RPUSH (next out).
# Queues the task if the activity exists: 1, else 0.
_PUSH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call(ARGV[3], KEYS[2], ARGV[1])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return 1
"""


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode(fields) -> dict[str, str]:
    items = fields.items() if isinstance(fields, dict) else zip(fields[::2], fields[1::2])
    return {_text(k): _text(v) for k, v in items}


class ActivityStore:
    """Registered activities by name, and the queue of each."""

    def __init__(self, redis: Redis, socket_timeout: float | None = None):
        self.redis = redis
        self._create = redis.register_script(_CREATE)
        self._push = redis.register_script(_PUSH)
        # A blocking pop waits at most this long per call: under the client's socket timeout.
        self.slice_seconds = max(0.1, (socket_timeout or 2.0) - 0.5)

    @staticmethod
    def key(name: str) -> str:
        return f"{PREFIX}:a:{name}"

    @staticmethod
    def queue_key(name: str) -> str:
        return f"{PREFIX}:q:{name}"

    def get(self, name: str) -> dict[str, str] | None:
        return _decode(self.redis.hgetall(self.key(name))) or None

    def create(self, name: str, fields: dict[str, str]) -> dict[str, str] | None:
        """Register ``name`` unless it exists: None when created now, else the existing fields."""
        flat = [item for pair in fields.items() for item in pair]
        existing = self._create(keys=[self.key(name), NAMES_KEY], args=[name, *flat])
        return _decode(existing) if existing else None

    def delete(self, name: str) -> None:
        """Remove the activity and the tasks still queued for it (their executions wait on their timeouts)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.key(name))
        pipe.delete(self.queue_key(name))
        pipe.zrem(NAMES_KEY, name)
        pipe.execute()

    def names(self, after: str | None, limit: int) -> list[str]:
        """Names in order, those after ``after``, at most ``limit``."""
        low = "-" if after is None else "(" + after
        return [_text(n) for n in self.redis.zrangebylex(NAMES_KEY, low, "+", start=0, num=limit)]

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
                execution_id, _, point = _text(reply[1]).partition("|")
                return execution_id, point

    def queued(self, name: str) -> int:
        return self.redis.llen(self.queue_key(name))
