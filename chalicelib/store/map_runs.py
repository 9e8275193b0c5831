"""Map runs: the children of a Distributed Map, their leases and results, in the parent's slot.

Keys (``t`` is the parent execution's shard tag, so each script runs on one slot)::

    asl:{t}:m:<runId>        hash: the run: its settings (``config``, JSON), ``total``, ``cursor`` (the
                             next child nobody has claimed), ``done``, a count per child status
                             (``SUCCEEDED``, ``FAILED``, ...) and per item status (``itemsSUCCEEDED``, ...),
                             ``state`` (RUNNING until it ends), ``stopDate``, ``error``, ``cause``,
                             ``written`` (1 once the ResultWriter's files are written)
    asl:{t}:mi:<runId>       list: the children's inputs (JSON text), by index
    asl:{t}:ml:<runId>       sorted set: chunks being run, first index -> when the lease ends
    asl:{t}:mr:<runId>       hash: index -> the child's record once it has ended (set once)
    asl:{t}:mx:<runId>       sorted set: the run's STANDARD child executions a worker started (their
                             IDs), by start time: ListExecutions' ``mapRunArn``
    asl:{t}:me:<executionId> sorted set: the execution's runs, by start time

A worker claims a chunk of children (``claim``): one whose lease has run out, because
the worker that held it died, before any new one. Every key lives as long as the run's
hash (the run's TTL).
"""
from __future__ import annotations

import json
from pathlib import Path

from redis import Redis

from .store import tagged_key

_SCRIPTS = Path(__file__).with_name("scripts")
_CREATE, _CLAIM, _RECORD, _END = ((_SCRIPTS / f"map_{name}.lua").read_text(encoding="utf-8")
                                   for name in ("create", "claim", "record", "end"))

#: Sets the run's ``written`` only while the run is stored (a write never makes a key without a TTL).
_MARK = "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'written', '1') end"
#: Adds a started child to the run's index (once: a chunk run again keeps its first start time), with the run's TTL.
_ADD_CHILD = """if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], redis.call('TTL', KEYS[1]))
return 1"""


def _text(value) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class MapRunStore:
    def __init__(self, redis: Redis):
        self.redis = redis
        self._create = redis.register_script(_CREATE)
        self._claim = redis.register_script(_CLAIM)
        self._record = redis.register_script(_RECORD)
        self._end = redis.register_script(_END)
        self._mark = redis.register_script(_MARK)
        self._add_child = redis.register_script(_ADD_CHILD)

    _key = staticmethod(tagged_key)

    def create(self, run_id: str, execution_id: str, fields: dict[str, str], children: list[str],
               now: float, ttl: int) -> bool:
        """Store a new run with its children's inputs; False if it exists already (nothing changes)."""
        keys = [self._key("m", run_id), self._key("mi", run_id), self._key("me", execution_id)]
        return bool(self._create(keys=keys, args=[max(1, ttl), now, run_id, json.dumps(fields), *children]))

    def claim(self, run_id: str, now: float, lease_seconds: float, chunk: int) -> int:
        """The first index of a chunk to run (see the module's docstring); -1: none left; -2: the run ended."""
        return int(self._claim(keys=[self._key("m", run_id), self._key("ml", run_id)],
                               args=[now, lease_seconds, chunk]))

    def extend(self, run_id: str, start: int, until: float) -> None:
        """Keep a chunk's lease until ``until`` (a worker that is still at it)."""
        self.redis.zadd(self._key("ml", run_id), {str(start): until}, xx=True)

    def release(self, run_id: str, start: int) -> None:
        """The chunk is done: no one needs to run it again."""
        self.redis.zrem(self._key("ml", run_id), str(start))

    def inputs(self, run_id: str, start: int, stop: int) -> list[str]:
        return [_text(value) for value in self.redis.lrange(self._key("mi", run_id), start, stop - 1)]

    def record(self, run_id: str, index: int, status: str, record: str, items: int) -> tuple[bool, int, int, int]:
        """Record child ``index``'s end (once, while the run runs): (recorded now, children done, failed,
        total); total is 0 when the run has ended."""
        recorded, done, failed, total = self._record(
            keys=[self._key("m", run_id), self._key("mr", run_id)], args=[index, status, record, items])
        return bool(recorded), int(done), int(failed), int(total)

    def end(self, run_id: str, state: str, now: str, error: str = "", cause: str = "") -> bool:
        """End a RUNNING run as ``state``: True for the one caller that ended it."""
        return bool(self._end(keys=[self._key("m", run_id)], args=[state, now, error, cause]))

    def mark_written(self, run_id: str) -> None:
        """The run's result files are written (its ``written`` field)."""
        self._mark(keys=[self._key("m", run_id)])

    def get(self, run_id: str) -> dict[str, str] | None:
        """The run's hash, and ``leases`` (chunks being run) and ``expired`` (leases run out at ``now``)."""
        values = self.redis.hgetall(self._key("m", run_id))
        if not values:
            return None
        return {_text(k): _text(v) for k, v in values.items()}

    def leases(self, run_id: str, now: float) -> tuple[int, int]:
        """(chunks whose lease holds at ``now``, chunks whose lease has run out)."""
        key = self._key("ml", run_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcount(key, f"({now}", "+inf")
        pipe.zcount(key, "-inf", now)
        live, expired = pipe.execute()
        return int(live), int(expired)

    def results(self, run_id: str) -> dict[int, str]:
        return {int(k): _text(v) for k, v in self.redis.hgetall(self._key("mr", run_id)).items()}

    def ended(self, run_id: str) -> set[int]:
        """The indexes of the children whose end is recorded."""
        return {int(k) for k in self.redis.hkeys(self._key("mr", run_id))}

    def add_child(self, run_id: str, execution_id: str, started: float) -> None:
        self._add_child(keys=[self._key("m", run_id), self._key("mx", run_id)], args=[execution_id, started])

    def children(self, run_id: str) -> "StartedChildren":
        return StartedChildren(self.redis, self._key("mx", run_id))

    def runs_of(self, execution_id: str) -> list[str]:
        return [_text(value) for value in self.redis.zrange(self._key("me", execution_id), 0, -1)]


class StartedChildren:
    """A run's started child executions (IDs), oldest first, read a slice at a time: a sequence
    to page (``len`` and slices), costing what a page holds. Oldest first, so the children started
    while a listing is paged come after its pages: positions never shift."""

    def __init__(self, redis: Redis, key: str):
        self.redis, self.key = redis, key
        self._length: int | None = None

    def __len__(self) -> int:
        if self._length is None:
            self._length = int(self.redis.zcard(self.key))
        return self._length

    def __getitem__(self, window: slice) -> list[str]:
        start, stop, _ = window.indices(len(self))
        return [_text(value) for value in self.redis.zrange(self.key, start, stop - 1)] if stop > start else []
