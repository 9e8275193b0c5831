"""Many executions driven by events at once: N cars × 3 events, from several processes, over HTTP.

Each car of ``state_machines/car-dealer.json`` gets its three events (Car Announced, which starts it,
Inspection Completed and Car Cleaned), all shuffled together and sent concurrently by ``--processes``
worker processes to ``chalice local`` servers (``--servers``, started as ``make run`` starts them), in
batches of ``--batch`` events per ``POST /events``. So an inspection often comes before its car is
announced, or two events of one car arrive at the same moment in two processes. Then every execution
must have ended SUCCEEDED with each event received once; the figures are the wall time, events per
second, the time per event and its ratio to the first size's (measured in the same run, on the same
servers), and how many events were buffered on arrival.

    REDIS_URL=redis://127.0.0.1:6379/9 python bench/events.py --cars 10,100,1000,5000   # flushes that database
"""
from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def car_events(cars: int, prefix: str) -> list[dict]:
    events = []
    for n in range(cars):
        car = f"{prefix}-{n}"
        events += [
            {"id": f"{car}-announced", "source": "dealer.cars", "detail-type": "Car Announced",
             "detail": {"id": car, "model": "Golf"}},
            {"id": f"{car}-inspected", "source": "dealer.workshop", "detail-type": "Inspection Completed",
             "detail": {"id": car, "passed": True}},
            {"id": f"{car}-cleaned", "source": "dealer.workshop", "detail-type": "Car Cleaned",
             "detail": {"id": car}},
        ]
    return events


def _post(url: str, body: object) -> dict:
    request = urllib.request.Request(url + "/events", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    for attempt in range(20):
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())
        except OSError:
            if attempt == 19:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def _send(job: tuple[list[str], list[list[dict]]]) -> list[dict]:
    urls, batches = job
    results = []
    for index, batch in enumerate(batches):
        answer = _post(urls[index % len(urls)], batch)
        results += answer["entries"]
    return results


def send_concurrently(urls: list[str], events: list[dict], processes: int, batch: int, seed: int = 7) -> list[dict]:
    """Shuffle ``events`` and send them from ``processes`` processes; every event's answer."""
    shuffled = list(events)
    random.Random(seed).shuffle(shuffled)
    batches = [shuffled[i:i + batch] for i in range(0, len(shuffled), batch)]
    jobs = [(urls, batches[p::processes]) for p in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return [entry for part in pool.map(_send, jobs) for entry in part]


def check_outcomes(url: str, cars: int, prefix: str) -> dict:
    """Every car's execution: SUCCEEDED, each task answered by its own event once."""
    from chalicelib.service.events import execution_name

    counts = {"SUCCEEDED": 0, "other": 0, "wrong history": 0}
    for n in range(cars):
        car = f"{prefix}-{n}"
        with urllib.request.urlopen(f"{url}/executions/{execution_name('car-dealer', car + '-announced')}",
                                    timeout=60) as response:
            document = json.loads(response.read())
        received = [(e["state"], e["event"]["eventId"]) for e in document["history"]
                    if e["type"] == "ExecutionResumed" and "event" in e]
        if document["status"] != "SUCCEEDED":
            counts["other"] += 1
        else:
            counts["SUCCEEDED"] += 1
        if received != [("WaitForInspection", f"{car}-inspected"), ("WaitForCleaning", f"{car}-cleaned")]:
            counts["wrong history"] += 1
    return counts


@contextlib.contextmanager
def servers(count: int, log_dir: str):
    from tests.local_server import chalice_local

    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(chalice_local(os.path.join(log_dir, f"chalice-{n}.log"), TIMER_TICK_SECONDS="1"))
               for n in range(count)]


def run_events(urls: list[str], cars: int, processes: int, batch: int) -> dict:
    """One size: ``cars`` × 3 events sent at once, then every execution checked."""
    prefix = f"car{int(time.time() * 1000) % 10_000_000}"
    events = car_events(cars, prefix)
    started = time.monotonic()
    entries = send_concurrently(urls, events, processes, batch)
    seconds = time.monotonic() - started
    counts = check_outcomes(urls[0], cars, prefix)
    return {
        "cars": cars, "events": len(events), "seconds": round(seconds, 2),
        "eventsPerSecond": round(len(events) / seconds, 1), "msPerEvent": round(1000 * seconds / len(events), 3),
        "bufferedOnArrival": sum(1 for e in entries if e.get("buffered")),
        "failedEntries": sum(1 for e in entries if "error" in e),
        **counts,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cars", default="10,100,1000,5000", help="sizes, comma-separated")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=5)
    args = parser.parse_args()
    import redis
    import tempfile

    sizes = [int(size) for size in args.cars.split(",")]
    redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")).flushdb()
    print(f"{args.processes} processes, batches of {args.batch} events per POST /events, {args.servers} chalice "
          f"local servers (as make run starts them), one Redis; each size's events shuffled together")
    results = []
    with servers(args.servers, tempfile.mkdtemp(prefix="bench-events-")) as urls:
        for cars in sizes:
            results.append(run_events(urls, cars, args.processes, args.batch))
            result = results[-1]
            result["perEventRatioToFirst"] = round(result["msPerEvent"] / results[0]["msPerEvent"], 2)
            print(json.dumps(result))
    ok = all(r["SUCCEEDED"] == r["cars"] and not r["wrong history"] and not r["failedEntries"] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
