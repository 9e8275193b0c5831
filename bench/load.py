"""Load: several worker processes start, suspend and resume executions against one Redis.

Run from the project root against a Redis whose database may be flushed::

    REDIS_URL=redis://127.0.0.1:6379/0 python bench/load.py [--processes 8] [--executions 20000]

The script FLUSHES the database of ``REDIS_URL`` first. Worker processes stand in
for concurrent Lambda containers: each has its own Redis client and ``Service``.

1. Start: the workers start ``--executions`` executions between them, a third each
   of ``incsquare`` (one question), ``approval`` (one question, a 7-day timeout)
   and ``parallel-approval`` (two questions at once, one per branch).
2. Redeem: every continuation ID goes to two different workers (so each is
   redeemed twice at about the same moment, from two processes), in random
   order, which also answers both branches of a parallel approval concurrently.
3. Check, from Redis: every execution SUCCEEDED with the output its answers give;
   each continuation resumed its execution exactly once (one success and one 409
   ``ContinuationAlreadyRedeemed`` per ID, and one ``ExecutionResumed`` event per
   continuation in the history); every ``asl:*`` key has a TTL.

It prints executions and redemptions per second and every failure; the exit
status is 1 if any check failed. ``tests/test_load.py`` runs a short form in CI.
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MACHINES = ("incsquare", "approval", "parallel-approval")
INPUTS = {
    "incsquare": lambda i: {"value": i % 100},
    "approval": lambda i: {"item": f"item {i}", "requester": "load", "reason": "load test"},
    "parallel-approval": lambda i: {"n": i},
}
ANSWER = {"decision": "approve"}


@dataclass
class Started:
    execution_id: str
    machine: str
    input: dict
    continuations: list[str]


@dataclass
class Report:
    processes: int
    executions: int
    continuations: int
    start_seconds: float
    redeem_seconds: float
    outcomes: dict[str, int] = field(default_factory=dict)  # per redemption attempt
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        attempts = sum(self.outcomes.values())
        return [
            f"{self.processes} worker processes, {self.executions:,} executions "
            f"({', '.join(MACHINES)} in turn), {self.continuations:,} continuations, each redeemed twice",
            f"start (runs until suspended):  {self.executions / self.start_seconds:10,.0f} executions/s"
            f"  ({self.start_seconds:.2f} s)",
            f"redeem (two tries per ID):     {attempts / self.redeem_seconds:10,.0f} redemptions/s"
            f"  ({self.redeem_seconds:.2f} s, {attempts:,} tries)",
            "outcomes of the tries: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.outcomes.items())),
            f"failures: {len(self.failures)}",
            *[f"  {failure}" for failure in self.failures[:20]],
        ]


def _service():
    """A worker's service, configured from its environment (see ``_worker``)."""
    from chalicelib.config import settings
    from chalicelib.service import Service
    from chalicelib.store import Store
    from redis import Redis

    config = settings()
    return Service(config, Store(Redis.from_url(config.redis_url), history_limit=config.history_limit),
                   base_url=config.public_base_url or "")


def _start(numbers: list[int]) -> list[Started]:
    from chalicelib import catalog

    service = _service()
    started = []
    for i in numbers:
        machine = MACHINES[i % len(MACHINES)]
        document = service.start(catalog.load_text(machine), INPUTS[machine](i), state_machine=machine, trusted=True)
        started.append(Started(document["executionId"], machine, document["input"],
                               [c["id"] for c in document["continuations"]]))
    return started


def _redeem(idents: list[str]) -> list[tuple[str, str]]:
    from chalicelib.service import ServiceError

    service = _service()
    outcomes = []
    for ident in idents:
        try:
            service.redeem(ident, result=ANSWER)
            outcomes.append((ident, "ok"))
        except ServiceError as error:
            outcomes.append((ident, error.code))
    return outcomes


def run_load(redis_url: str, processes: int, executions: int, seed: int = 1) -> Report:
    """Run the three phases against ``redis_url`` (its database is flushed first)."""
    from redis import Redis

    environment = {
        "REDIS_URL": redis_url,
        "OUTBOX_DIR": tempfile.mkdtemp(prefix="load-outbox-"),  # the approval emails
        "PUBLIC_BASE_URL": "http://load.test",  # the emails' links
    }
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    context = multiprocessing.get_context("spawn")  # clean processes, as separate containers are
    with context.Pool(processes, initializer=_worker, initargs=(environment,)) as pool:
        pool.map(_warm, range(processes))
        began = time.perf_counter()
        shares = [list(range(p, executions, processes)) for p in range(processes)]
        started = [s for part in pool.map(_start, shares) for s in part]
        start_seconds = time.perf_counter() - began

        idents = [ident for s in started for ident in s.continuations]
        rng = random.Random(seed)
        lists: list[list[str]] = [[] for _ in range(processes)]
        for ident in idents:
            first, second = rng.sample(range(processes), 2)
            lists[first].append(ident)
            lists[second].append(ident)
        for part in lists:
            rng.shuffle(part)
        began = time.perf_counter()
        outcomes = [o for part in pool.map(_redeem, lists) for o in part]
        redeem_seconds = time.perf_counter() - began
        report = Report(processes, len(started), len(idents), start_seconds, redeem_seconds)
        for _, outcome in outcomes:
            report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
        report.failures = pool.apply(check, (started, outcomes))
    return report


def _worker(environment: dict) -> None:
    """Configure a worker process; it does not announce every approval email the local outbox saves."""
    os.environ.update(environment)
    logging.getLogger("outbox").disabled = True


def _warm(_: int) -> None:
    """Import and compile in each worker before the clock starts."""
    from chalicelib import catalog
    from chalicelib.asl import load

    for machine in MACHINES:
        load(catalog.load_text(machine))


def check(started: list[Started], outcomes: list[tuple[str, str]]) -> list[str]:
    """Every way the run could have gone wrong, as readable lines (none: it went right). Runs in a worker."""
    from redis import Redis

    redis = Redis.from_url(os.environ["REDIS_URL"])
    failures = []
    per_id: dict[str, list[str]] = {}
    for ident, outcome in outcomes:
        per_id.setdefault(ident, []).append(outcome)
    for ident, got in per_id.items():
        if sorted(got) != ["ContinuationAlreadyRedeemed", "ok"]:
            failures.append(f"continuation {ident}: {got} (want one ok, one ContinuationAlreadyRedeemed)")
    service = _service()
    for execution in started:
        document = service.describe(execution.execution_id)
        if document["status"] != "SUCCEEDED" or document.get("output") != expected_output(execution):
            failures.append(f"execution {execution.execution_id} ({execution.machine}): {document['status']} "
                            f"{document.get('output')!r}")
        resumed = [e for e in document["history"] if e["type"] == "ExecutionResumed"]
        if len(resumed) != len(execution.continuations):
            failures.append(f"execution {execution.execution_id}: resumed {len(resumed)} times, "
                            f"for {len(execution.continuations)} continuations")
    for key in redis.scan_iter("asl:*", count=1000):
        if redis.ttl(key) < 0:
            failures.append(f"key {key.decode()} has no TTL")
    return failures


def expected_output(execution: Started):
    if execution.machine == "incsquare":
        return {"value": (execution.input["value"] + 1) ** 2 + 1, **ANSWER}
    if execution.machine == "approval":
        return {"outcome": "approved", "request": execution.input, "answer": ANSWER}
    return {"outcome": "approved", "answers": [ANSWER, ANSWER]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--executions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    report = run_load(url, args.processes, args.executions, args.seed)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, Redis at {url} (flushed first)")
    print("\n".join(report.lines()))
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
