"""Executions and continuations in Redis.

Key layout (``t`` is the execution's 4-character shard tag, shared by its
continuation IDs; the braces make it a Redis Cluster hash tag, so every key of
one execution lives in one slot and each multi-key change is one Lua script)::

    asl:d:<sha256>            string: definition text, stored once per distinct definition
    asl:{t}:x:<executionId>   string: "<version>|" then the record, compressed (see ``pack_record``)
    asl:{t}:h:<executionId>   list: older history events, compressed chunks (only for long histories)
    asl:{t}:c:<hash(id)>      hash: one continuation: exec, point, expiresAt, status
                              (+ lease, claim while claimed; + about, answer, answeredAt and the
                              answer's digest once answered; + about, reason once closed)
    asl:{t}:o:<executionId>   hash: the execution's pending calls (its outbox): task-token calls its last
                              commits stored and nobody has made yet; field = the token's nonce, value
                              "<since>|<call JSON>" (see ``take_call``)
    asl:timers                sorted set: due timers, member "<kind>|<executionId>|<point>", score = due time
    asl:{ix}:...              the execution index (``GET /executions``), in its own slot; see ``page``
                              and ``scripts/index.lua``

An execution is one string (see ``records.py``). The Lua scripts in
``scripts/`` only read the version in front; the service reads and writes the
rest. When the record holds more than ``2 * INLINE_EVENTS`` events,
all but the latest ``INLINE_EVENTS`` move to the history list in one chunk, so
a commit costs what it adds, not what the execution did before.

Redis only ever sees a hash of a continuation ID. The record's ``open`` maps
each open suspension point to ``[nonce, expiresAt]``; the ID is derived from
the nonce with the service's secret (see ``chalicelib/service/ids.py``), so a copy of
the Redis data cannot be used to redeem anything.

Round trips: a write (start, resume, checkpoint) is one pipeline: keep the
definition stored, add due timers, run the commit script. Claiming a
continuation is one script call that also returns the execution. The timer
set is written before the commit, in another slot: a timer whose execution
did not commit finds nothing to do when it fires.
"""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis
from redis.cluster import RedisCluster

from . import pipelines
from .machines import Machines
from .records import (INLINE_EVENTS, ExecutionRecord, compact, deflate_text, inflate, kept_history, pack_record,
                      unpack_record)

PREFIX = "asl"
TIMERS_KEY = f"{PREFIX}:timers"
INDEX_PREFIX = f"{PREFIX}:{{ix}}:"
#: The statuses the index lists executions under (as the service reports them).
STATUSES = ("SUCCEEDED", "FAILED", "SUSPENDED", "RUNNING", "TIMED_OUT", "ABORTED")
SCRIPTS = Path(__file__).with_name("scripts")


def _script(name: str) -> str:
    """The text of ``scripts/<name>.lua``, read once when the module is imported."""
    return (SCRIPTS / f"{name}.lua").read_text(encoding="utf-8")


_CLAIM, _RELEASE, _COMMIT, _KEEP, _TAKE, _INDEX, _INDEX_PUT, _PAGE, _SWAP = (_script(n) for n in (
    "claim", "release", "commit", "keep", "take", "index", "index_put", "page", "swap"))


@dataclass
class Claim:
    continuation_key: str
    token: str
    point: str
    execution: ExecutionRecord


class ClaimRefused(Exception):
    """A continuation could not be claimed; ``reason`` says why."""

    def __init__(self, reason: str, execution_id: str | None, detail: str = "", digest: str = ""):
        super().__init__(reason)
        self.reason = reason  # missing | redeemed | closed | expired | busy
        self.execution_id = execution_id
        self.detail = detail  # redeemed: when (epoch seconds); closed: why; busy: when the lease ends
        self.digest = digest  # redeemed: the digest of the answer it was redeemed with


