"""The registry of state machines created through the Step Functions API, beside ``state_machines/``.

One hash per machine (``asl:{sm}:m:<name>``: its definition's text, role, type, dates,
revision), its tags (``asl:{sm}:t:<name>``) and the sorted set of names (``asl:{sm}:names``),
all under one hash tag, so every change is one script on one slot of a Redis Cluster too.
An execution started from a machine stores its own definition by content hash
(``asl:d:<sha256>``), so later updates and deletes do not touch it. Registered machines
live until deleted: these keys have no TTL.
"""
from __future__ import annotations

from redis import Redis

PREFIX = "asl:{sm}"
NAMES_KEY = f"{PREFIX}:names"

# KEYS: machine hash, names set. ARGV: name, then field/value pairs. Returns the existing fields, or {}.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HGETALL', KEYS[1]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return {}
"""
# KEYS: machine hash. ARGV: field/value pairs. Returns 1, or 0 when there is no such machine.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""
# KEYS: machine hash, tags hash. ARGV: field/value pairs of tags; returns 0 when there is no machine.
_TAG = """
if ARGV[1] == 'shipped' or redis.call('EXISTS', KEYS[1]) == 1 then
  if #ARGV > 1 then redis.call('HSET', KEYS[2], unpack(ARGV, 2)) end
  return 1
end
return 0
"""


def _decode(fields) -> dict[str, str]:
    if isinstance(fields, dict):
        items = fields.items()
    else:
        items = zip(fields[::2], fields[1::2])
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in items}


class Machines:
    """Registered state machines by name."""

    def __init__(self, redis: Redis):
        self.redis = redis
        self._create = redis.register_script(_CREATE)
        self._update = redis.register_script(_UPDATE)
        self._tag = redis.register_script(_TAG)

    @staticmethod
    def key(name: str) -> str:
        return f"{PREFIX}:m:{name}"

    @staticmethod
    def tags_key(name: str) -> str:
        return f"{PREFIX}:t:{name}"

    def get(self, name: str) -> dict[str, str] | None:
        fields = self.redis.hgetall(self.key(name))
        return _decode(fields) or None

    def create(self, name: str, fields: dict[str, str], tags: dict[str, str]) -> dict[str, str] | None:
        """Register ``name`` unless it exists; None when created, else the existing fields."""
        flat = [item for pair in fields.items() for item in pair]
        existing = self._create(keys=[self.key(name), NAMES_KEY], args=[name, *flat])
        if existing:
            return _decode(existing)
        if tags:
            self.redis.hset(self.tags_key(name), mapping=tags)
        return None

    def update(self, name: str, fields: dict[str, str]) -> bool:
        flat = [item for pair in fields.items() for item in pair]
        return bool(self._update(keys=[self.key(name)], args=flat))

    def delete(self, name: str) -> bool:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.key(name))
        pipe.delete(self.tags_key(name))
        pipe.zrem(NAMES_KEY, name)
        return bool(pipe.execute()[0])

    def names(self, after: str | None, limit: int) -> list[str]:
        """Registered names in order, those after ``after``, at most ``limit``."""
        low = "-" if after is None else "(" + after
        return [n.decode() if isinstance(n, bytes) else n
                for n in self.redis.zrangebylex(NAMES_KEY, low, "+", start=0, num=limit)]

    def tags(self, name: str) -> dict[str, str]:
        return _decode(self.redis.hgetall(self.tags_key(name)))

    def tag(self, name: str, tags: dict[str, str], *, shipped: bool) -> bool:
        """Set tags on a machine (shipped ones have no hash of their own); False if there is none."""
        flat = [item for pair in tags.items() for item in pair]
        return bool(self._tag(keys=[self.key(name), self.tags_key(name)],
                              args=["shipped" if shipped else "registered", *flat]))

    def untag(self, name: str, keys: list[str]) -> None:
        if keys:
            self.redis.hdel(self.tags_key(name), *keys)
