"""The embedded Redis: one server per data directory, which lives exactly as long as the process that started it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

from chalicelib.store.embedded import EmbeddedRedis, socket_path

from ..conftest import ROOT


def _gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True  # ended; only its status waits to be collected
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_data_survives_a_restart_and_stopping_is_quick(tmp_path):
    server = EmbeddedRedis(str(tmp_path)).start()
    pid = server.process.pid
    server.client().set("kept", "yes")
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0  # SHUTDOWN's closed connection is not retried for seconds
    assert _gone(pid) and not os.path.exists(socket_path(str(tmp_path)))
    again = EmbeddedRedis(str(tmp_path)).start()
    try:
        assert again.client().get("kept") == b"yes"
    finally:
        again.stop()


def test_another_process_uses_the_running_server_and_does_not_stop_it(tmp_path):
    server = EmbeddedRedis(str(tmp_path)).start()
    try:
        server.client().set("from", "first")
        script = ("import sys; from chalicelib.store.embedded import EmbeddedRedis; "
                  "s = EmbeddedRedis(sys.argv[1]).start(); "
                  "print(s.process is None, s.client().get('from').decode()); s.client().set('from', 'second')")
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True,
                              text=True, timeout=30)
        assert done.stdout.split() == ["True", "first"], done.stderr
        assert server.client().get("from") == b"second"  # still running after the other process ended
    finally:
        server.stop()


def test_the_server_dies_with_its_process_even_on_sigkill(tmp_path):
    """Started from a thread that then ends: the server must outlive the thread, not the process."""
    script = ("import sys, threading, time; from chalicelib.store.embedded import EmbeddedRedis\n"
              "box = []\n"
              "t = threading.Thread(target=lambda: box.append(EmbeddedRedis(sys.argv[1]).start())); t.start(); t.join()\n"
              "time.sleep(1); print(box[0].process.pid, box[0].client().ping(), flush=True); time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        pid, answered = parent.stdout.readline().split()
        assert answered == "True"  # alive after its starting thread ended
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _gone(int(pid))
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
