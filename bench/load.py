"""Load: several worker processes start, suspend and resume executions against one Redis.

Run from the project root, against a throwaway ``redis-server`` it starts itself::

    python bench/load.py --own-server [--persistent] [--processes 8] [--executions 20000] [--seed 1]

or against the Redis of ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``), whose
database it FLUSHES first (``make load`` runs this with 8 processes, 20,000 executions)::

    REDIS_URL=redis://127.0.0.1:6379/0 python bench/load.py [--processes 8] [--executions 20000]

and with ``--lost-executions N``, then the lost-responses run (``bench/lost_responses.py``):
clients over HTTP to ``--servers`` `chalice local` processes, dropping the connection
before reading each answer and retrying, while the servers are SIGKILLed
(``make load`` runs it with 3 servers, 3,000 executions).

``--persistent`` gives the own server ``appendonly yes`` and ``appendfsync always``.
Worker processes (``multiprocessing``, spawned clean) stand in for concurrent
Lambda containers: each has its own Redis client and the service the app builds
(``chalicelib.api.runtime.make_service``).

1. Start: the workers start ``--executions`` executions between them, a third each
   of ``incsquare`` (one question), ``approval`` (one question, a 7-day timeout,
   so a timer) and ``parallel-approval`` (two questions at once, one per branch).
2. Redeem: every continuation ID is redeemed twice with the same answer (a caller
   retrying), by two different workers at the same position of their lists, so the
   two tries race: a try told ``ContinuationBusy`` (the other holds the continuation
   while it commits) tries again after a short pause. The work goes in
   rounds, each round pairs the workers at random and gives each pair one ID, and
   every worker starts a round together (a barrier), so the two tries of an ID race
   however unevenly the processes are scheduled. The executions come in random order
   with their continuations side by side, so the two branches of a parallel approval
   usually go to two pairs in the same round.
   Every try is timed (one monotonic clock for all processes): the report counts
   the pairs of tries of one ID that overlapped in time, and the parallel
   approvals whose two branches were resumed at overlapping times.
3. Check, through the service and Redis: every execution SUCCEEDED with the output
   its answers give and one ``ExecutionResumed`` event per continuation in its
   history; each continuation ID got exactly one success and one replay (the
   same outcome, ``"replay": true``); every ``asl:*`` key has a TTL (the shared timer
   set ``asl:timers`` too: its members and TTL are printed).

It prints executions and redemptions per second, the outcomes of the duplicate
tries and every failure, then the lost-responses figures (duplicate executions, lost
and double-applied answers); the exit status is 1 if any check failed.
``tests/test_load.py`` runs a short form of the same code in CI.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

MACHINES = ("incsquare", "approval", "parallel-approval")
INPUTS = {
    "incsquare": lambda i: {"value": i % 100},
    "approval": lambda i: {"item": f"item {i}", "requester": "load", "reason": "load test"},
    "parallel-approval": lambda i: {"n": i},
}
ANSWER = {"decision": "approve"}
OK = "ok"
REPLAY = "replay"  # the same answer again: answered with the execution, nothing resumed
BUSY_PAUSE = 0.005  # seconds before trying again after ContinuationBusy
TIMERS_KEY = "asl:timers"  # the one shared key: the sorted set of due timers


@dataclass
class Started:
    execution_id: str
    machine: str
    input: dict
    continuations: list[str]


@dataclass
class Attempt:
    """One try at redeeming an ID: ``ok``, ``replay`` or the error code, and when it began and ended."""
    ident: str
    outcome: str
    began: float
    ended: float
    busy: int = 0  # ContinuationBusy answers it waited out first


@dataclass
class Report:
    processes: int
    executions: int
    continuations: int
    start_seconds: float
    redeem_seconds: float
    machines: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)  # per try
    busy: int = 0  # ContinuationBusy answers, each followed by another request
    pairs: Counter = field(default_factory=Counter)  # (overlapping?, outcomes of an ID's two tries)
    parallel: int = 0
    branches_overlapping: int = 0  # parallel approvals whose two resumes overlapped in time
    keys: int = 0
    timers: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def overlapping(self) -> int:
        return sum(n for (overlapped, _), n in self.pairs.items() if overlapped)

    def lines(self) -> list[str]:
        tries = sum(self.outcomes.values())
        resumes = self.outcomes[OK]
        lines = [
            f"{self.processes} worker processes, {self.executions:,} executions "
            f"({', '.join(f'{n:,} {m}' for m, n in self.machines.items())}), {self.continuations:,} continuations",
            f"start (runs until suspended): {self.executions / self.start_seconds:8,.0f} executions/s"
            f"  ({self.start_seconds:.2f} s)",
            f"redeem (every ID twice):      {tries / self.redeem_seconds:8,.0f} redemptions/s"
            f"  ({self.redeem_seconds:.2f} s, {tries:,} tries, {resumes / self.redeem_seconds:,.0f} resumes/s)",
            "outcomes of the tries: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.outcomes.items()))
            + f" ({self.busy:,} ContinuationBusy answers before them, each tried again)",
            f"duplicate tries of one ID: {sum(self.pairs.values()):,} pairs, {self.overlapping:,} overlapping in time",
        ]
        for (overlapped, outcomes), n in sorted(self.pairs.items(), reverse=True):
            lines.append(f"  {'overlapping' if overlapped else 'one after the other'}: {' + '.join(outcomes)}: {n:,}")
        lines += [
            f"parallel approvals: {self.parallel:,}, both branches resumed at overlapping times in "
            f"{self.branches_overlapping:,}",
            f"keys after the run: {self.keys:,} asl:* keys; {self.timers}",
            f"failures: {len(self.failures)}",
            *[f"  {failure}" for failure in self.failures[:20]],
        ]
        return lines


# -- in the worker processes ------------------------------------------------------------

ROUND_TIMEOUT = 120  # seconds a worker waits for the others at the start of a round
_service = None
_rounds = None  # the barrier every worker starts a round of redemptions at


def _worker(environment: dict, rounds) -> None:
    """Configure a worker process; it does not announce every approval email the local outbox saves."""
    global _rounds
    _rounds = rounds
    os.environ.update(environment)
    logging.getLogger("outbox").disabled = True


def service():
    """This process's service, built as the app builds it (one Redis client per process)."""
    global _service
    if _service is None:
        from chalicelib.api import runtime as web

        _service = web.make_service(None)
    return _service


