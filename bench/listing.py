"""The cost of one page of ``GET /executions`` as more executions are stored: N = 10 ... 50,000.

Run from the project root, against a Redis server whose database may be flushed::

    REDIS_URL=redis://127.0.0.1:6379/0 python bench/listing.py [--sizes 10,100,1000,5000,50000]
        [--repeats 200] [--limit 10]

The script FLUSHES the database of ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``)
when it starts and again when it ends.

It stores executions through the service (``make_service``, as the app builds it) on real
Redis, growing the same store to each N in turn: a third each of ``incsquare`` (every
fourth one then redeemed: SUCCEEDED, the others SUSPENDED), ``parallel-approval``
(SUSPENDED) and an inline Pass (SUCCEEDED). At each N it times ``Service.list_executions``
(median of ``--repeats`` calls, ``--limit`` executions a page) with no filter, by state
machine, by status and by both; the tenth page of the unfiltered list (following
``nextToken``); and counts the Redis round trips and bytes sent per page. As a reference
measured in the same run it times what listing by a scan of Redis would cost before reading
a single record: ``SCAN`` over every execution key. It prints each figure as a ratio to the
first N, and the index's Redis memory per execution (``MEMORY USAGE`` of its keys). It also times
one slice of the sweep each tick makes (``Store.sweep_index``, about 1,000 entries, none of them
gone here) and counts its round trips.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")


from bench.service import instrumented_service  # noqa: E402
from chalicelib.service import catalog  # noqa: E402

PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
FILTERS = {
    "no filter": {},
    "stateMachine": {"state_machine": "incsquare"},
    "status": {"status": "SUSPENDED"},
    "both": {"state_machine": "incsquare", "status": "SUSPENDED"},
}


def grow(service, count: int, upto: int) -> int:
    """Store executions until there are ``upto``."""
    square, pair = catalog.load_text("incsquare"), catalog.load_text("parallel-approval")
    for n in range(count, upto):
        kind = n % 3
        if kind == 0:
            document = service.start(square, {"value": n}, state_machine="incsquare", trusted=True)
            if n % 4 == 0:
                service.redeem(document["continuations"][0]["id"], result={})
        elif kind == 1:
            service.start(pair, {"n": n}, state_machine="parallel-approval", trusted=True)
        else:
            service.start(PASS, {"n": n}, state_machine=None, trusted=True)
    return upto


def timed(call, repeats: int) -> tuple[float, float]:
    """(median, best) seconds of ``repeats`` calls: the best is what a call costs when the shared
    machine's other work does not get in the way."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return statistics.median(times), min(times)


def tenth_page(service, limit: int) -> str | None:
    token = None
    for _ in range(9):
        token = service.list_executions(limit=limit, next_token=token)["nextToken"]
        if token is None:
            return None
    return token


def scan_keys(redis) -> int:
    return sum(1 for _ in redis.scan_iter("asl:*:x:*", count=1000))


def index_bytes(redis) -> int:
    return sum(redis.memory_usage(key, samples=0) or 0 for key in redis.scan_iter("asl:{ix}:*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000,5000,50000", help="comma-separated N, growing")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per figure")
    parser.add_argument("--limit", type=int, default=10, help="executions per page (10: full pages from N=10 on)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    bench = instrumented_service()
    config, redis, store, recorder, service = bench.config, bench.redis, bench.store, bench.recorder, bench.service
    print(f"python {sys.version.split()[0]}, redis-server {redis.info('server')['redis_version']} at "
          f"{config.redis_url} (flushed at start and end); {args.limit} a page, median of {args.repeats} "
          "calls, one process")
    rows = []
    count = 0
    try:
        for size in sizes:
            count = grow(service, count, size)
            row = {"N": size}
            for name, filters in FILTERS.items():
                row[name] = timed(lambda: service.list_executions(limit=args.limit, **filters), args.repeats)
            token = tenth_page(service, args.limit)
            row["page 10"] = timed(lambda: service.list_executions(limit=args.limit, next_token=token),
                                   args.repeats) if token else None
            trips = recorder.record()
            page = service.list_executions(limit=args.limit)
            row["trips"], row["bytes"] = len(trips), recorder.bytes_sent
            recorder.stop()
            assert len(page["executions"]) == min(size, args.limit)
            row["scan"] = timed(lambda: scan_keys(redis), max(3, args.repeats // 20))
            row["index B/exec"] = index_bytes(redis) / size
            row["sweep"] = timed(lambda: store.sweep_index(time.time()), max(3, args.repeats // 20))
            trips = recorder.record()
            store.sweep_index(time.time())
            row["sweep trips"] = len(trips)
            recorder.stop()
            rows.append(row)
            print(f"  N={size:,} stored", flush=True)
    finally:
        redis.flushdb()
    report(rows)


def report(rows: list[dict]) -> None:
    names = [*FILTERS, "page 10", "scan", "sweep"]
    for which, title in ((1, "best"), (0, "median")):
        # each ratio is to the first figure of its column
        first = {n: next((r[n][which] for r in rows if r[n]), None) for n in names}
        print(f"\n{title} of the calls, ms (ratio to the first N); scan = SCAN of every execution key, the "
              "reference; sweep = one slice of the tick's sweep of the index")
        print(f"{'N':>7} | " + " | ".join(f"{n:>16}" for n in names))
        for row in rows:
            cells = [f"{row[n][which] * 1000:7.2f} ({row[n][which] / first[n]:5.2f}x)" if row[n] else "-"
                     for n in names]
            print(f"{row['N']:>7,} | " + " | ".join(f"{c:>16}" for c in cells))
    print(f"\n{'N':>7} | {'trips/page':>10} | {'bytes sent/page':>15} | {'index B/execution':>17} | "
          f"{'trips/sweep':>11}")
    for row in rows:
        print(f"{row['N']:>7,} | {row['trips']:>10} | {row['bytes']:>15} | {row['index B/exec']:17.0f} | "
              f"{row['sweep trips']:>11}")
    base, last = rows[0], rows[-1]
    print(f"\nbest times, N={last['N']:,} against N={base['N']:,}: a page "
          f"{last['no filter'][1] / base['no filter'][1]:.2f}x (unfiltered), {last['both'][1] / base['both'][1]:.2f}x "
          f"(both filters); the scan {last['scan'][1] / base['scan'][1]:.0f}x, and at N={last['N']:,} "
          f"{last['scan'][1] / last['no filter'][1]:.0f}x a page")


if __name__ == "__main__":
    main()
