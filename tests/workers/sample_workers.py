"""Worker functions the tests run with ``python -m chalicelib worker``."""
from __future__ import annotations

import sys
import threading

from chalicelib.workers import worker

_printing = threading.Lock()  # threads print whole lines


@worker("add")
def add(payload):
    with _printing:
        print(f"adding {payload['x']}", flush=True)  # the test reads these to know how far it got
    return payload["x"] + payload["y"]


def held(payload):
    """Says on stdout which task it runs, then waits for a line on stdin before answering."""
    print(f"running {payload['id']}", flush=True)
    sys.stdin.readline()
    return {"done": payload["id"]}
