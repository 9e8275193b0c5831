"""What a redrive costs and saves: a Map of N iterations where 3 failed, redriven, against the same Map run anew.

Run from the project root (``REDIS_URL`` names the server; its database is flushed)::

    python bench/redrive.py [--sizes 10,100,1000,5000] [--repeat 3]

For each N, through the service on the real Redis with a virtual clock: a Map over N items whose
iterations each call one task resource, ``ToleratedFailureCount`` 2, the last 3 items failing. Measured
in the same run, best of ``--repeat`` each: the redrive of the failed execution (the 3 iterations run
again, the others keep their results) against a start of the same Map with nothing failing (every
iteration runs); their ratio; the task calls each made; and the Redis memory of the failed execution's
record (``MEMORY USAGE``) with its snapshot kept for a redrive and with ``REDRIVE_MAX_BYTES=0``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import redis  # noqa: E402

from chalicelib.approvals import make_service  # noqa: E402
from chalicelib.asl import TaskFailed, VirtualClock  # noqa: E402
from chalicelib.config import settings  # noqa: E402
from chalicelib.resources import default_handlers  # noqa: E402
from chalicelib.store import Store  # noqa: E402

MAP = {"StartAt": "Each", "States": {"Each": {
    "Type": "Map", "ItemsPath": "$.items", "ToleratedFailureCount": 2,
    "ItemSelector": {"item.$": "$$.Map.Item.Value"},
    "ItemProcessor": {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": "bench:work", "End": True}}},
    "End": True}}}


class Work:
    def __init__(self):
        self.broken: set = set()
        self.calls = 0

    def __call__(self, payload, context):
        self.calls += 1
        if payload["item"] in self.broken:
            raise TaskFailed("Broken", "broken")
        return {"done": payload["item"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    client.flushdb()
    work = Work()
    config = dataclasses.replace(settings(), request_max_transitions=10**9, request_max_seconds=10**6,
                                 execution_max_transitions=10**9)
    service = make_service(config, Store(client), clock=VirtualClock(1.8e9),
                           handlers=default_handlers({"bench:work": work}))
    unkept = make_service(dataclasses.replace(config, redrive_max_bytes=0), Store(client), clock=VirtualClock(1.8e9),
                          handlers=default_handlers({"bench:work": work}))
    print(f"{'N':>6} {'redrive ms':>11} {'fresh run ms':>13} {'ratio':>6} {'calls':>12} "
          f"{'record kept B':>14} {'without B':>10}")
    for size in (int(n) for n in args.sizes.split(",")):
        items = {"items": list(range(size))}
        last3 = set(range(size - 3, size))

        def start(svc=service, broken=last3):
            work.broken = broken
            return svc.start(MAP, items, state_machine=None, trusted=True)

        redrive_times = []
        for _ in range(args.repeat):
            failed = start()
            work.broken, work.calls = set(), 0
            began = time.perf_counter()
            done = service.redrive(failed["executionId"])
            redrive_times.append(time.perf_counter() - began)
            assert done["status"] == "SUCCEEDED", done["status"]
        redrive_calls = work.calls
        fresh_times = []
        for _ in range(args.repeat):
            work.calls = 0
            began = time.perf_counter()
            assert start(broken=set())["status"] == "SUCCEEDED"
            fresh_times.append(time.perf_counter() - began)
        fresh_calls = work.calls
        kept = client.memory_usage(service.store.execution_key(start()["executionId"]))
        without = client.memory_usage(service.store.execution_key(start(svc=unkept)["executionId"]))
        redrive_ms, fresh_ms = min(redrive_times) * 1000, min(fresh_times) * 1000
        print(f"{size:>6} {redrive_ms:>11.2f} {fresh_ms:>13.2f} {redrive_ms / fresh_ms:>6.3f} "
              f"{f'{redrive_calls}/{fresh_calls}':>12} {kept:>14} {without:>10}")
        client.flushdb()


if __name__ == "__main__":
    main()
