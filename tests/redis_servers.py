"""Real ``redis-server`` processes that a test owns: its own port and directory, so it can stop them.

``RedisServer`` starts one on a free loopback port; ``stop`` sends a signal
(SIGTERM: a clean shutdown; SIGKILL: a crash), ``pause``/``resume`` freeze it
(SIGSTOP/SIGCONT: a server that accepts nothing and answers nothing), and
``start`` again reuses the port and the directory, so persisted data comes back.
"""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time

import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


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

    def start(self) -> "RedisServer":
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.directory,
                   "--save", "", "--protected-mode", "no", *self.options]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except redis.exceptions.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"redis-server on port {self.port} did not start")
                time.sleep(0.05)
        while client.info("persistence").get("loading"):  # an append-only file being read back
            time.sleep(0.05)
        client.close()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(10)
        self.process = None

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def persistent(**kwargs) -> RedisServer:
    """A server that writes every change to its append-only file before answering."""
    return RedisServer("--appendonly", "yes", "--appendfsync", "always", **kwargs)