class CommitConflict(Exception):
    """Another writer changed the execution first (``reason``: conflict, lost, exists, gone)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class NewContinuation:
    key_hash: str
    fields: dict  # exec, point, expiresAt, status
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
    digest: str = ""  # of the answer the claimed continuation is redeemed with (compared on retries)
    about: dict[str, dict] | None = None  # point -> what it asked (state, branch, kind, parameters)
    created: list[NewContinuation] | None = None
    closed: list[tuple[str, str, str]] | None = None  # (continuation key hash, reason, point)
    now: float = 0.0
    outcome: str = "redeemed"  # what the claimed continuation becomes: redeemed, or a close reason
    timers: list[tuple[str, float]] | None = None  # (member, due) to add to the timer set
    definition: tuple[str, str] | None = None  # (hash, text) to keep stored at least as long
    calls: list[tuple[str, str]] | None = None  # pending calls to store: (field, call JSON)
    name: tuple[str, str] | None = None  # (name, holder): kept at least ``ttl``, before the commit script runs


def _listing(record: ExecutionRecord, now: float, ttl: int) -> dict:
    """What the index keeps of an execution: where it is listed and until when."""
    return {"p": INDEX_PREFIX, "id": record.id, "machine": record.document.get("stateMachine") or "",
            "status": record.status, "start": str(start_ms(record.document.get("startDate"), now)),
            "expires": repr(now + ttl)}


def start_ms(iso: str | None, now: float) -> int:
    """An ISO 8601 start date (``...Z``) in milliseconds since the epoch; ``now`` when there is none."""
    try:
        moment = datetime.datetime.fromisoformat((iso or "").replace("Z", "+00:00"))
        return round(moment.timestamp() * 1000)
    except ValueError:
        return round(now * 1000)


def _evalsha(pipe, script, keys: list, args: list) -> None:
    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Store:
    def __init__(self, redis: Redis, history_limit: int = 1000):
        self.redis = redis
        self.history_limit = history_limit
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)
        self._commit = redis.register_script(_INDEX + _COMMIT)
        self._keep = redis.register_script(_KEEP)
        self._take = redis.register_script(_TAKE)
        self._index = redis.register_script(_INDEX + _INDEX_PUT)
        self._page = redis.register_script(_INDEX + _PAGE)
        #: On a Cluster the index has its own slot, so it is changed by a script of its own right after
        #: each commit; on a single server the commit script changes it in the same step.
        self.cluster = isinstance(redis, RedisCluster)
        self._swap = redis.register_script(_SWAP)
        self._known_definitions: set[str] = set()
        self.machines = Machines(redis)  # the registry of state machines (``machines``)

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
    def calls_key(execution_id: str) -> str:
        return f"{PREFIX}:{{{execution_id[:4]}}}:o:{execution_id}"

    @staticmethod
    def definition_key(definition_hash: str) -> str:
        return f"{PREFIX}:d:{definition_hash}"

    @staticmethod
    def name_key(name: str) -> str:
        return f"{PREFIX}:n:{name}"

    # -- execution names --------------------------------------------------------

    def reserve_name(self, name: str, owner: str, ttl: int) -> str | None:
        """Reserve ``name`` for ``owner`` (SET NX): None when it was free, else who holds it."""
        key = self.name_key(name)
        if self.redis.set(key, owner, nx=True, ex=max(1, ttl)):
            return None
        held = _text(self.redis.get(key))
        return held if held is not None else self.reserve_name(name, owner, ttl)

    def name_owner(self, name: str) -> str | None:
        return _text(self.redis.get(self.name_key(name)))

    def replace_name(self, name: str, held: str, owner: str, ttl: int) -> bool:
        """Give ``name`` to ``owner`` if it is still ``held`` as read (a start that died took it)."""
        return bool(self._swap(keys=[self.name_key(name)], args=[held, owner, max(1, ttl)]))

    # -- definitions ------------------------------------------------------------

    def get_definition(self, definition_hash: str) -> str | None:
        return _text(self.redis.get(self.definition_key(definition_hash)))

    # -- executions -------------------------------------------------------------

    def load(self, execution_id: str) -> ExecutionRecord | None:
        stored = self.redis.get(self.execution_key(execution_id))
        return None if stored is None else unpack_record(execution_id, stored)

    def history(self, execution_id: str) -> list[dict]:
        """``ExecutionStarted`` and the latest events, ``history_limit`` in all, oldest first: the
        record's first event when it is ``ExecutionStarted`` (kept there), the list's chunks, then the
        rest of the record's own."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.lrange(self.history_key(execution_id), 0, -1)
        pipe.get(self.execution_key(execution_id))
        chunks, stored = pipe.execute()
        if stored is None:
            return []
        events = [event for chunk in chunks for event in inflate(chunk)]
        own = unpack_record(execution_id, stored).history
        pinned = own[:1] if own and own[0].get("type") == "ExecutionStarted" else []
        return sum(kept_history(pinned + events + own[len(pinned):], self.history_limit), [])

    def commit(self, change: Commit) -> int:
        """Apply a change atomically; return the new version or raise CommitConflict.

        One round trip: the definition touch and the timers go in the same pipeline.
        """
        record = change.record
        tag = record.id[:4]
        pinned, history = kept_history(record.history + change.events, self.history_limit)
        spill = None
        if len(history) > 2 * INLINE_EVENTS:
            spill, history = history[:-INLINE_EVENTS], history[-INLINE_EVENTS:]
        history = pinned + history  # ExecutionStarted stays in the record, ahead of everything
        keys = [self.execution_key(record.id), self.history_key(record.id)]
        if change.claim is not None:
            keys.append(change.claim.continuation_key)
        created = change.created or []
        closed = change.closed or []
        about = change.about or {}
        keys += [self.continuation_key(tag, c.key_hash) for c in created]
        keys += [self.continuation_key(tag, key_hash) for key_hash, _, _ in closed]
        calls = change.calls or []
        if calls:
            keys.append(self.calls_key(record.id))
        ttl = max(1, int(change.ttl))
        head = {
            "create": change.create,
            "ver": record.version,
            "claim": change.claim.token if change.claim else False,
            "outcome": change.outcome,
            "ttl": ttl,
            "created": len(created),
            "closed": len(closed),
            "now": str(change.now),
            "answer": change.answer,
            "digest": change.digest,
            "about": compact(about.get(change.claim.point)) if change.claim else "",
            "spill": spill is not None,
            "calls": len(calls),
            "chunks": -(-self.history_limit // INLINE_EVENTS) + 1,  # chunks hold >= INLINE_EVENTS events
        }
        listed = _listing(record, change.now, ttl)
        if not self.cluster:
            head["ix"] = listed
        args: list[Any] = [json.dumps(head), pack_record(record, history)]
        if spill is not None:
            args.append(deflate_text(compact(spill)))
        args += [compact({**c.fields, "ttl": max(1, int(c.ttl))}) for c in created]
        for _, reason, point in closed:
            args += [reason, compact(about.get(point))]
        for name, call in calls:
            args += [name, f"{change.now!r}|{call}"]
        definition = change.definition

        def fill(pipe) -> None:
            if definition is not None:
                known = definition[0] in self._known_definitions
                _evalsha(pipe, self._keep, [self.definition_key(definition[0])],
                         [ttl, "" if known else definition[1]])
            if change.timers:
                self._fill_timers(pipe, change.timers, ttl)
            if change.name is not None:  # sent ahead of the commit: a stored execution's name outlives it
                _evalsha(pipe, self._keep, [self.name_key(change.name[0])], [ttl, change.name[1]])
            _evalsha(pipe, self._commit, keys, args)

        replies = self._pipeline(fill)
        if definition is not None:
            if not replies[0]:  # it had expired from Redis: store it again
                self._keep(keys=[self.definition_key(definition[0])], args=[ttl, definition[1]])
            self._known_definitions.add(definition[0])
        reply = replies[-1]
        status = _text(reply[0])
        if status != "ok":
            raise CommitConflict(status)
        record.version = int(_text(reply[1]))
        record.history = history
        if self.cluster:
            self._put_in_index(listed, change.now, ttl)
        return record.version

    def _put_in_index(self, listed: dict, now: float, ttl: int) -> None:
        args = [INDEX_PREFIX, "put", listed["id"], listed["machine"], listed["status"], listed["start"],
                listed["expires"], repr(now), ttl]
        self._index(keys=self._index_keys(), args=args)

    def _pipeline(self, fill) -> list:
        """Run a pipeline built by ``fill`` (see ``pipelines``: Redis may have lost the scripts)."""
        return pipelines.run(self.redis, fill, (self._keep, self._commit))

    # -- the execution index ---------------------------------------------------

    @staticmethod
    def _index_keys() -> list[str]:
        return [INDEX_PREFIX + "exp", INDEX_PREFIX + "machines"]

    def page(self, now: float, *, status: str | None = None, machine: str | None = None,
             after: tuple[int, str] | None = None, limit: int = 50
             ) -> tuple[list[ExecutionRecord], tuple[int, str] | None]:
        """A page of executions, newest first (start time, then ID), and the cursor of the next page.

        ``machine`` "" is the executions of inline definitions; None is every state machine.
        Two round trips whatever the index holds: the page script (which first trims up to 100
        expired executions) and one pipeline reading the page's records. Reading heals the index:
        an entry whose execution is gone is dropped, one whose status changed is moved (on a
        Cluster the index is changed right after the commit, so a process that died in between
        leaves it behind); neither is listed under a status it no longer has.
        """
        cursor = ("", "") if after is None else (str(after[0]), after[1])
        flat = self._page(keys=self._index_keys(), args=[
            INDEX_PREFIX, repr(now), status or "*", "*" if machine is None else machine, *cursor, limit])
        entries = [(_text(flat[i]), int(float(_text(flat[i + 1]))), _text(flat[i + 2]), _text(flat[i + 3]))
                   for i in range(0, len(flat), 4)]
        more = len(entries) > limit
        entries = entries[:limit]
        pipe = self.redis.pipeline(transaction=False)
        for execution_id, *_ in entries:
            pipe.get(self.execution_key(execution_id))
        stored = pipe.execute() if entries else []
        records, seen = [], set()
        for (execution_id, start, listed_machine, listed_status), value in zip(entries, stored):
            if value is None:
                self._index(keys=self._index_keys(), args=[INDEX_PREFIX, "drop", execution_id, listed_machine])
                continue
            record = unpack_record(execution_id, value)
            if record.status != listed_status:
                self._index(keys=self._index_keys(), args=[INDEX_PREFIX, "move", execution_id, listed_machine,
                                                           record.status, start])
                if status is not None:
                    continue
            if execution_id not in seen:
                seen.add(execution_id)
                records.append(record)
        last = (entries[-1][1], entries[-1][0]) if more else None
        return records, last

    # -- pending calls (the outbox) ---------------------------------------------

    def pending_calls(self, execution_id: str) -> dict[str, float]:
        """The execution's pending calls: field -> since when (made, or last taken)."""
        values = self.redis.hgetall(self.calls_key(execution_id))
        return {_text(name): float(_text(value).partition("|")[0]) for name, value in values.items()}

    def take_call(self, execution_id: str, name: str, now: float, lease_seconds: float) -> str | None:
        """Take a pending call whose lease ended (stamping it ``now``); its JSON, or None."""
        call = self._take(keys=[self.calls_key(execution_id)], args=[name, now, lease_seconds])
        return _text(call) if call else None

    def remove_call(self, execution_id: str, name: str) -> None:
        """A pending call was made: remove it."""
        self.redis.hdel(self.calls_key(execution_id), name)

    # -- timers -----------------------------------------------------------------

    def due_timers(self, now: float, limit: int) -> list[tuple[str, float]]:
        return [(_text(m), due) for m, due in
                self.redis.zrangebyscore(TIMERS_KEY, "-inf", now, start=0, num=limit, withscores=True)]

    def add_timers(self, timers: list[tuple[str, float]], ttl: int) -> None:
        """Add timers; the set is kept at least ``ttl`` seconds (longer than any timer in it)."""
        if timers:
            self._pipeline(lambda pipe: self._fill_timers(pipe, timers, ttl))

    def _fill_timers(self, pipe, timers: list[tuple[str, float]], ttl: int) -> None:
        pipe.zadd(TIMERS_KEY, {member: due for member, due in timers})
        _evalsha(pipe, self._keep, [TIMERS_KEY], [max(1, int(ttl)), ""])

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
            detail = [_text(v) for v in reply] + ["", "", ""]
            raise ClaimRefused(detail[0], detail[1] or None, detail[2], detail[3])
        execution_id, point = _text(reply[1]), _text(reply[2])
        return Claim(key, token, point, unpack_record(execution_id, reply[3]))

    def release(self, claim: Claim) -> None:
        """Give a claim back unused, so the continuation can be answered at once."""
        self._release(keys=[claim.continuation_key], args=[claim.token])

    def continuation(self, tag: str, key_hash: str) -> dict | None:
        values = self.redis.hgetall(self.continuation_key(tag, key_hash))
        if not values:
            return None
        return {_text(k): _text(v) for k, v in values.items()}
