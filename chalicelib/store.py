"""Executions and continuations in Redis.

Key layout (``t`` is the execution's 4-character shard tag, shared by its
continuation IDs; the braces make it a Redis Cluster hash tag, so every key of
one execution lives in one slot and each multi-key change is one Lua script)::

    asl:d:<sha256>            definition text, stored once per distinct definition
    asl:{t}:x:<executionId>   hash: ver, status, def, doc (JSON), snap (zlib'd JSON), open (JSON)
    asl:{t}:h:<executionId>   list: one item per commit, its history events (zlib'd JSON), capped
    asl:{t}:c:<sha256(id)>    hash: one continuation (exec, point, status, expiresAt, ...)
    asl:timers                sorted set: due timers, member "<kind>|<executionId>|<point>", score = due time

Redis only ever sees the SHA-256 of a continuation ID. ``open`` maps each open
suspension point to ``[nonce, expiresAt]``; the ID is derived from the nonce
with the service's secret (see ``continuations.py``), so a copy of the Redis
data cannot be used to redeem anything.

Round trips: a write (start, resume, checkpoint) is one pipeline: keep the
definition stored, add due timers, run the commit script. Claiming a
continuation is one script call that also returns the execution. The timer
set is written before the commit, in another slot: a timer whose execution
did not commit finds nothing to do when it fires.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import NoScriptError

PREFIX = "asl"
TIMERS_KEY = f"{PREFIX}:timers"

_CLAIM = """
local c = redis.call('HMGET', KEYS[1], 'status', 'expiresAt', 'lease', 'exec', 'answeredAt', 'reason', 'point')
if not c[1] then return {'missing'} end
if c[1] == 'redeemed' then return {'redeemed', c[4], c[5] or ''} end
if c[1] == 'closed' then return {'closed', c[4], c[6] or ''} end
if tonumber(c[2]) <= tonumber(ARGV[1]) and ARGV[5] ~= 'force' then return {'expired', c[4]} end
if c[1] == 'claimed' and tonumber(c[3]) > tonumber(ARGV[1]) then return {'busy', c[4]} end
local xkey = ARGV[4] .. c[4]
local x = redis.call('HMGET', xkey, 'ver', 'doc', 'snap', 'open', 'def')
if not x[1] then return {'expired', c[4]} end
redis.call('HSET', KEYS[1], 'status', 'claimed', 'lease', ARGV[2], 'claim', ARGV[3])
return {'ok', c[4], c[7], x[1], x[2], x[3], x[4], x[5]}
"""

# KEYS: exec, history, [claimed continuation], created continuations..., closed continuations...
# ARGV: header JSON, doc, snap, open, [history item: the events, compressed], created records (JSON)..., close reasons...
_COMMIT = """
local head = cjson.decode(ARGV[1])
local xkey = KEYS[1]
local ver = 0
if head.create then
  if redis.call('EXISTS', xkey) == 1 then return {'exists'} end
else
  local current = redis.call('HGET', xkey, 'ver')
  if not current then return {'gone'} end
  if tonumber(current) ~= head.ver then return {'conflict', current} end
  ver = head.ver
  if head.claim then
    if redis.call('HGET', KEYS[3], 'claim') ~= head.claim then return {'lost'} end
  end
end
redis.call('HSET', xkey, 'ver', ver + 1, 'status', head.status, 'def', head.def,
           'doc', ARGV[2], 'snap', ARGV[3], 'open', ARGV[4])
redis.call('EXPIRE', xkey, head.ttl)
local a = 5
if head.events > 0 then
  redis.call('RPUSH', KEYS[2], ARGV[a]); a = a + 1
  redis.call('LTRIM', KEYS[2], -head.keep, -1)
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], head.ttl) end
local k = 3
if head.claim then
  if head.outcome == 'redeemed' then
    redis.call('HSET', KEYS[3], 'status', 'redeemed', 'answeredAt', head.now, 'answer', head.answer)
  else
    redis.call('HSET', KEYS[3], 'status', 'closed', 'reason', head.outcome)
  end
  redis.call('HDEL', KEYS[3], 'claim', 'lease')
  k = 4
end
for n = 1, head.created do
  local rec = cjson.decode(ARGV[a]); a = a + 1
  for field, value in pairs(rec) do
    if field ~= 'ttl' then redis.call('HSET', KEYS[k], field, value) end
  end
  redis.call('EXPIRE', KEYS[k], rec.ttl)
  k = k + 1
end
for n = 1, head.closed do
  if redis.call('HGET', KEYS[k], 'status') == 'open' or redis.call('HGET', KEYS[k], 'status') == 'claimed' then
    redis.call('HSET', KEYS[k], 'status', 'closed', 'reason', ARGV[a])
    redis.call('HDEL', KEYS[k], 'claim', 'lease')
  end
  a = a + 1
  k = k + 1
