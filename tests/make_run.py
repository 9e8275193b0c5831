"""`make run` as a user starts it, for the tests and ``bench/local_latency.py``.

The command line comes from the Makefile itself (``make -n run``), so whatever starts
``chalice local`` here uses the same flags as ``make run``. ``VENV`` is the virtualenv of
the running interpreter, and ``-o VENV/bin/.installed`` tells make to take it as it is
instead of installing the requirements into it again.
"""
from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chalice_command() -> str:
    """The ``chalice`` script of this interpreter's virtualenv (or the one on PATH)."""
    beside = os.path.join(os.path.dirname(sys.executable), "chalice")
    return beside if os.path.exists(beside) else (shutil.which("chalice") or "chalice")


def make_arguments(port: int) -> list[str]:
    """``make run``'s arguments for this interpreter's virtualenv and ``port``."""
    venv = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
    return ["-s", "-o", os.path.join(venv, "bin", ".installed"), f"VENV={venv}", f"PORT={port}", "run"]


def make_run_command(port: int) -> list[str]:
    """The command ``make run`` runs (its last line, as ``make -n`` prints it)."""
    printed = subprocess.run(["make", "-n", *make_arguments(port)], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    return shlex.split(printed.strip().splitlines()[-1])


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 30) -> None:
    """Until the server accepts connections (no request is sent: a request would count as traffic)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with status {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port} after {seconds:.0f} s") from None
            time.sleep(0.05)
