"""What the state machine and activity registries share: named resources that live until deleted.

Each resource is one hash (``<prefix>:<letter>:<name>``) and its name is in one sorted set
(``<prefix>:names``, all scores 0, so it lists by name), all under the registry's hash tag:
every change is one script or one transaction on one slot of a Redis Cluster. They have no TTL:
as in AWS, a state machine or an activity lives until it is deleted.
"""
from __future__ import annotations

from redis import Redis

# KEYS: resource hash, names set. ARGV: name, then field/value pairs. Returns the existing fields, or {}.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HGETALL', KEYS[1]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return {}
"""


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode(fields) -> dict[str, str]:
    """A hash as Redis answers it (a dict, or a flat list of fields and values) as text."""
    items = fields.items() if isinstance(fields, dict) else zip(fields[::2], fields[1::2])
    return {text(k): text(v) for k, v in items}


def flat(fields: dict[str, str]) -> list[str]:
    return [item for pair in fields.items() for item in pair]


class Registry:
    """Resources by name under ``prefix`` (a hash tag such as ``asl:{sm}``), each hash keyed by ``letter``."""

    def __init__(self, redis: Redis, prefix: str, letter: str):
        self.redis = redis
        self.prefix = prefix
        self.letter = letter
        self.names_key = f"{prefix}:names"
        self._create = redis.register_script(_CREATE)

    def key(self, name: str) -> str:
        return f"{self.prefix}:{self.letter}:{name}"

    def get(self, name: str) -> dict[str, str] | None:
        return decode(self.redis.hgetall(self.key(name))) or None

    def create(self, name: str, fields: dict[str, str]) -> dict[str, str] | None:
        """Register ``name`` unless it exists: None when created now, else the existing fields."""
        existing = self._create(keys=[self.key(name), self.names_key], args=[name, *flat(fields)])
        return decode(existing) if existing else None

    def delete(self, name: str, *also: str) -> bool:
        """Remove ``name`` with the keys ``also`` that belong to it; False if it was not there."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.key(name))
        for key in also:
            pipe.delete(key)
        pipe.zrem(self.names_key, name)
        return bool(pipe.execute()[0])

    def names(self, after: str | None, limit: int) -> list[str]:
        """Registered names in order, those after ``after``, at most ``limit``."""
        low = "-" if after is None else "(" + after
        return [text(n) for n in self.redis.zrangebylex(self.names_key, low, "+", start=0, num=limit)]
