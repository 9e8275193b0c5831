"""Storage: executions, continuations, timers and definitions in Redis.

- ``connection``: one Redis client per process;
- ``embedded``: local development's own ``redis-server`` child process, when ``REDIS_URL`` is unset;
- ``records``: the stored form of an execution and its compressed body;
- ``pipelines``: pipelines of script calls that survive Redis losing its scripts;
- ``scripts/``: the Lua scripts that make each change atomic (claim, commit, branch, load, point, waiting, release,
  keep, take, swap; continuations, the functions commit and branch share; unit, the function claim and
  point share) and
  the execution index's (index, index_put, page);
- ``store``: the keys and the operations on them;
- ``registry``: what the two registries share: resources by name that live until deleted;
- ``machines``: the registry of state machines created through the Step Functions API;
- ``activities``: the registry of activities and their task queues;
- ``map_runs``: a Distributed Map's runs: their children's inputs, leases, counters and results.

May import: ``chalicelib.config`` and the Redis client library. Nothing here knows
of ASL, HTTP or the service: it stores what it is given.
"""
from .records import ExecutionRecord, StoredBranches, pack_record, unpack_record
from .store import (STATUSES, TIMERS_KEY, BranchClaim, BranchCommit, Claim, ClaimRefused, Commit, CommitConflict,
                    NewContinuation, NextMoved, PointRead, SplitWrite, StartedIteration, Store)

__all__ = ["STATUSES", "TIMERS_KEY", "BranchClaim", "BranchCommit", "Claim", "ClaimRefused", "Commit",
           "CommitConflict", "ExecutionRecord", "NewContinuation", "NextMoved", "PointRead", "SplitWrite",
           "StartedIteration", "Store", "StoredBranches",
           "pack_record", "unpack_record"]
