"""A worker process that claims a continuation and then hangs before writing the result.

Run as ``python -m tests.crash_worker <continuation>`` with REDIS_URL set: it redeems
the continuation with ``{"by": "crashed"}``, prints ``claimed`` when the resume is
about to be committed (the claim is taken, nothing written) and waits there to be
killed.
"""
from __future__ import annotations

import sys
import time

from chalicelib.config import settings
from chalicelib.redis_connection import get_redis
from chalicelib.service import Service
from chalicelib.store import Store


def main(continuation: str) -> None:
    config = settings()
    store = Store(get_redis(config))

    def hang(change):
        print("claimed", flush=True)
        time.sleep(600)

    store.commit = hang
    Service(config, store).redeem(continuation, result={"by": "crashed"})


if __name__ == "__main__":
    main(sys.argv[1])
