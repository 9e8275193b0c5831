"""Start a real `chalice local` process for tests that need HTTP (and a browser)."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

from .conftest import REDIS_URL, ROOT
from .make_run import free_port, make_run_command


def call(method: str, url: str, body: bytes | None = None, content_type: str = "application/json"):
    """One JSON request; returns (status, parsed body)."""
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@contextlib.contextmanager
def chalice_local(log_path, **env: str):
    """Yield the base URL of a `chalice local` server, started with ``make run``'s command, with ``env`` set."""
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            make_run_command(port),
            cwd=ROOT, env={**os.environ, "REDIS_URL": REDIS_URL, **env}, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if call("GET", base + "/state-machines")[0] == 200:
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError("chalice local did not start:\n" + open(log_path).read()) from None
                    time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            process.wait(10)