def _warm(_: int) -> None:
    """Connect, import and compile in each worker before the clock starts."""
    from chalicelib.service import catalog
    from chalicelib.asl import load
    from chalicelib.config import settings
    from chalicelib.store.connection import get_redis

    service()
    get_redis(settings()).ping()  # the client the service uses
    for machine in MACHINES:
        load(catalog.load_text(machine))


def _start(numbers: list[int]) -> list[Started]:
    from chalicelib.service import catalog

    started = []
    for i in numbers:
        machine = MACHINES[i % len(MACHINES)]
        document = service().start(catalog.load_text(machine), INPUTS[machine](i), state_machine=machine,
                                   trusted=True)
        started.append(Started(document["executionId"], machine, document["input"],
                               [c["id"] for c in document["continuations"]]))
    return started


def _redeem(idents: list[str | None]) -> list[Attempt]:
    from chalicelib.service import ServiceError

    attempts = []
    for ident in idents:
        _rounds.wait(timeout=ROUND_TIMEOUT)
        if ident is None:  # no ID for this worker in the round
            continue
        began = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
        busy = 0
        while True:
            try:
                outcome = REPLAY if service().redeem(ident, result=ANSWER).get("replay") else OK
            except ServiceError as error:
                outcome = error.code
            except Exception as error:  # noqa: BLE001 - counted as a failure, not a crash of the run
                outcome = f"{type(error).__name__}: {error}"
            if outcome != "ContinuationBusy" or busy >= 1000:
                break
            busy += 1
            time.sleep(BUSY_PAUSE)
        attempts.append(Attempt(ident, outcome, began, time.monotonic(), busy))
    return attempts


