"""The activity hand-off curve: what handing a task to a worker costs as an activity's queue holds more tasks.

Run from the project root, against a Redis server whose database may be flushed::

    REDIS_URL=redis://127.0.0.1:6379/0 python bench/activities.py [--sizes 10,100,1000,5000] [--pollers 8]

The script FLUSHES the database of ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``)
when it starts and again when it ends.

For each N it starts, through the service (``make_service``, as the app builds it) on real
Redis, N executions of one activity task (each start commits, then its outbox queues the task),
then one poller takes ``--timed`` of them one at a time (at most N a round: for N below it the
round is repeated) (``Activities.take``, what
``GetActivityTask`` runs), recording the time of each hand-off (the blocking pop and the commit
that marks the task started) and its round trips (counted on the connections of the client the
service uses); then ``--pollers`` threads take the rest at once. It counts how many times each
task was handed out (it must be once) and prints the median and p90 per hand-off, the median as
a ratio to the first N's, measured in the same run (the target: under 2 at N=5,000, the cost
does not grow with the queue), and the pollers' throughput (shown when they took at least 10
tasks each).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")


from bench.service import Recorder, instrumented_service, percentile  # noqa: E402


@dataclass
class Curve:
    size: int
    start_seconds: float  # all N starts of a round, one after the other
    times: list[float]  # seconds per hand-off, one poller alone
    trips: list[int]  # round trips per hand-off
    together: int  # tasks the pollers took at once, then
    wall: float  # seconds they took to empty the queue
    handed: Counter  # token -> times handed out, over every round


def definition(arn: str) -> dict:
    return {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": arn, "TimeoutSeconds": 3600,
                                                   "HeartbeatSeconds": 600, "End": True}}}


def measure(service, recorder: Recorder, arn: str, size: int, pollers: int, timed: int) -> Curve:
    """N executions queued, ``timed`` hand-offs timed alone (N at most per round: smaller N take
    several rounds), the rest taken by ``pollers`` threads at once."""
    curve = Curve(size, 0.0, [], [], 0, 0.0, Counter())
    while len(curve.times) < timed:
        one_round(service, recorder, arn, size, pollers, timed - len(curve.times), curve)
    return curve


def one_round(service, recorder: Recorder, arn: str, size: int, pollers: int, timed: int, curve: Curve) -> None:
    began = time.perf_counter()
    for n in range(size):
        document = service.start(definition(arn), {"n": n}, state_machine=None, trusted=True)
        assert document["status"] == "SUSPENDED", document["status"]
    curve.start_seconds = time.perf_counter() - began
    handed: Counter = Counter()
    for _ in range(min(size, timed)):  # one poller alone: the cost of a hand-off with N queued
        recorded = recorder.record()
        began = time.perf_counter()
        taken = service.activities.take("bench", "alone", 1)
        curve.times.append(time.perf_counter() - began)
        recorder.stop()
        curve.trips.append(len(recorded))
        handed[taken["taskToken"]] += 1
    lock = threading.Lock()
    together = [0]

    def poll(name: str) -> None:
        while True:
            taken = service.activities.take("bench", name, 0.2)
            if taken is None:
                return
            with lock:
                handed[taken["taskToken"]] += 1
                together[0] += 1

    threads = [threading.Thread(target=poll, args=(f"poller-{i}",)) for i in range(pollers)]
    began = time.perf_counter()
    [thread.start() for thread in threads]
    [thread.join() for thread in threads]
    if together[0] > curve.together:
        curve.together, curve.wall = together[0], max(time.perf_counter() - began - 0.2, 1e-9)  # last poll: 0.2 s
    assert len(handed) == size and set(handed.values()) == {1}, (len(handed), set(handed.values()))
    curve.handed.update(handed)


def report(curves: list[Curve], pollers: int) -> None:
    base = statistics.median(curves[0].times)
    print(f"{'N':>6} | {'starts s':>8} | {'alone: median ms':>16} | {'p90 ms':>7} | {'trips':>5} | "
          f"{'time ratio':>10} | {f'{pollers} pollers: tasks/s':>19} | {'handed once':>11}")
    for curve in curves:
        median = statistics.median(curve.times)
        rate = f"{curve.together / curve.wall:,.0f}" if curve.together >= 10 * pollers else "-"
        print(f"{curve.size:>6,} | {curve.start_seconds:8.2f} | {median * 1000:16.2f} | "
              f"{percentile(curve.times, 0.9) * 1000:7.2f} | {statistics.median(curve.trips):5.0f} | "
              f"{median / base:10.2f} | {rate:>19} | {len(curve.handed):>11,}")  # every round's tasks
    last = curves[-1]
    ratio = statistics.median(last.times) / base
    print(f"\ntarget: a hand-off at N={last.size:,} within 2x of N={curves[0].size:,}: ratio {ratio:.2f}, "
          f"{'met' if ratio <= 2 else 'NOT MET'}; every task handed out exactly once at every N")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000,5000", help="comma-separated N")
    parser.add_argument("--pollers", type=int, default=8, help="threads taking the rest at once")
    parser.add_argument("--timed", type=int, default=200, help="hand-offs timed one at a time per N")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    bench = instrumented_service()
    config, redis, recorder, service = bench.config, bench.redis, bench.recorder, bench.service
    arn = service.activities.prefix + "bench"
    print(f"python {sys.version.split()[0]}, redis-server {redis.info('server')['redis_version']} at "
          f"{config.redis_url} (flushed at start and end); N executions of one activity task; one poller "
          f"takes {args.timed} one at a time (N a round: smaller N take several rounds), then {args.pollers} "
          f"threads of the same process take the rest; load average {os.getloadavg()[0]:.1f}")
    try:
        service.activities.create("bench")
        measure(service, recorder, arn, 10, args.pollers, 10)  # warm-up: definitions compiled, scripts loaded
        curves = [measure(service, recorder, arn, size, args.pollers, args.timed) for size in sizes]
    finally:
        redis.flushdb()
    print()
    report(curves, args.pollers)


if __name__ == "__main__":
    main()
