"""Many answers to one execution at once: N open points of one Map (or Parallel) answered by 8 processes.

Run from the project root, against a Redis server whose database may be flushed::

    REDIS_URL=redis://127.0.0.1:6379/0 python bench/concurrent_answers.py [--points 1000] [--processes 8]
        [--shape map|parallel|nested] [--rounds 5]

The script FLUSHES the database of ``REDIS_URL`` when it starts and again when it ends.

Three executions of the same definition are started through the service on real Redis,
each with ``--points`` suspended iterations (a Map with ``MaxConcurrency`` N, or a
Parallel of N branches, or "nested": a Parallel of 2 branches each a Map of N/2), every one
waiting at a ``module:suspend`` task:

1. in order: this process answers every point of the first one, one after the other;
2. at once: ``--processes`` worker processes (spawned clean, each with its own Redis
   client and service) wait on a barrier, then answer the points of the second one
   between them (interleaved, so neighbours go to different processes).

Before either, each answering process is warmed as a running server is: it answers one point of the
third execution (connected, the definition read and compiled, the code
paths of an answer run once). A worker stays alive until every worker has answered, so no process's
exit is measured.

Each total is wall time, from when the first answering process began to when the last one ended
(``time.perf_counter``, one clock for every process). Beside it, measured over the same window: the
CPU time of the answering processes (``time.process_time``, summed over the workers) and of Redis
(``used_cpu_sys`` + ``used_cpu_user`` of ``INFO``, and the part of it spent running commands, from
``INFO commandstats``: the whole server's, so use a server of its own). On a busy machine the wall
time also counts the waits for a core; the CPU times hold better between runs.

An answer that fails (``503 Busy``: the commit attempts ran out; ``409 ContinuationBusy``:
another attempt holds the point's lease) is tried again after a short pause and counted.
Every commit that lost to another writer (``CommitConflict``: of the whole execution, or of
one branch stored apart) is counted in the process that made it; a branch that ended last and
so handed its answer to the join is counted apart (``joins``). Then both executions are checked:
SUCCEEDED, each point's output holding its own answer, and every continuation answered exactly once
(one success per ID). It prints the total time of each, their ratio (target: at once no slower than
in order), the CPU times and their ratios, the failed first tries, retries and commit conflicts; the
exit status is 1 if a check failed. With ``--rounds`` R it does all of this R times, on fresh
executions, and also prints the median of each total and the ratio of the medians: on a machine
shared with other work one round's two totals can be measured under different loads.
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

from bench.timing import RedisTimes, load_average, redis_times  # noqa: E402

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


@dataclass
class Answered:
    """One process's answering: when it began and ended (``time.perf_counter``), its CPU, what it met."""

    began: float
    ended: float
    cpu: float
    counts: Counter


def answer_timed(service, counts: Counter, points: list[tuple[str, int]]) -> Answered:
    cpu, began = time.process_time(), time.perf_counter()
    answer_all(service, counts, points)
    return Answered(began, time.perf_counter(), time.process_time() - cpu, counts)


def warm_up(service, point: tuple[str, int] | None) -> None:
    """Answer a point of the warm-up execution, as a running server has answered before (not counted)."""
    if point is not None:
        answer_all(service, Counter(), [point])


