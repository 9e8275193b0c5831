"""The Map-of-N redemption curve: what one redemption costs as an execution holds more open points.

Run from the project root, against a Redis server whose database may be flushed::

    REDIS_URL=redis://127.0.0.1:6379/0 python bench/redemption.py [--sizes 10,100,1000,5000]
        [--redemptions 30]

The script FLUSHES the database of ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``)
when it starts and again when it ends.

For each shape and N it starts, through the service (``make_service``, as the app builds it)
on real Redis, one execution whose N points all suspend at a ``module:suspend`` task at once:

- ``map``: a Map over N items (``MaxConcurrency`` N);
- ``nested``: a Parallel of 2 branches, each a Map over N/2 of the items (the points wait two
  levels down: each branch and each of its iterations is stored apart),
- ``window``: a Map over N items with ``MaxConcurrency`` 10 (``WINDOW``): 10 points are open at a
  time, and the items are answered in order (each redemption answers the open point of the lowest
  item, read before its timing starts, its garbage collected), so every redemption ends its iteration
  and starts the next one (at N=10 there is none left to start),

then redeems ``--redemptions`` of its continuations, spread over the iterations, one after
the other. The last iteration of each Map is never answered (answering it would end the Map and
run its join, another operation), so an N with fewer other points than ``--redemptions`` gets as
many executions as it takes, and every N is measured over as many redemptions. The sizes and
shapes take turns (one redemption of each, then the next round), so all of them are measured under the same load of the machine. For each redemption it records
the time ``Service.redeem`` takes (wall, ``time.perf_counter``), the CPU time this process spent
in it (``time.process_time``), the time Redis spent running its commands (the ``usec`` of ``INFO
commandstats``, read before and after it: the whole server's, so use a server of its own), the
bytes sent to Redis (every command and argument) and read from it (the replies' values), both
counted on the connections of the client the service uses, and the round trips. It prints, per
shape, the start's cost (paid once), the median and p90 per redemption, and each figure as a ratio
to N's first size, measured in the same run: the target is a time ratio under 2 at N=5,000 and
bytes independent of N. On a busy machine the wall time also counts the waits for a core; the CPU
ratios hold better between runs.

The request and execution budgets are raised for the run (``REQUEST_MAX_TRANSITIONS``,
``EXECUTION_MAX_TRANSITIONS``, ``REQUEST_MAX_SECONDS``), so the start opens all N points
in one request.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
#: Raised for the run (``main``), so one start opens every point.
#: The ``window`` shape's MaxConcurrency.
WINDOW = 10
BUDGETS = {"REQUEST_MAX_TRANSITIONS": "1000000", "EXECUTION_MAX_TRANSITIONS": "1000000", "REQUEST_MAX_SECONDS": "600"}


from bench.service import Recorder, instrumented_service, percentile  # noqa: E402
from bench.timing import load_average, redis_times  # noqa: E402


def map_definition(size: int, concurrency: int | None = None) -> dict:
    """A Map over ``$.items`` whose iterations suspend, all N at once (or ``concurrency`` at a time)."""
    return {
        "StartAt": "Each",
        "States": {"Each": {
            "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": concurrency or size,
            "ItemProcessor": {"StartAt": "Ask", "States": {"Ask": {
                "Type": "Task", "Resource": "module:suspend",
                "Parameters": {"item.$": "$.item", "question": "Approve this item?"}, "End": True}}},
            "ItemSelector": {"item.$": "$$.Map.Item.Value"},
            "End": True}},
    }


def nested_definition(size: int) -> dict:
    """A Parallel of 2 branches, each a Map over its half of the items (``$.left``, ``$.right``) whose
    iterations all suspend. The iterations read their item with ``$`` (no ``$$``), so what a run of one
    reads besides its frame leaves the execution's input out (see ``fanout.reads_execution_input``)."""
    return {
        "StartAt": "Both",
        "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
            {"StartAt": f"Each{half}", "States": {f"Each{half}": {
                "Type": "Map", "ItemsPath": f"$.{half}", "MaxConcurrency": size, "End": True,
                "ItemProcessor": {"StartAt": "Ask", "States": {"Ask": {
                    "Type": "Task", "Resource": "module:suspend",
                    "Parameters": {"item.$": "$.n", "question": "Approve this item?"}, "End": True}}}}}}
            for half in ("left", "right")]}},
    }


