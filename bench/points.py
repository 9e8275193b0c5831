"""What an operation on one point costs in a Map of N open iterations: stored apart, and stored whole.

Run from the project root, against a Redis server whose database may be flushed::

    REDIS_URL=redis://127.0.0.1:6379/0 python bench/points.py [--sizes 10,5000] [--turns 20]

The script FLUSHES the database of ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``)
when it starts and again when it ends.

For each N it starts, through the service (``make_service``, as the app builds it, on a virtual
clock) on real Redis, two executions of a Map over N items whose iterations are each an activity
task with ``HeartbeatSeconds`` (``MaxConcurrency`` N, so all N are open at once): one with its
iterations stored apart, one stored whole (``fanout.SPLIT_FROM`` out of reach while it is
touched). Then, in ``--turns`` turns, each execution in turn: a worker takes one of its tasks
(``GetActivityTask``: the commit that marks it started), reads its question
(``GET /continuations/{id}``), sends a heartbeat (``SendTaskHeartbeat``); the clock moves past the
heartbeat deadline and the heartbeat timer of each task taken fires (it fails the task, its Catch
ends the iteration). For each operation it records the wall time (``time.perf_counter``) and the bytes
sent to and read from Redis (counted on the service's connections). It prints the medians, and the
ratio of N's last size to its first in the same run, stored apart and stored whole: the target is a
ratio of about 1 stored apart (the operations read and write one iteration).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
#: Raised for the run (``main``), so one start opens every point.
BUDGETS = {"REQUEST_MAX_TRANSITIONS": "1000000", "EXECUTION_MAX_TRANSITIONS": "1000000", "REQUEST_MAX_SECONDS": "600"}

from bench.service import instrumented_service  # noqa: E402
from bench.timing import load_average  # noqa: E402
from chalicelib.approvals import make_service  # noqa: E402
from chalicelib.asl import VirtualClock  # noqa: E402
from chalicelib.service import fanout  # noqa: E402
from chalicelib.service.ids import id_hash, tag_of  # noqa: E402

OPERATIONS = ("take", "describe", "heartbeat", "heartbeat timer")
APART, WHOLE = fanout.SPLIT_FROM, 10 ** 9  # SPLIT_FROM while an execution stored apart, or whole, is touched


def map_definition(size: int, activity: str) -> dict:
    return {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": size, "End": True,
        "ItemSelector": {"item.$": "$$.Map.Item.Value"},
        "ItemProcessor": {"StartAt": "Work", "States": {
            "Work": {"Type": "Task", "Resource": activity, "Parameters": {"item.$": "$.item"},
                     "HeartbeatSeconds": 60, "End": True,
                     "Catch": [{"ErrorEquals": ["States.HeartbeatTimeout"], "Next": "Late"}]},
            "Late": {"Type": "Pass", "Result": "late", "End": True}}}}}}


@dataclass
class Case:
    size: int
    apart: bool
    activity: str
    execution_id: str = ""
    times: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in OPERATIONS})
    bytes: dict[str, list[int]] = field(default_factory=lambda: {name: [] for name in OPERATIONS})


class Bench:
    def __init__(self):
        bench = instrumented_service()
        self.config, self.redis, self.recorder = bench.config, bench.redis, bench.recorder
        self.clock = VirtualClock(time.time())
        self.service = make_service(bench.config, bench.store, clock=self.clock, base_url="http://bench")

    def measured(self, case: Case, name: str, operation):
        fanout.SPLIT_FROM = APART if case.apart else WHOLE
        self.recorder.record()
        began = time.perf_counter()
        result = operation()
        case.times[name].append(time.perf_counter() - began)
        case.bytes[name].append(self.recorder.bytes_sent + self.recorder.bytes_read)
        self.recorder.stop()
        return result

    def start(self, size: int, apart: bool, label: str = "points") -> Case:
        name = f"{label}-{'apart' if apart else 'whole'}-{size}"  # an activity of its own: its tasks alone
        self.service.activities.create(name)
        arn = f"arn:aws:states:{self.config.aws_region}:{self.config.aws_account_id}:activity:{name}"
        case = Case(size, apart, name)
        fanout.SPLIT_FROM = APART if apart else WHOLE
        document = self.service.start(json.dumps(map_definition(size, arn)), {"items": list(range(size))},
                                      state_machine=None, trusted=True)
        assert document["status"] == "SUSPENDED", document
        case.execution_id = document["executionId"]
        stored_apart = bool(self.redis.exists(self.service.store.split_key(case.execution_id)))
        assert stored_apart == apart
        return case

    def turn(self, cases: list[Case]) -> None:
        service, taken = self.service, []
        for case in cases:
            task = self.measured(case, "take", lambda: service.activities.take(case.activity, "bench", 1))
            token = task["taskToken"]
            self.measured(case, "describe", lambda: service.describe_continuation(token))
            self.measured(case, "heartbeat", lambda: service.heartbeat(token))
            taken.append(service.store.continuation(tag_of(token), id_hash(token))["point"])
        self.clock.advance(61)
        for case, point in zip(cases, taken):
            fired = self.measured(case, "heartbeat timer",
                                  lambda: service.timers.fire("heartbeat", case.execution_id, point))
            assert fired is True, fired


def report(cases: list[Case], sizes: list[int]) -> None:
    by = {(case.size, case.apart): case for case in cases}
    first, last = sizes[0], sizes[-1]
    print(f"{'operation':<16} | {'stored':<6} | " + " | ".join(f"{'N=' + format(n, ','):>18}" for n in sizes)
          + f" | {'time ratio':>10} | {'bytes ratio':>11}")
    for name in OPERATIONS:
        for apart in (True, False):
            medians = {n: (statistics.median(by[n, apart].times[name]), statistics.median(by[n, apart].bytes[name]))
                       for n in sizes}
            cells = " | ".join(f"{medians[n][0] * 1000:7.2f} ms {medians[n][1]:>7,.0f} B" for n in sizes)
            print(f"{name:<16} | {'apart' if apart else 'whole':<6} | {cells} | "
                  f"{medians[last][0] / medians[first][0]:10.2f} | {medians[last][1] / medians[first][1]:11.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,5000", help="comma-separated N")
    parser.add_argument("--turns", type=int, default=20, help="operations of each kind timed per execution")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    os.environ.update(BUDGETS)
    bench = Bench()
    print(f"python {sys.version.split()[0]}, redis-server {bench.redis.info('server')['redis_version']} at "
          f"{bench.config.redis_url} (flushed at start and end); Map of N activity tasks, {args.turns} turns, "
          f"one process; load average {load_average()}")
    try:
        bench.turn([bench.start(10, True, "warm-up"), bench.start(10, False, "warm-up")])  # scripts loaded
        cases = [bench.start(size, apart) for size in sizes for apart in (True, False)]
        for _ in range(min(args.turns, *sizes)):
            bench.turn(cases)
    finally:
        fanout.SPLIT_FROM = APART
        bench.redis.flushdb()
    print()
    report(cases, sizes)
    print(f"load average {load_average()}")


if __name__ == "__main__":
    main()
