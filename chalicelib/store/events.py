"""Events by correlation key: the tasks waiting for one, and the events that came before their wait.

Every key of one correlation value shares a hash tag (``e.`` and 22 characters of
the value's SHA-256), so each change is one Lua script on one Redis Cluster slot::

    asl:{e.<h>}:w   hash: the open waits, field "<executionId>|<point>", value what it accepts (JSON);
                    and "=<executionId>|<point>" -> the event given to that wait (kept until the TTL)
    asl:{e.<h>}:b   list: buffered events in arrival order, each "<expiresAt>|<event JSON>"
    asl:{e.<h>}:s   hash: event ID -> what its delivery did ("resumed:<waits>", "buffered", "none")
    asl:{e.<h>}:v   string: the version, raised by every change of the waits or the buffer

The service decides which wait takes which event (patterns are matched in
Python) from what it read, and the scripts apply that decision only if the
version is still the one it read (else ``retry``): an event is either given to
waits or buffered, and a wait either takes a buffered event or is registered,
never both, and nothing is lost between the two.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from redis import Redis

PREFIX = "asl"

_KEEP = """
local function keep(key, ttl)  -- a key lives at least ttl seconds more
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl) end
end
"""

_OFFER = _KEEP + """
-- KEYS: waits, buffer, seen, version. ARGV: event id, version read, buffered entry or '', ttl, most entries
-- the buffer may hold, how many waits take the event, how many waits are no longer open, then those waits
-- (they take the event), those no longer open (dropped), and expired buffered entries (dropped). Returns
-- {'duplicate', what it did} | {'retry'} | {'full'} | {'done', what it did}.
local prior = redis.call('HGET', KEYS[3], ARGV[1])
if prior then return {'duplicate', prior} end
if (redis.call('GET', KEYS[4]) or '0') ~= ARGV[2] then return {'retry'} end
local ttl = tonumber(ARGV[4])
local count = tonumber(ARGV[6])
local first_gone = 8 + count
local first_expired = first_gone + tonumber(ARGV[7])
local changed = false
for i = first_expired, #ARGV do
  if redis.call('LREM', KEYS[2], 1, ARGV[i]) == 1 then changed = true end
end
if count == 0 and ARGV[3] ~= '' and redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[5]) then
  if changed then redis.call('INCR', KEYS[4]) end
  return {'full'}
end
for i = first_gone, first_expired - 1 do
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then changed = true end
end
local outcome = 'none'
if count > 0 then
  local taken = {}
  for i = 8, 7 + count do
    if redis.call('HDEL', KEYS[1], ARGV[i]) ~= 1 then return {'retry'} end
    redis.call('HSET', KEYS[1], '=' .. ARGV[i], ARGV[3])
    taken[#taken + 1] = ARGV[i]
  end
  outcome = 'resumed:' .. table.concat(taken, ',')
  keep(KEYS[1], ttl)
elseif ARGV[3] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[3])
  keep(KEYS[2], ttl)
  outcome = 'buffered'
end
redis.call('HSET', KEYS[3], ARGV[1], outcome)
keep(KEYS[3], ttl)
if outcome ~= 'none' or changed then
  redis.call('INCR', KEYS[4])
  keep(KEYS[4], ttl)
end
return {'done', outcome}
"""

_OPEN = _KEEP + """
-- KEYS: waits, buffer, version. ARGV: wait, what it accepts, version read, ttl (how long the wait may stay
-- open), the buffered entry it takes or '', then expired entries to drop. Returns {'given', entry} (a retry
-- of an earlier opening), {'retry'}, {'took', entry} or {'waiting'}.
local given = redis.call('HGET', KEYS[1], '=' .. ARGV[1])
if given then return {'given', given} end
if (redis.call('GET', KEYS[3]) or '0') ~= ARGV[3] then return {'retry'} end
local ttl = tonumber(ARGV[4])
for i = 6, #ARGV do redis.call('LREM', KEYS[2], 1, ARGV[i]) end
local outcome = {'waiting'}
if ARGV[5] ~= '' then
  if redis.call('LREM', KEYS[2], 1, ARGV[5]) ~= 1 then return {'retry'} end
  redis.call('HSET', KEYS[1], '=' .. ARGV[1], ARGV[5])
  outcome = {'took', ARGV[5]}
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
keep(KEYS[1], ttl)
redis.call('INCR', KEYS[3])
keep(KEYS[3], ttl)
return outcome
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


def correlation_hash(value: Any) -> str:
    """22 characters of the SHA-256 of a correlation value's canonical JSON ("42" and 42 differ)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:22]


class EventStore:
    """The waits and buffered events of each correlation value (see the module's docstring)."""

    def __init__(self, redis: Redis):
        self.redis = redis
        self._offer = redis.register_script(_OFFER)
        self._open = redis.register_script(_OPEN)

    @staticmethod
    def keys(value: Any) -> dict[str, str]:
        tag = f"{PREFIX}:{{e.{correlation_hash(value)}}}:"
        return {name: tag + name for name in ("w", "b", "s", "v")}

    def read(self, value: Any) -> tuple[str, dict[str, dict], list[str]]:
        """(version, open waits -> what each accepts, buffered entries in arrival order)."""
        keys = self.keys(value)
        # The version first: a change after it makes the scripts refuse the decision (retry).
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys["v"])
        pipe.hgetall(keys["w"])
        pipe.lrange(keys["b"], 0, -1)
        version, waits, buffered = pipe.execute()
        open_waits = {_text(k): json.loads(_text(v)) for k, v in waits.items() if not _text(k).startswith("=")}
        return _text(version) or "0", open_waits, [_text(entry) for entry in buffered]

    def offer(self, value: Any, event_id: str, version: str, taking: list[str], buffered: str,
              ttl: int, max_buffered: int, gone: list[str] = (), expired: list[str] = ()) -> tuple[str, str]:
        """Give an event to ``taking`` waits, or buffer it (``buffered``, '' for neither) unless the buffer
        holds ``max_buffered`` entries; drop the registered waits that are ``gone`` (their task no longer
        waits) and the ``expired`` buffered entries.

        (``done`` | ``duplicate`` | ``retry`` | ``full``, what the delivery did: ``resumed:<waits>``,
        ``buffered`` or ``none``; for a duplicate, what the first delivery did; ``full``: nothing, the
        event is not remembered)."""
        keys = self.keys(value)
        reply = self._offer(keys=[keys["w"], keys["b"], keys["s"], keys["v"]],
                            args=[event_id, version, buffered, max(1, int(ttl)), max_buffered, len(taking),
                                  len(gone), *taking, *gone, *expired])
        return _text(reply[0]), _text(reply[1]) if len(reply) > 1 else ""

    def open(self, value: Any, wait: str, accepts: dict, version: str, taking: str, expired: list[str],
             ttl: int) -> tuple[str, str]:
        """Register ``wait`` for ``ttl`` seconds at least, or give it the buffered entry ``taking``; drop
        ``expired`` entries.

        (``waiting`` | ``took`` | ``given`` | ``retry``, the entry it gets, if any)."""
        keys = self.keys(value)
        reply = self._open(keys=[keys["w"], keys["b"], keys["v"]],
                           args=[wait, json.dumps(accepts, separators=(",", ":")), version, max(1, int(ttl)),
                                 taking, *expired])
        return _text(reply[0]), _text(reply[1]) if len(reply) > 1 else ""

    def given(self, value: Any, wait: str) -> str | None:
        """The entry given to ``wait`` (by an event or from the buffer), if any."""
        entry = self.redis.hget(self.keys(value)["w"], "=" + wait)
        return None if entry is None else _text(entry)