def shape_input(shape: str, size: int) -> tuple[dict, dict]:
    """The definition of ``shape`` for N = ``size`` and its input."""
    items = [{"n": n, "label": f"item {n}"} for n in range(size)]
    if shape == "nested":
        return nested_definition(size), {"left": items[:size // 2], "right": items[size // 2:]}
    return map_definition(size, WINDOW if shape == "window" else None), {"items": items}


@dataclass
class Curve:
    shape: str
    size: int
    start_seconds: float
    start_bytes: int
    times: list[float]  # seconds per redemption (wall)
    cpu: list[float]  # CPU seconds of this process per redemption
    redis: list[float]  # seconds Redis spent running commands per redemption
    sent: list[int]  # bytes sent to Redis per redemption
    read: list[int]  # bytes read from Redis per redemption (the replies' values)
    trips: list[int]  # round trips per redemption


def all_continuations(service, document: dict) -> list[dict]:
    """Every open continuation of an execution, read a page at a time after its first page."""
    listed = list(document["continuations"])
    token = document.get("continuationsNextToken")
    while token:
        page = service.describe(document["executionId"], with_history=False, limit=1000, next_token=token)
        listed += page["continuations"]
        token = page.get("continuationsNextToken")
    return listed


def last_items(shape: str, size: int) -> set[int]:
    """The items of the last iteration of each Map of the ``shape`` of ``size``: never answered."""
    return {size // 2 - 1, size - 1} if shape == "nested" else {size - 1}


def item_of(point: dict) -> int:
    """The item a point asks about (its parameters' ``item``: the item itself, or its ``n``)."""
    item = point["parameters"]["item"]
    return item["n"] if isinstance(item, dict) else item


def start(service, recorder: Recorder, shape: str, size: int, redemptions: int) -> tuple[Curve, list[dict]]:
    """Start the ``shape`` of ``size``, as many executions as it takes to have ``redemptions`` points to
    redeem, none the last iteration of its Map; the curve (with the first start's cost) and the points."""
    definition, given = shape_input(shape, size)
    curve, points = None, []
    while len(points) < redemptions:
        recorder.record()
        began = time.perf_counter()
        document = service.start(json.dumps(definition), given, state_machine=None, trusted=True)
        start_seconds = time.perf_counter() - began
        start_bytes = recorder.bytes_sent
        recorder.stop()
        curve = curve or Curve(shape, size, start_seconds, start_bytes, [], [], [], [], [], [])
        open_points = all_continuations(service, document)
        opened = min(size, WINDOW) if shape == "window" else size
        assert document["status"] == "SUSPENDED" and len(open_points) == opened, (document["status"], len(open_points))
        if shape == "window":  # the items in order, all but the last: each point read when its turn comes
            points += [{"execution": document["executionId"]}] * min(size - 1, redemptions - len(points))
            continue
        answerable = [point for point in open_points if item_of(point) not in last_items(shape, size)]
        if not answerable:
            raise ValueError(f"a {shape} of {size} has no point to redeem but the last of its Maps")
        wanted = min(len(answerable), redemptions - len(points))
        points += answerable[::max(1, len(answerable) // wanted)][:wanted]
    return curve, points


def redeem(service, recorder: Recorder, curve: Curve, point: dict) -> None:
    """Redeem ``point`` (``{"execution": ID}``: the open point of its lowest item, read before the timing;
    what reading the whole execution left to the garbage collector is collected before it too)."""
    if "id" not in point:
        point = service.describe(point["execution"], with_history=False, limit=1)["continuations"][0]
        gc.collect()
    redis_before = redis_times(service.store.redis)
    trips = recorder.record()
    cpu, began = time.process_time(), time.perf_counter()
    answered = service.redeem(point["id"], result={"approved": True})
    curve.times.append(time.perf_counter() - began)
    curve.cpu.append(time.process_time() - cpu)
    curve.sent.append(recorder.bytes_sent)
    curve.read.append(recorder.bytes_read)
    curve.trips.append(len(trips))
    recorder.stop()
    curve.redis.append((redis_times(service.store.redis) - redis_before).commands)
    assert answered["status"] in ("SUSPENDED", "SUCCEEDED"), answered["status"]


def measure(service, recorder: Recorder, sizes: list[int], redemptions: int,
            shapes: tuple[str, ...] = ("map",)) -> list[Curve]:
    """Start one execution of each shape and size, then redeem their points taking turns, one after the
    other, so every size is measured under the same load of the machine."""
    started = [start(service, recorder, shape, size, redemptions) for shape in shapes for size in sizes]
    for turn in range(redemptions):
        for curve, points in started:
            if turn < len(points):
                redeem(service, recorder, curve, points[turn])
    return [curve for curve, _ in started]


def report(curves: list[Curve]) -> None:
    """One table a shape: each size's figures and their ratios to the shape's first size."""
    for shape in dict.fromkeys(curve.shape for curve in curves):
        of_shape = [curve for curve in curves if curve.shape == shape]
        base = of_shape[0]
        base_time, base_cpu, base_redis, base_sent, base_read = (statistics.median(figures) for figures in (
            base.times, base.cpu, base.redis, base.sent, base.read))
        print(f"\n{shape}")
        print(f"{'N':>6} | {'start ms':>8} | {'start KB':>8} | {'median ms':>9} | {'p90 ms':>8} | {'CPU ms':>6} | "
              f"{'Redis ms':>8} | {'bytes sent':>10} | {'bytes read':>10} | {'trips':>5} | {'time ratio':>10} | "
              f"{'CPU ratio':>9} | {'Redis ratio':>11} | {'bytes ratio':>11}")
        for curve in of_shape:
            median, cpu, redis, sent, read = (statistics.median(figures) for figures in (
                curve.times, curve.cpu, curve.redis, curve.sent, curve.read))
            print(f"{curve.size:>6,} | {curve.start_seconds * 1000:8.1f} | {curve.start_bytes / 1000:8.1f} | "
                  f"{median * 1000:9.2f} | {percentile(curve.times, 0.9) * 1000:8.2f} | {cpu * 1000:6.2f} | "
                  f"{redis * 1000:8.3f} | {sent:10,.0f} | {read:10,.0f} | {statistics.median(curve.trips):5.0f} | "
                  f"{median / base_time:10.2f} | {cpu / base_cpu:9.2f} | {redis / base_redis:11.2f} | "
                  f"{(sent + read) / (base_sent + base_read):11.2f}")
        last = of_shape[-1]
        ratio = statistics.median(last.times) / base_time
        print(f"target: time at N={last.size:,} within 2x of N={base.size:,}: ratio {ratio:.2f}, "
              f"{'met' if ratio <= 2 else 'NOT MET'} (CPU ratio {statistics.median(last.cpu) / base_cpu:.2f}, Redis "
              f"{statistics.median(last.redis) / base_redis:.2f}); bytes (sent and read) ratio "
              f"{(statistics.median(last.sent) + statistics.median(last.read)) / (base_sent + base_read):.2f} "
              f"(target about 1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000,5000", help="comma-separated N")
    parser.add_argument("--redemptions", type=int, default=30, help="redemptions timed per N")
    parser.add_argument("--shapes", default="map,nested,window", help="comma-separated: map, nested, window")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    shapes = tuple(args.shapes.split(","))
    os.environ.update(BUDGETS)

    bench = instrumented_service()
    config, redis, recorder, service = bench.config, bench.redis, bench.recorder, bench.service
    print(f"python {sys.version.split()[0]}, redis-server {redis.info('server')['redis_version']} at "
          f"{config.redis_url} (flushed at start and end); {', '.join(shapes)} of N suspended points, "
          f"{args.redemptions} redemptions per N (never a Map's last iteration), one process; load average "
          f"{load_average()}")
    try:
        measure(service, recorder, [20], 3, shapes)  # warm-up: definitions compiled, scripts loaded, iterations started
        curves = measure(service, recorder, sizes, args.redemptions, shapes)
    finally:
        redis.flushdb()
    report(curves)
    print(f"load average {load_average()}")


if __name__ == "__main__":
    main()
