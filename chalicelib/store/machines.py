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

from .registry import Registry, decode, flat

PREFIX = "asl:{sm}"

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


class Machines(Registry):
    """Registered state machines by name (see :class:`~.registry.Registry`), and their tags."""

    def __init__(self, redis: Redis):
        super().__init__(redis, PREFIX, "m")
        self._update = redis.register_script(_UPDATE)
        self._tag = redis.register_script(_TAG)

    def tags_key(self, name: str) -> str:
        return f"{PREFIX}:t:{name}"

    def create(self, name: str, fields: dict[str, str], tags: dict[str, str]) -> dict[str, str] | None:
        """Register ``name`` unless it exists; None when created, else the existing fields."""
        existing = super().create(name, fields)
        if existing is None and tags:
            self.redis.hset(self.tags_key(name), mapping=tags)
        return existing

    def update(self, name: str, fields: dict[str, str]) -> bool:
        return bool(self._update(keys=[self.key(name)], args=flat(fields)))

    def delete(self, name: str) -> bool:
        return super().delete(name, self.tags_key(name))

    def tags(self, name: str) -> dict[str, str]:
        return decode(self.redis.hgetall(self.tags_key(name)))

    def tag(self, name: str, tags: dict[str, str], *, shipped: bool) -> bool:
        """Set tags on a machine (shipped ones have no hash of their own); False if there is none."""
        return bool(self._tag(keys=[self.key(name), self.tags_key(name)],
                              args=["shipped" if shipped else "registered", *flat(tags)]))

    def untag(self, name: str, keys: list[str]) -> None:
        if keys:
            self.redis.hdel(self.tags_key(name), *keys)
