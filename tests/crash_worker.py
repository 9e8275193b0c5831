"""A worker process that claims a continuation and then hangs before writing the result.

Run as ``python -m tests.crash_worker <continuation>`` with REDIS_URL (and LEASE_SECONDS)
set: it redeems the continuation with ``{"by": "crashed"}`` through the service the
app uses; when the resume is about to be written (``Store.commit``: the claim is
taken, nothing written) it prints ``claimed`` and waits there to be killed.
"""
from __future__ import annotations

import sys
import time

from chalicelib.api import runtime as web
from chalicelib.store import Store


def hang(store: Store, change) -> None:
    print("claimed", flush=True)
    time.sleep(600)
    raise SystemExit("not killed")


def main(continuation: str) -> None:
    Store.commit = hang
    web.make_service(None).redeem(continuation, result={"by": "crashed"})
    raise SystemExit("redeemed without committing")


if __name__ == "__main__":
    main(sys.argv[1])