def worker(warm_point, points: list[tuple[str, int]], barrier, results, release) -> None:
    service, counts = make()
    warm_up(service, warm_point)
    barrier.wait()  # every worker warm: the main process reads Redis's times
    barrier.wait()  # go
    results.put(answer_timed(service, counts, points))
    release.wait()  # a process's exit is no part of answering: it waits until the last one answered


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
    order_seconds: float  # wall time
    once_seconds: float  # wall time, from the first worker's beginning to the last one's end
    order_cpu: float  # CPU time of the answering process
    once_cpu: float  # of the workers, summed
    order_redis: RedisTimes  # Redis's own, over the same window
    once_redis: RedisTimes
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
        first, second, warming = (service.start(text, items, state_machine=None, trusted=True) for _ in range(3))
        in_order, at_once = all_points(service, first), all_points(service, second)
        warm_points = (all_points(service, warming) + [None] * processes)[:processes + 1]  # one a process

        warm_up(service, warm_points[processes])
        redis_before = redis_times(redis)
        order = answer_timed(service, counts, in_order)
        order_redis = redis_times(redis) - redis_before
        failures += check(service, first["executionId"], points, shape)

        context = multiprocessing.get_context("spawn")
        barrier, results, release = context.Barrier(processes + 1), context.Queue(), context.Event()
        workers = [context.Process(target=worker,
                                   args=(warm_points[k], at_once[k::processes], barrier, results, release))
                   for k in range(processes)]
        for process in workers:
            process.start()
        try:
            barrier.wait()
            redis_before = redis_times(redis)
            barrier.wait()
            reports = [results.get() for _ in workers]
            once_redis = redis_times(redis) - redis_before
        finally:
            release.set()
            for process in workers:
                process.join()
        failures += check(service, second["executionId"], points, shape)
    finally:
        redis.flushdb()
    together = Counter()
    for report in reports:
        together.update(report.counts)
    for name, tally in (("in order", counts), ("at once", together)):
        if tally["ok"] != points:
            failures.append(f"{name}: {tally['ok']} answers applied, not {points}")
    once_seconds = max(report.ended for report in reports) - min(report.began for report in reports)
    return Result(points, processes, order.ended - order.began, once_seconds, order.cpu,
                  sum(report.cpu for report in reports), order_redis, once_redis, counts, together, failures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--shape", choices=("map", "parallel", "nested"), default="map")
    parser.add_argument("--rounds", type=int, default=1, help="times to measure both, on fresh executions")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, Redis at {os.environ['REDIS_URL']} (flushed at start and end); "
          f"a {args.shape} of {args.points:,} suspended points, answered in order by one process and at once by "
          f"{args.processes}; load average {load_average()}")
    results = [measure(args.points, args.processes, args.shape) for _ in range(args.rounds)]
    failures = []
    for round_number, result in enumerate(results, 1):
        print(f"\nround {round_number}")
        for name, seconds, cpu, server, tally in (
                ("in order, 1 process", result.order_seconds, result.order_cpu, result.order_redis, result.in_order),
                (f"at once, {args.processes} processes", result.once_seconds, result.once_cpu, result.once_redis,
                 result.at_once)):
            extra = ", ".join(f"{k} {v:,}" for k, v in sorted(tally.items())
                              if k not in ("ok", "conflicts", "retries", "failed first tries", "joins"))
            print(f"{name:24}: {seconds:8.3f} s, {args.points / seconds:7.1f} answers/s; CPU: answering {cpu:.3f} s, "
                  f"Redis {server.cpu:.3f} s ({server.commands:.3f} s running commands); applied {tally['ok']:,}; "
                  f"failed first tries {tally['failed first tries']:,}, retries {tally['retries']:,}, "
                  f"commit conflicts {tally['conflicts']:,}, joins {tally['joins']:,}" + (f" ({extra})" if extra else ""))
        print(f"at once / in order: wall {result.once_seconds / result.order_seconds:.2f}, answering CPU "
              f"{result.once_cpu / result.order_cpu:.2f}, Redis CPU {result.once_redis.cpu / result.order_redis.cpu:.2f}")
        failures += result.failures
    order, once = (statistics.median(getattr(r, name) for r in results) for name in ("order_seconds", "once_seconds"))
    order_cpu, once_cpu = (statistics.median(getattr(r, name) for r in results) for name in ("order_cpu", "once_cpu"))
    order_redis, once_redis = (statistics.median(r.order_redis.cpu for r in results),
                               statistics.median(r.once_redis.cpu for r in results))
    failed = sum(r.at_once["failed first tries"] for r in results)
    print(f"\nmedians over {len(results)} round(s): in order {order:.3f} s, at once {once:.3f} s; at once / in order: "
          f"wall {once / order:.2f} (target <= 1: {'met' if once <= order else 'NOT MET'}), answering CPU "
          f"{once_cpu / order_cpu:.2f} ({order_cpu:.3f} s / {once_cpu:.3f} s), Redis CPU {once_redis / order_redis:.2f} "
          f"({order_redis:.3f} s / {once_redis:.3f} s); failed redemptions (first tries) {failed:,} (target 0); "
          f"commit conflicts {sum(r.at_once['conflicts'] for r in results):,}; load average {load_average()}")
    print(f"checks: {'all passed' if not failures else 'FAILED'}")
    for failure in failures:
        print(f"  {failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