def _check_executions(started: list[Started]) -> list[str]:
    """Each execution's final state, output and number of resumes, as read back through the service."""
    failures = []
    for execution in started:
        document = service().describe(execution.execution_id)
        if document["status"] != "SUCCEEDED" or document.get("output") != expected_output(execution):
            failures.append(f"execution {execution.execution_id} ({execution.machine}): {document['status']} "
                            f"{document.get('output')!r}")
        resumed = [e for e in document["history"] if e["type"] == "ExecutionResumed"]
        if len(resumed) != len(execution.continuations):
            failures.append(f"execution {execution.execution_id}: resumed {len(resumed)} times, "
                            f"for {len(execution.continuations)} continuations")
    return failures


def expected_output(execution: Started):
    if execution.machine == "incsquare":
        return {"value": (execution.input["value"] + 1) ** 2 + 1, **ANSWER}
    if execution.machine == "approval":
        return {"outcome": "approved", "request": execution.input, "answer": ANSWER}
    return {"outcome": "approved", "answers": [ANSWER, ANSWER]}


# -- in the parent process --------------------------------------------------------------

def plan(started: list[Started], processes: int, rng: random.Random) -> list[list[str | None]]:
    """Each worker's list of IDs to redeem, one per round (None: none in that round): every ID twice,
    at the same position of two workers' lists."""
    order = list(started)
    rng.shuffle(order)
    idents = [ident for execution in order for ident in execution.continuations]
    pairs = processes // 2
    lists: list[list[str]] = [[] for _ in range(processes)]
    for first in range(0, len(idents), pairs):
        workers = rng.sample(range(processes), processes)
        for k, ident in enumerate(idents[first:first + pairs]):
            lists[workers[2 * k]].append(ident)
            lists[workers[2 * k + 1]].append(ident)
        for each in lists:  # every worker has a place in every round
            each.extend([None] * (first // pairs + 1 - len(each)))
    return lists


def overlap(a: Attempt, b: Attempt) -> bool:
    return max(a.began, b.began) < min(a.ended, b.ended)


def run_load(redis_url: str, processes: int, executions: int, seed: int = 1) -> Report:
    """Run the three phases against ``redis_url`` (its database is flushed first)."""
    from redis import Redis

    if processes < 2:
        raise ValueError("duplicate redemptions from two processes need two processes at least")

    redis = Redis.from_url(redis_url)
    redis.flushdb()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="load-outbox-") as outbox:
        environment = {
            "REDIS_URL": redis_url,
            "OUTBOX_DIR": outbox,  # the approval emails
            "PUBLIC_BASE_URL": "http://load.test",  # the emails' links
        }
        context = multiprocessing.get_context("spawn")  # clean processes, as separate containers are
        rounds = context.Barrier(processes)
        with context.Pool(processes, initializer=_worker, initargs=(environment, rounds)) as pool:
            pool.map(_warm, range(processes), chunksize=1)
            began = time.perf_counter()
            shares = [list(range(p, executions, processes)) for p in range(processes)]
            started = [s for part in pool.map(_start, shares, chunksize=1) for s in part]
            start_seconds = time.perf_counter() - began

            lists = plan(started, processes, rng)
            began = time.perf_counter()
            attempts = [a for part in pool.map(_redeem, lists, chunksize=1) for a in part]
            redeem_seconds = time.perf_counter() - began

            report = Report(processes, len(started), sum(len(s.continuations) for s in started),
                            start_seconds, redeem_seconds, machines=Counter(s.machine for s in started))
            check_attempts(report, started, attempts)
            chunks = [started[p::processes * 4] for p in range(processes * 4)]
            report.failures += [f for part in pool.map(_check_executions, chunks) for f in part]
    check_keys(report, redis)
    redis.close()
    return report


def check_attempts(report: Report, started: list[Started], attempts: list[Attempt]) -> None:
    """Each ID: one success and one replay; and how the tries met in time."""
    tries: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        report.outcomes[attempt.outcome] += 1
        report.busy += attempt.busy
        tries.setdefault(attempt.ident, []).append(attempt)
    for ident, got in tries.items():
        outcomes = tuple(sorted(a.outcome for a in got))
        report.pairs[(len(got) == 2 and overlap(*got), outcomes)] += 1
        if outcomes != (OK, REPLAY):
            report.failures.append(f"continuation {ident}: {list(outcomes)} (want one ok, one replay)")
    for execution in started:
        missing = [ident for ident in execution.continuations if ident not in tries]
        if missing:
            report.failures.append(f"execution {execution.execution_id}: never tried {missing}")
        if execution.machine == "parallel-approval":
            report.parallel += 1
            resumed = [a for ident in execution.continuations for a in tries.get(ident, []) if a.outcome == OK]
            report.branches_overlapping += len(resumed) == 2 and overlap(*resumed)


def check_keys(report: Report, redis) -> None:
    """Every ``asl:*`` key has a time to live; what the timer set holds."""
    for batch in _batches(redis.scan_iter("asl:*", count=1000), 1000):
        with redis.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.pttl(key)
            ttls = pipe.execute()
        for key, ttl in zip(batch, ttls):
            if ttl == -2:  # gone since the scan: it expired, so it had a TTL
                continue
            report.keys += 1
            if ttl < 0:
                report.failures.append(f"key {key.decode()} has no TTL")
    members, ttl = redis.zcard(TIMERS_KEY), redis.ttl(TIMERS_KEY)
    if ttl == -2:
        report.timers = f"{TIMERS_KEY}: absent"
    else:
        report.timers = (f"{TIMERS_KEY}: {members:,} members, "
                         + (f"TTL {ttl / 86400:.1f} days" if ttl >= 0 else "NO TTL"))


def _batches(iterable, size: int):
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextlib.contextmanager
def own_server(persistent: bool):
    """A throwaway redis-server on a free loopback port (the tests' helper); its URL."""
    from tests.redis_servers import RedisServer

    options = ("--appendonly", "yes", "--appendfsync", "always") if persistent else ("--appendonly", "no")
    with RedisServer(*options) as server:
        yield server.url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--executions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--own-server", action="store_true", help="start a throwaway redis-server")
    parser.add_argument("--persistent", action="store_true",
                        help="the own server with appendonly yes, appendfsync always (implies --own-server)")
    parser.add_argument("--lost-executions", type=int, default=0,
                        help="then start this many named executions over HTTP with lost responses (0: skip)")
    parser.add_argument("--servers", type=int, default=3, help="chalice local processes for the lost responses")
    parser.add_argument("--clients", type=int, default=8, help="client threads for the lost responses")
    parser.add_argument("--kill-every", type=float, default=3.0,
                        help="SIGKILL a server about every this many seconds (0: never)")
    args = parser.parse_args()
    if args.processes < 2:
        parser.error("--processes: two at least (every ID is redeemed from two processes)")
    if args.own_server or args.persistent:
        where = own_server(args.persistent)
        about = "own server" + (", appendonly yes, appendfsync always" if args.persistent else ", no persistence")
    else:
        where = contextlib.nullcontext(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
        about = "flushed first"
    with where as url:
        from redis import Redis

        version = Redis.from_url(url).info("server")["redis_version"]
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, Redis {version} at {url} ({about})",
              flush=True)
        reports = []
        if args.executions > 0:
            reports.append(run_load(url, args.processes, args.executions, args.seed))
            print("\n".join(reports[-1].lines()), flush=True)
        if args.lost_executions > 0:
            from bench.lost_responses import run_lost_responses

            reports.append(run_lost_responses(url, args.lost_executions, servers=args.servers,
                                              clients=args.clients, kill_every=args.kill_every, seed=args.seed))
            print("\n".join(reports[-1].lines()), flush=True)
    sys.exit(0 if all(report.ok for report in reports) else 1)


if __name__ == "__main__":
    main()
