"""`make run` as a user runs it: the Makefile's target, REDIS_URL unset (the embedded Redis), a free PORT.

Progress is read straight from the embedded Redis (its unix socket), never by asking the
server, so "with no traffic" holds: after each start the only requests are the ones shown.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import subprocess
import time

import psutil
from redis import Redis

from chalicelib.store import Store
from chalicelib.store.embedded import socket_path

from ..conftest import ROOT
from ..local_server import call
from ..make_run import free_port, make_arguments, wait_for_port

WAIT_SECONDS = 3
LOOPS = 150_000  # two transitions each (Pass, Choice): about 300,000 in all
COUNTER_LOOP = {"StartAt": "Init", "States": {
    "Init": {"Type": "Pass", "Result": 0, "ResultPath": "$.i", "Next": "Add"},
    "Add": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)"}, "Next": "Check"},
    "Check": {"Type": "Choice", "Choices": [{"Variable": "$.i", "NumericLessThan": LOOPS, "Next": "Add"}],
              "Default": "Done"},
    "Done": {"Type": "Succeed"}}}
WAIT = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": WAIT_SECONDS, "End": True}}}


class Started:
    def __init__(self, process: subprocess.Popen, port: int, log_path):
        self.process, self.base, self.log_path = process, f"http://127.0.0.1:{port}", log_path
        self.processes = self._tree()
        deadline = time.monotonic() + 30
        while not any("redis-server" in p.name() for p in self.processes):  # it starts as serving begins
            assert time.monotonic() < deadline, ([p.cmdline() for p in self.processes], self.log())
            time.sleep(0.05)
            self.processes = self._tree()

    def _tree(self) -> list[psutil.Process]:
        return [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]

    def log(self) -> str:
        return open(self.log_path, encoding="utf-8", errors="replace").read()

    def post(self, path: str, document: dict):
        return call("POST", self.base + path, json.dumps(document).encode())

    def terminate(self) -> list[psutil.Process]:
        """SIGTERM to make's process group; the processes still running 20 s later."""
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(20)
        deadline = time.monotonic() + 20
        while True:
            left = [p for p in self.processes if _running(p)]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.05)


def _running(process: psutil.Process) -> bool:
    try:  # a zombie has ended: it only waits for its parent to collect its status
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextlib.contextmanager
def make_run(data_dir, log_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(LOCAL_DATA_DIR=str(data_dir), INLINE_WAIT_SECONDS="1",  # the 3 s Wait becomes a timer
               EXECUTION_MAX_TRANSITIONS=str(4 * LOOPS))  # the loop runs past the default execution bound
    with open(log_path, "ab") as log:
        process = subprocess.Popen(["make", *make_arguments(port)], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, process)
        yield Started(process, port, log_path)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for(store: Store, execution_id: str, statuses: set[str], seconds: float, started: Started):
    deadline = time.monotonic() + seconds
    while True:
        record = store.load(execution_id)
        if record is not None and record.status in statuses:
            return record
        assert time.monotonic() < deadline, (record and record.status, started.log())
        time.sleep(0.05)


def _epoch(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_make_run_answers_runs_on_alone_stops_cleanly_and_restarts_on_its_data(tmp_path):
    data_dir, log_path = tmp_path / "local", tmp_path / "make-run.log"
    with make_run(data_dir, log_path) as server:
        names = [" ".join(p.cmdline()) for p in server.processes]
        assert any("chalice local" in name for name in names), names
        store = Store(Redis(unix_socket_path=socket_path(str(data_dir))))

        status, waiting = server.post("/executions", {"stateMachine": "incsquare", "input": {"value": 6}})
        assert (status, waiting["status"]) == (200, "SUSPENDED"), server.log()
        status, loop = server.post("/executions", {"definition": COUNTER_LOOP})
        assert (status, loop["status"]) == (202, "RUNNING"), server.log()

        answers = []
        for _ in range(20):  # storing data while they come in restarts nothing
            answers.append(server.post("/executions", {"stateMachine": "incsquare", "input": {"value": 1}})[0])
            time.sleep(0.5)
        assert answers == [200] * 20, server.log()

        done = wait_for(store, loop["executionId"], {"SUCCEEDED", "FAILED"}, 120, server)
        assert (done.status, done.document["output"]) == ("SUCCEEDED", {"i": LOOPS})

        asked_at = time.time()
        status, napping = server.post("/executions", {"definition": WAIT})
        assert (status, napping["status"]) == (200, "SUSPENDED"), server.log()
        left = server.terminate()
        assert left == [], [p.cmdline() for p in left]
    assert not os.path.exists(socket_path(str(data_dir)))

    with make_run(data_dir, log_path) as server:  # the same data: no request until the timer has fired
        store = Store(Redis(unix_socket_path=socket_path(str(data_dir))))
        fired = wait_for(store, napping["executionId"], {"SUCCEEDED", "FAILED"}, WAIT_SECONDS + 15, server)
        assert fired.status == "SUCCEEDED"
        assert _epoch(fired.document["stopDate"]) >= asked_at + WAIT_SECONDS - 0.01  # never early

        status, found = call("GET", f"{server.base}/executions/{waiting['executionId']}")
        assert (status, found["status"]) == (200, "SUSPENDED")
        status, resumed = server.post(f"/continuations/{waiting['continuations'][0]['id']}", {"by": "restart"})
        assert (status, resumed["output"]) == (200, {"value": 50, "by": "restart"})
        left = server.terminate()
        assert left == [], [p.cmdline() for p in left]
