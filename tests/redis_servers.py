"""Real ``redis-server`` processes that a test owns: its own port and directory, so it can stop them.

``RedisServer`` starts one on a free loopback port; ``stop`` sends a signal
(SIGTERM: a clean shutdown; SIGKILL: a crash), ``pause``/``resume`` freeze it
(SIGSTOP/SIGCONT: a server that accepts connections and answers nothing), and
``start`` again reuses the port and the directory, so persisted data comes back.
``close`` (or leaving the ``with`` block) kills it and removes the directory;
servers still running when the interpreter exits are killed too.
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
_running: set["RedisServer"] = set()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, *options: str, port: int | None = None, directory: str | None = None):
        self.port = port or free_port()
        self.directory = directory or tempfile.mkdtemp(prefix="redis-")
        self.options = list(options)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> str:
        return os.path.join(self.directory, "redis.log")

    def client(self, **options) -> redis.Redis:
        return redis.Redis(port=self.port, **options)

    def start(self) -> "RedisServer":
        """Start (or start again, same port and directory) and wait until it answers with its data loaded."""
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.directory,
                   "--logfile", self.log_path, "--save", "", "--protected-mode", "no", *self.options]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _running.add(self)
        client = self.client(socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:  # PING answers LOADING while an append-only file is read back
                    if client.ping():
                        return self
                except redis.exceptions.RedisError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self._log_tail()
                    self.stop(signal.SIGKILL)
                    raise RuntimeError(f"redis-server on port {self.port} did not start:\n{log}")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` and wait for the process to end (the directory stays, for ``start``)."""
        process, self.process = self.process, None
        _running.discard(self)
        if process is None or process.poll() is not None:
            return
        if sig != signal.SIGKILL:
            process.send_signal(signal.SIGCONT)  # a paused server could not act on SIGTERM
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RuntimeError(f"redis-server on port {self.port} ignored signal {sig}") from None

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, errors="replace") as log:
                return "".join(log.readlines()[-20:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def persistent(**kwargs) -> RedisServer:
    """A server that writes every change to its append-only file before answering."""
    return RedisServer("--appendonly", "yes", "--appendfsync", "always", **kwargs)


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_running):
        server.close()
