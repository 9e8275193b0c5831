"""Many answers to one execution at once: N open points of one Map (or Parallel) answered by 8 processes.

Run from the project root, against a Redis server whose database may be flushed::

    REDIS_URL=redis://127.0.0.1:6379/0 python bench/concurrent_answers.py [--points 1000] [--processes 8]
        [--shape map|parallel|nested] [--rounds 5]

The script FLUSHES the database of ``REDIS_URL`` when it starts and again when it ends.

Two executions of the same definition are started through the service on real Redis,
each with ``--points`` suspended iterations (a Map with ``MaxConcurrency`` N, or a
Parallel of N branches, or "nested": a Parallel of 2 branches each a Map of N/2), every one
waiting at a ``module:suspend`` task:

1. in order: this process answers every point of the first one, one after the other;
2. at once: ``--processes`` worker processes (spawned clean, each with its own Redis
   client and service, warmed by reading the execution once, as a running server has
   its definition compiled) wait on a barrier, then answer the points of the second one
   between them (interleaved, so neighbours go to different processes).

An answer that fails (``503 Busy``: the commit attempts ran out; ``409 ContinuationBusy``:
another attempt holds the point's lease) is tried again after a short pause and counted.
Every commit that lost to another writer (``CommitConflict``: of the whole execution, or of
one branch stored apart) is counted in the process that made it; a branch that ended last and
so handed its answer to the join is counted apart (``joins``). Then both executions are checked: SUCCEEDED, each point's output holding
its own answer, and every continuation answered exactly once (one success per ID). It
prints the total time of each, their ratio (target: at once no slower than in order),
the failed first tries, retries and commit conflicts; the exit status is 1 if a check
failed. With ``--rounds`` R it does all of this R times, on fresh executions, and also prints
the median of each total and the ratio of the medians: on a machine shared with other work
one round's two totals can be measured under different loads.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
#: The budgets raised while measuring, so one start opens every point (the workers inherit them).
BUDGETS = {"REQUEST_MAX_TRANSITIONS": "1000000", "EXECUTION_MAX_TRANSITIONS": "1000000", "REQUEST_MAX_SECONDS": "600"}


@contextlib.contextmanager
def raised_budgets():
    saved = {name: os.environ.get(name) for name in BUDGETS}
    os.environ.update(BUDGETS)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

RETRY_PAUSE = 0.005  # seconds before answering again after a failed try
MAX_TRIES = 200

ASK = {"Type": "Task", "Resource": "module:suspend", "End": True}


def definition(shape: str, points: int) -> dict:
    if shape == "nested":  # a Parallel of 2 branches, each a Map of half the points: stored unit by unit below
        return {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
            {"StartAt": f"Each{half}", "States": {f"Each{half}": {
                "Type": "Map", "ItemsPath": f"$.{half}", "MaxConcurrency": points, "End": True,
                "ItemProcessor": {"StartAt": "Ask", "States": {"Ask": {**ASK, "Parameters": {"n.$": "$.n"}}}}}}}
            for half in ("left", "right")]}}}
    if shape == "parallel":
        return {"StartAt": "All", "States": {"All": {"Type": "Parallel", "End": True, "Branches": [
            {"StartAt": f"Ask{n}", "States": {f"Ask{n}": {**ASK, "Parameters": {"n": n}}}} for n in range(points)]}}}
    return {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "MaxConcurrency": points, "End": True,
        "ItemProcessor": {"StartAt": "Ask", "States": {"Ask": {**ASK, "Parameters": {"n.$": "$.n"}}}}}}}


def make():
    """The service as the benches build it, and a counter of the commit conflicts it meets."""
    from chalicelib.approvals import make_service
    from chalicelib.config import settings
    from chalicelib.store import CommitConflict, Store
    from chalicelib.store.connection import get_redis

    config = settings()
    store = Store(get_redis(config), history_limit=config.history_limit)
    counts = Counter()

    def counting(commit):
        def counted(change, *args):
            try:
                return commit(change, *args)
            except CommitConflict as conflict:
                # a branch that ended last hands its answer to the join: that is no conflict
                counts["joins" if conflict.reason == "last" else "conflicts"] += 1
                raise
        return counted

    store.commit, store.commit_branch = counting(store.commit), counting(store.commit_branch)
    return make_service(config, store, base_url="http://bench"), counts


def answer_all(service, counts: Counter, points: list[tuple[str, int]]) -> None:
    """Answer each point with ``{"by": n}``, trying again after a failure."""
    from chalicelib.service import ServiceError

    for ident, n in points:
        for attempt in range(MAX_TRIES):
            try:
                service.redeem(ident, result={"by": n})
                counts["ok"] += 1
                break
            except ServiceError as error:
                counts[f"{error.status} {error.code}"] += 1
                if attempt == 0:
                    counts["failed first tries"] += 1
                counts["retries"] += 1
                time.sleep(RETRY_PAUSE)
        else:
            counts["gave up"] += 1


def worker(execution_id: str, points: list[tuple[str, int]], barrier, results) -> None:
    service, counts = make()
    # connected, and warm as a running server is (the definition compiled, the code paths imported)
    service.runs.definition(service.runs.load(execution_id).definition_hash)
    barrier.wait()
    began = time.perf_counter()
    answer_all(service, counts, points)
    results.put((time.perf_counter() - began, dict(counts)))


def all_points(service, document: dict) -> list[tuple[str, int]]:
    """(ID, n) of every open point, read a page at a time."""
    listed, token = list(document["continuations"]), document.get("continuationsNextToken")
    while token:
        page = service.describe(document["executionId"], with_history=False, limit=1000, next_token=token)
        listed += page["continuations"]
        token = page.get("continuationsNextToken")
    return [(c["id"], c["parameters"]["n"]) for c in listed]


def check(service, execution_id: str, points: int, shape: str) -> list[str]:
    final = service.describe(execution_id, with_history=False)
    if final["status"] != "SUCCEEDED":
        return [f"{execution_id}: {final['status']}"]
    output = sum(final["output"], []) if shape == "nested" else final["output"]
    expected = [{"n": n, "by": n} if shape != "parallel" else {"by": n} for n in range(points)]
    got = [{k: v for k, v in item.items() if k in ("n", "by")} for item in output]
    return [] if got == expected else [f"{execution_id}: the output does not hold each point's own answer"]


def given(shape: str, points: int):
    """The input of the execution: the Map's items; for "nested", each branch's half of them."""
    items = [{"n": n} for n in range(points)]
    if shape == "nested":
        return {"left": items[:points // 2], "right": items[points // 2:]}
    return items if shape == "map" else {}


@dataclass
class Result:
    points: int
    processes: int
    order_seconds: float
    once_seconds: float
    in_order: Counter  # outcomes, retries and conflicts of the one process
    at_once: Counter  # the same, over every worker
    failures: list[str]


def measure(points: int, processes: int, shape: str) -> Result:
    """Answer a fresh execution's points in order, then another's at once (flushes the database)."""
    with raised_budgets():
        return _measure(points, processes, shape)


def _measure(points: int, processes: int, shape: str) -> Result:
    service, counts = make()
    redis = service.store.redis
    redis.flushdb()
    text = json.dumps(definition(shape, points))
    items = given(shape, points)
    failures: list[str] = []
    try:
        first = service.start(text, items, state_machine=None, trusted=True)
        second = service.start(text, items, state_machine=None, trusted=True)
        in_order, at_once = all_points(service, first), all_points(service, second)

        began = time.perf_counter()
        answer_all(service, counts, in_order)
        order_seconds = time.perf_counter() - began
        failures += check(service, first["executionId"], points, shape)

        context = multiprocessing.get_context("spawn")
        barrier, results = context.Barrier(processes + 1), context.Queue()
        workers = [context.Process(target=worker, args=(second["executionId"], at_once[k::processes], barrier, results))
                   for k in range(processes)]
        for process in workers:
            process.start()
        barrier.wait()
        began = time.perf_counter()
        reports = [results.get() for _ in workers]
        once_seconds = time.perf_counter() - began
        for process in workers:
            process.join()
        failures += check(service, second["executionId"], points, shape)
    finally:
        redis.flushdb()
    together = Counter()
    for _, report in reports:
        together.update(report)
    for name, tally in (("in order", counts), ("at once", together)):
        if tally["ok"] != points:
            failures.append(f"{name}: {tally['ok']} answers applied, not {points}")
    return Result(points, processes, order_seconds, once_seconds, counts, together, failures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--shape", choices=("map", "parallel", "nested"), default="map")
    parser.add_argument("--rounds", type=int, default=1, help="times to measure both, on fresh executions")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, Redis at {os.environ['REDIS_URL']} (flushed at start and end); "
          f"a {args.shape} of {args.points:,} suspended points, answered in order by one process and at once by "
          f"{args.processes}")
    results = [measure(args.points, args.processes, args.shape) for _ in range(args.rounds)]
    failures = []
    for round_number, result in enumerate(results, 1):
        print(f"\nround {round_number}")
        for name, seconds, tally in (("in order, 1 process", result.order_seconds, result.in_order),
                                     (f"at once, {args.processes} processes", result.once_seconds, result.at_once)):
            extra = ", ".join(f"{k} {v:,}" for k, v in sorted(tally.items())
                              if k not in ("ok", "conflicts", "retries", "failed first tries", "joins"))
            print(f"{name:24}: {seconds:8.2f} s, {args.points / seconds:7.1f} answers/s, applied {tally['ok']:,}; "
                  f"failed first tries {tally['failed first tries']:,}, retries {tally['retries']:,}, "
                  f"commit conflicts {tally['conflicts']:,}, joins {tally['joins']:,}" + (f" ({extra})" if extra else ""))
        print(f"at once / in order: {result.once_seconds / result.order_seconds:.2f}")
        failures += result.failures
    order = statistics.median(r.order_seconds for r in results)
    once = statistics.median(r.once_seconds for r in results)
    failed = sum(r.at_once["failed first tries"] for r in results)
    print(f"\nmedians over {len(results)} round(s): in order {order:.2f} s, at once {once:.2f} s; at once / in order: "
          f"{once / order:.2f} (target <= 1: {'met' if once <= order else 'NOT MET'}); failed redemptions (first "
          f"tries) {failed:,} (target 0); commit conflicts {sum(r.at_once['conflicts'] for r in results):,}")
    print(f"checks: {'all passed' if not failures else 'FAILED'}")
    for failure in failures:
        print(f"  {failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