end
return {'ok', tostring(ver + 1)}
"""

_TOUCH_DEFINITION = """
local ttl = tonumber(ARGV[1])
local current = redis.call('TTL', KEYS[1])
if current == -2 then
  if ARGV[2] == '' then return 0 end
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ttl)
elseif current >= 0 and current < ttl then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return 1
"""


@dataclass
class ExecutionRecord:
    """An execution as stored: the document, the snapshot while it can go on, and version."""

    id: str
    version: int
    status: str
    definition_hash: str
    document: dict
    snapshot: dict | None
    open: dict  # suspension point -> [nonce, expiresAt]


@dataclass
class Claim:
    continuation_key: str
    token: str
    point: str
    execution: ExecutionRecord


class ClaimRefused(Exception):
    """A continuation could not be claimed; ``reason`` says why."""

    def __init__(self, reason: str, execution_id: str | None, detail: str = ""):
        super().__init__(reason)
        self.reason = reason  # missing | redeemed | closed | expired | busy
        self.execution_id = execution_id
        self.detail = detail


class CommitConflict(Exception):
    """Another writer changed the execution first (``reason``: conflict, lost, exists, gone)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class NewContinuation:
    key_hash: str
    fields: dict  # exec, point, state, kind, branch, expiresAt, parameters (JSON text)
    ttl: int


@dataclass
class Commit:
    """One atomic change to an execution."""

    record: ExecutionRecord
    ttl: int
    events: list[dict]
    create: bool = False
    claim: Claim | None = None
    answer: str = ""
    created: list[NewContinuation] | None = None
    closed: list[tuple[str, str]] | None = None  # (continuation key hash, reason)
    now: float = 0.0
    outcome: str = "redeemed"  # what the claimed continuation becomes: redeemed, or a close reason
    timers: list[tuple[str, float]] | None = None  # (member, due) to add to the timer set
    definition: tuple[str, str] | None = None  # (hash, text) to keep stored at least as long


def _pack(value: Any) -> bytes:
    """Compact JSON, zlib-compressed: snapshots and history repeat themselves a lot."""
    return zlib.compress(json.dumps(value, separators=(",", ":"), default=str).encode(), 6)


def _unpack(data: bytes) -> Any:
    return json.loads(zlib.decompress(data))


