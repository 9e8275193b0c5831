"""Latency of `chalice local`, started with the command ``make run`` runs (read from the Makefile).

Run from the project root (uses ``REDIS_URL``, default ``redis://127.0.0.1:6379/0``; writes nothing)::

    python bench/local_latency.py [--requests 200]

It times ``GET /state-machines`` two ways in the same run: on one kept-alive
connection (what browsers and HTTP clients do), and on a new connection per
request (``Connection: close``, which sends its FIN and so never waits on
Nagle's algorithm). The ratio keep-alive / new connection is about 1 with
``TCP_NODELAY`` set on the server's sockets, and about 50 without (the answer's
body waits for the client's delayed ACK of its headers, about 40 ms).
"""
from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.make_run import free_port, make_run_command, wait_for_port  # noqa: E402


def timed(port: int, count: int, keep_alive: bool) -> list[float]:
    """Seconds per request, on one connection or on a new one each time (``Connection: close``)."""
    seconds = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(count):
        started = time.perf_counter()
        if not keep_alive:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/state-machines", headers={} if keep_alive else {"Connection": "close"})
        connection.getresponse().read()
        if not keep_alive:
            connection.close()
        seconds.append(time.perf_counter() - started)
    connection.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    port = free_port()
    env = {**os.environ, "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")}
    command = make_run_command(port)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        try:
            wait_for_port(port, process)
        except RuntimeError as exc:
            raise SystemExit(f"chalice local did not start: {exc}")
        timed(port, 20, keep_alive=True)  # warm-up
        kept, new = timed(port, args.requests, True), timed(port, args.requests, False)
    finally:
        process.terminate()
        process.wait(10)
    kept_ms, new_ms = statistics.median(kept) * 1000, statistics.median(new) * 1000
    print(f"{' '.join([os.path.basename(command[0]), *command[1:]])} (as `make run`), GET /state-machines, {args.requests} requests each, medians")
    print(f"{'kept-alive connection':28s} {kept_ms:8.2f} ms   p99 {sorted(kept)[int(len(kept) * .99) - 1] * 1000:.2f} ms")
    print(f"{'new connection per request':28s} {new_ms:8.2f} ms")
    print(f"{'ratio kept-alive / new':28s} {kept_ms / new_ms:8.2f}   (about 50 with Nagle on)")


if __name__ == "__main__":
    main()
