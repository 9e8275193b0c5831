"""Worker processes for the fault tests: ``python -m tests.crash_worker <mode> <continuation> ...``.

Run with REDIS_URL (and LEASE_SECONDS) set; each goes through the service the app uses.

- ``claim``: redeems the continuation with ``{"by": "crashed"}``; when the resume is about
  to be written (``Store.commit``: the claim is taken, nothing written) it prints
  ``claimed`` and waits there to be killed.
- ``redeem <answer JSON>``: prints ``ready``, waits for a line on stdin (so that several
  workers start together), redeems with the answer, retrying while the continuation is
  busy, and prints one JSON line: the first try's outcome and the last one's document.
"""
from __future__ import annotations

import json
import sys
import time

from chalicelib.api import runtime as web
from chalicelib.service import ServiceError
from chalicelib.store import Store


def hang(store: Store, change) -> None:
    print("claimed", flush=True)
    time.sleep(600)
    raise SystemExit("not killed")


def claim(continuation: str) -> None:
    Store.commit = hang
    web.make_service(None).redeem(continuation, result={"by": "crashed"})
    raise SystemExit("redeemed without committing")


def redeem(continuation: str, answer: str) -> None:
    service = web.make_service(None)
    print("ready", flush=True)
    sys.stdin.readline()
    tries: list[str] = []
    while True:
        try:
            document = service.redeem(continuation, result=json.loads(answer))
        except ServiceError as error:
            tries.append(error.code)
            if error.code != "ContinuationBusy" or len(tries) > 200:
                print(json.dumps({"tries": tries, "document": None}), flush=True)
                return
            time.sleep(0.02)
            continue
        tries.append("replay" if document.get("replay") else "ok")
        print(json.dumps({"tries": tries, "document": document}), flush=True)
        return


if __name__ == "__main__":
    {"claim": claim, "redeem": redeem}[sys.argv[1]](*sys.argv[2:])