def _evalsha(pipe, script, keys: list, args: list) -> None:
    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Store:
    def __init__(self, redis: Redis, history_limit: int = 1000):
        self.redis = redis
        self.history_limit = history_limit
        self._claim = redis.register_script(_CLAIM)
        self._commit = redis.register_script(_COMMIT)
        self._touch = redis.register_script(_TOUCH_DEFINITION)
        self._known_definitions: set[str] = set()

    # -- keys -------------------------------------------------------------------

    @staticmethod
    def execution_key(execution_id: str) -> str:
        return f"{PREFIX}:{{{execution_id[:4]}}}:x:{execution_id}"

    @staticmethod
    def history_key(execution_id: str) -> str:
        return f"{PREFIX}:{{{execution_id[:4]}}}:h:{execution_id}"

    @staticmethod
    def continuation_key(tag: str, key_hash: str) -> str:
        return f"{PREFIX}:{{{tag}}}:c:{key_hash}"

    @staticmethod
    def definition_key(definition_hash: str) -> str:
        return f"{PREFIX}:d:{definition_hash}"

    # -- definitions ------------------------------------------------------------

    def get_definition(self, definition_hash: str) -> str | None:
        return _text(self.redis.get(self.definition_key(definition_hash)))

    # -- executions -------------------------------------------------------------

    def load(self, execution_id: str) -> ExecutionRecord | None:
        values = self.redis.hmget(self.execution_key(execution_id), "ver", "doc", "snap", "open", "def", "status")
        if values[0] is None:
            return None
        return _record(execution_id, *values[:5])

    def history(self, execution_id: str) -> list[dict]:
        """The latest ``history_limit`` events, oldest first."""
        events = [event for item in self.redis.lrange(self.history_key(execution_id), 0, -1)
                  for event in _unpack(item)]
        return events[-self.history_limit:]

    def commit(self, change: Commit) -> int:
        """Apply a change atomically; return the new version or raise CommitConflict.

        One round trip: the definition touch and the timers go in the same pipeline.
        """
        record = change.record
        tag = record.id[:4]
        keys = [self.execution_key(record.id), self.history_key(record.id)]
        if change.claim is not None:
            keys.append(change.claim.continuation_key)
        created = change.created or []
        closed = change.closed or []
        keys += [self.continuation_key(tag, c.key_hash) for c in created]
        keys += [self.continuation_key(tag, key_hash) for key_hash, _ in closed]
        ttl = max(1, int(change.ttl))
        head = {
            "create": change.create,
            "ver": record.version,
            "claim": change.claim.token if change.claim else False,
            "outcome": change.outcome,
            "status": record.status,
            "def": record.definition_hash,
            "ttl": ttl,
            "events": len(change.events),
            "keep": self.history_limit,
            "created": len(created),
            "closed": len(closed),
            "now": str(change.now),
            "answer": change.answer,
        }
        args = [
            json.dumps(head),
            json.dumps(record.document, separators=(",", ":")),
            b"" if record.snapshot is None else _pack(record.snapshot),
            json.dumps(record.open, separators=(",", ":")),
        ]
        if change.events:  # one list item per commit: its events, compressed
            args.append(_pack(change.events[-self.history_limit:]))
        args += [json.dumps({**c.fields, "ttl": max(1, int(c.ttl))}, separators=(",", ":")) for c in created]
        args += [reason for _, reason in closed]
        definition = change.definition

        def fill(pipe) -> None:
            if definition is not None:
                known = definition[0] in self._known_definitions
                _evalsha(pipe, self._touch, [self.definition_key(definition[0])],
                         [ttl, "" if known else definition[1]])
            if change.timers:
                pipe.zadd(TIMERS_KEY, {member: due for member, due in change.timers})
            _evalsha(pipe, self._commit, keys, args)

        replies = self._pipeline(fill)
        if definition is not None:
            if not replies[0]:  # it had expired from Redis: store it again
                self._touch(keys=[self.definition_key(definition[0])], args=[ttl, definition[1]])
            self._known_definitions.add(definition[0])
        reply = replies[-1]
        status = _text(reply[0])
        if status != "ok":
            raise CommitConflict(status)
        record.version = int(_text(reply[1]))
        return record.version

    def _pipeline(self, fill) -> list:
        """Run a pipeline built by ``fill``; if Redis lost our scripts (restart), load them and rerun.

        redis-py would check every script with SCRIPT EXISTS before each pipeline (an
        extra round trip); calling EVALSHA directly keeps a write at one round trip.
        """
        pipe = self.redis.pipeline(transaction=False)
        fill(pipe)
        replies = pipe.execute(raise_on_error=False)
        if any(isinstance(r, NoScriptError) for r in replies):
            for script in (self._touch, self._commit):
                script.sha = self.redis.script_load(script.script)
            pipe = self.redis.pipeline(transaction=False)
            fill(pipe)
            replies = pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    # -- timers -----------------------------------------------------------------

    def due_timers(self, now: float, limit: int) -> list[tuple[str, float]]:
        return [(_text(m), due) for m, due in
                self.redis.zrangebyscore(TIMERS_KEY, "-inf", now, start=0, num=limit, withscores=True)]

    def add_timers(self, timers: list[tuple[str, float]]) -> None:
        if timers:
            self.redis.zadd(TIMERS_KEY, {member: due for member, due in timers})

    def remove_timer(self, member: str) -> None:
        self.redis.zrem(TIMERS_KEY, member)

    # -- continuations ----------------------------------------------------------

    def claim(self, tag: str, key_hash: str, now: float, lease_seconds: float, token: str,
              force: bool = False) -> Claim:
        """Claim a continuation under a lease; ``force`` also claims an expired one (for timeouts)."""
        key = self.continuation_key(tag, key_hash)
        prefix = f"{PREFIX}:{{{tag}}}:x:"
        args = [now, now + lease_seconds, token, prefix, "force" if force else ""]
        reply = self._claim(keys=[key], args=args)
        if _text(reply[0]) != "ok":
            detail = [_text(v) for v in reply]
            raise ClaimRefused(detail[0], detail[1] if len(detail) > 1 else None, detail[2] if len(detail) > 2 else "")
        execution_id, point = _text(reply[1]), _text(reply[2])
        ver, doc, snap, open_, definition = reply[3:8]  # the snapshot stays bytes (compressed)
        record = _record(execution_id, ver, doc, snap, open_, definition)
        return Claim(key, token, point, record)

    def continuation(self, tag: str, key_hash: str) -> dict | None:
        values = self.redis.hgetall(self.continuation_key(tag, key_hash))
        if not values:
            return None
        return {_text(k): _text(v) for k, v in values.items()}


def _record(execution_id: str, ver, doc, snap, open_, definition) -> ExecutionRecord:
    document = json.loads(doc)
    return ExecutionRecord(
        id=execution_id,
        version=int(ver),
        status=document.get("status", ""),
        definition_hash=_text(definition) or "",
        document=document,
        snapshot=_unpack(snap) if snap else None,
        open=json.loads(open_) if open_ else {},
    )
