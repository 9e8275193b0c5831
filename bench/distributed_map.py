"""Items per second through a Distributed Map (a map run of child executions) against an inline Map.

Run from the project root, against a Redis server whose database may be flushed::

    REDIS_URL=redis://127.0.0.1:6379/0 python bench/distributed_map.py [--sizes 10,100,1000,10000] [--workers 4]

The script FLUSHES the database of ``REDIS_URL`` when it starts and between measurements.

For each N, the same N items (``{"n": i}``) go through a Map whose child is one Pass state:

* inline: one ``Service.start`` runs the whole Map in the request (the request and execution budgets
  are raised for it, so it needs no background run);
* distributed, STANDARD children: the start stores the run and dispatches its workers; ``--workers``
  worker processes (spawned clean, each with its own Redis client and service, as Lambda invocations
  would be) take them from a queue and run the children, each a child execution of its own (started
  by name, committed, indexed); the time ends when the parent is SUCCEEDED;
* distributed, EXPRESS children: the same, each child run inside its worker and kept only as its result.

It prints items per second of each and the distributed ones as a ratio to the inline Map measured in
the same run, and checks that every output equals the inline one (exit status 1 if not).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.update({"REQUEST_MAX_TRANSITIONS": "1000000", "EXECUTION_MAX_TRANSITIONS": "1000000",
                   "REQUEST_MAX_SECONDS": "600"})


def definition(mode: str, execution_type: str = "STANDARD") -> dict:
    config = {"Mode": mode, **({"ExecutionType": execution_type} if mode == "DISTRIBUTED" else {})}
    return {"StartAt": "Map", "States": {"Map": {
        "Type": "Map", "End": True, **({"MaxConcurrency": 0} if mode == "INLINE" else {}),
        "ItemProcessor": {"ProcessorConfig": config, "StartAt": "P",
                          "States": {"P": {"Type": "Pass", "Parameters": {"n.$": "$.n", "done": True},
                                           "End": True}}}}}}


def make_service(dispatch_worker=None):
    import redis

    from chalicelib.config import settings
    from chalicelib.service import Service
    from chalicelib.store import Store

    return Service(settings(), Store(redis.Redis.from_url(os.environ["REDIS_URL"])), dispatch_worker=dispatch_worker)


def worker(queue) -> None:
    service = make_service()
    while True:
        run_id = queue.get()
        if run_id is None:
            return
        service.work_map_run(run_id)


def flush() -> None:
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()


def through(service, spec: dict, items: list) -> tuple[float, list]:
    started = time.perf_counter()
    document = service.start(spec, items, state_machine=None, trusted=True)
    while document["status"] in ("RUNNING", "SUSPENDED"):
        time.sleep(0.005)
        document = service.describe(document["executionId"], with_history=False)
    elapsed = time.perf_counter() - started
    assert document["status"] == "SUCCEEDED", document.get("error")
    return elapsed, document["output"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=worker, args=(queue,), daemon=True) for _ in range(args.workers)]
    for process in processes:
        process.start()
    service = make_service(dispatch_worker=queue.put)
    print(f"Items per second through a Map with one Pass child; distributed: {args.workers} worker processes "
          f"(MAP_CHUNK_SIZE={service.settings.map_chunk_size}, MaxConcurrency unset: at most "
          f"{service.settings.map_max_concurrency} workers dispatched); ratios to the inline Map in the same run.")
    print(f"{'N':>7} | {'inline':>14} | {'distributed STANDARD':>28} | {'distributed EXPRESS':>28}")
    ok = True
    for size in sizes:
        items = [{"n": n} for n in range(size)]
        flush()
        through(service, definition("INLINE"), items[:10])  # warm: compiled definitions, connections
        flush()
        inline_time, expected = through(service, definition("INLINE"), items)
        row = [f"{size:>7,}", f"{size / inline_time:>10,.0f}/s"]
        for execution_type in ("STANDARD", "EXPRESS"):
            flush()
            elapsed, output = through(service, definition("DISTRIBUTED", execution_type), items)
            ok &= output == expected
            rate = size / elapsed
            row.append(f"{rate:>10,.0f}/s ({rate / (size / inline_time):.3f}x, {elapsed:6.2f} s)")
        print(" | ".join(row), flush=True)
    for _ in processes:
        queue.put(None)
    for process in processes:
        process.join(30)
    flush()
    print("outputs equal to the inline Map's:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
