"""Activity workers against ``chalice local`` as ``make run`` starts it: a plain boto3 loop, the worker library
and ``python -m chalicelib worker``, with many pollers; a worker stopped with SIGTERM and one SIGKILLed mid-task.

Time-dependent steps (the killed worker's heartbeat timeout) run on the virtual clock: the test's own service,
on the same Redis, fires the timers.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from chalicelib.approvals import make_service as approval_service
from chalicelib.asl import VirtualClock
from chalicelib.config import settings
from chalicelib.store import Store
from chalicelib.workers import REGISTERED, Worker, client

from ..api.aws_clients import ACCOUNT, REGION
from ..conftest import ROOT
from ..local_server import chalice_local

ACTIVITY = f"arn:aws:states:{REGION}:{ACCOUNT}:activity:"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/worker"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_DEFAULT_REGION": REGION}


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def server(redis_client, tmp_path):
    with chalice_local(tmp_path / "chalice.log", ACTIVITY_POLL_SECONDS="1") as base:
        yield base


def state_machine(sfn, name: str, activity: str, more_states: dict | None = None, **task) -> str:
    sfn.create_activity(name=activity)
    work = {"Type": "Task", "Resource": ACTIVITY + activity, "TimeoutSeconds": 600, **task}
    if "Next" not in work:
        work["End"] = True
    definition = {"StartAt": "Work", "States": {"Work": work, **(more_states or {})}}
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]


def start(sfn, machine: str, payload: dict) -> str:
    return sfn.start_execution(stateMachineArn=machine, input=json.dumps(payload))["executionArn"]


def outcome(sfn, execution: str) -> tuple[str, object]:
    described = sfn.describe_execution(executionArn=execution)
    return described["status"], json.loads(described["output"]) if "output" in described else None


def test_a_boto3_worker_loop_with_many_pollers_hands_each_task_to_one(server):
    sfn = client(server, concurrency=8)
    machine = state_machine(sfn, "adder", "add")
    taken: list[str] = []
    lock = threading.Lock()
    all_started = threading.Event()

    def poll(name: str) -> None:
        while True:
            task = sfn.get_activity_task(activityArn=ACTIVITY + "add", workerName=name)
            if "taskToken" not in task:
                if all_started.is_set():
                    return
                continue
            with lock:
                taken.append(task["taskToken"])
            payload = json.loads(task["input"])
            sfn.send_task_success(taskToken=task["taskToken"], output=json.dumps(payload["x"] + payload["y"]))

    pollers = [threading.Thread(target=poll, args=(f"poller-{i}",)) for i in range(8)]
    [thread.start() for thread in pollers]  # polling before the first task is queued
    executions = [start(sfn, machine, {"x": i, "y": 1000}) for i in range(50)]
    all_started.set()
    [thread.join(60) for thread in pollers]
    assert len(taken) == 50 and len(set(taken)) == 50
    assert [outcome(sfn, arn) for arn in executions] == [("SUCCEEDED", i + 1000) for i in range(50)]
    started = [e for arn in executions for e in sfn.get_execution_history(executionArn=arn)["events"]
               if e["type"] == "ActivityStarted"]
    assert len(started) == 50
    assert {e["activityStartedEventDetails"]["workerName"] for e in started} <= {f"poller-{i}" for i in range(8)}


def test_the_worker_library_runs_each_task_once_with_many_threads(server):
    sfn = client(server)
    machine = state_machine(sfn, "adder", "add")
    calls: Counter = Counter()
    lock = threading.Lock()
    all_done = threading.Event()

    def add(payload):
        with lock:
            calls[payload["x"]] += 1
            if sum(calls.values()) == 40:
                all_done.set()
        return payload["x"] + payload["y"]

    running = Worker("add", add, endpoint_url=server, concurrency=6, worker_name="lib").start()
    executions = [start(sfn, machine, {"x": i, "y": 1}) for i in range(40)]
    assert all_done.wait(60)
    running.stop()
    running.join(10)
    assert not any(thread.is_alive() for thread in running.threads)
    assert calls == Counter(range(40))  # each task ran exactly once
    assert [outcome(sfn, arn) for arn in executions] == [("SUCCEEDED", i + 1) for i in range(40)]


def test_a_function_that_raises_fails_its_task_with_the_exception_name(server):
    sfn = client(server)
    machine = state_machine(sfn, "picky", "picky", {"Caught": {"Type": "Pass", "End": True}},
                            Catch=[{"ErrorEquals": ["KeyError"], "ResultPath": "$.error", "Next": "Caught"}])
    done = threading.Event()

    def picky(payload):
        done.set()
        return payload["missing"]

    running = Worker("picky", picky, endpoint_url=server).start()
    execution = start(sfn, machine, {"x": 1})
    assert done.wait(30)
    running.stop()
    running.join(10)
    status, output = outcome(sfn, execution)
    assert status == "SUCCEEDED" and output["error"] == {"Error": "KeyError", "Cause": "'missing'"}


def command(server: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "chalicelib", "worker", "--endpoint-url", server, *args],
                            cwd=ROOT, env={**os.environ, **CREDENTIALS, "PYTHONPATH": ROOT}, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_command_runs_a_registered_worker_with_concurrency(server):
    sfn = client(server)
    machine = state_machine(sfn, "adder", "add")
    executions = [start(sfn, machine, {"x": i, "y": 2}) for i in range(10)]
    process = command(server, "--concurrency", "3", "tests.workers.sample_workers:add")  # its @worker("add")
    try:
        ran = sorted(process.stdout.readline() for _ in executions)
    finally:
        process.send_signal(signal.SIGTERM)  # the tasks running finish, then it exits
        _, errors = process.communicate(timeout=30)
    assert ran == sorted(f"adding {i}\n" for i in range(10))
    assert process.returncode == 0, errors
    assert [outcome(sfn, arn) for arn in executions] == [("SUCCEEDED", i + 2) for i in range(10)]


def test_sigterm_finishes_the_task_running_and_takes_no_more(server):
    sfn = client(server)
    machine = state_machine(sfn, "held", "held")
    first = start(sfn, machine, {"id": 1})
    process = command(server, "--activity", "held", "tests.workers.sample_workers:held")
    try:
        assert process.stdout.readline() == "running 1\n"
        second = start(sfn, machine, {"id": 2})
        process.send_signal(signal.SIGTERM)
        line = "-"
        while line and "stopping" not in line:  # until the worker has taken the signal in (or exited)
            line = process.stderr.readline()
        assert line, "the worker exited without stopping"
        process.stdin.write("go\n")
        process.stdin.flush()
        assert process.wait(30) == 0
    finally:
        process.kill()
        process.communicate()
    assert outcome(sfn, first) == ("SUCCEEDED", {"done": 1})
    assert outcome(sfn, second) == ("RUNNING", None)  # still queued: the stopped worker took no more
    task = sfn.get_activity_task(activityArn=ACTIVITY + "held", workerName="next")
    assert json.loads(task["input"]) == {"id": 2}


def test_a_worker_killed_mid_task_times_out_and_the_retry_goes_to_another_worker(server, redis_client):
    sfn = client(server)
    machine = state_machine(sfn, "fragile", "fragile", HeartbeatSeconds=60,
                            Retry=[{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 2, "IntervalSeconds": 1}])
    execution = start(sfn, machine, {"id": 7})
    process = command(server, "--activity", "fragile", "--worker-name", "doomed", "tests.workers.sample_workers:held")
    try:
        assert process.stdout.readline() == "running 7\n"
    finally:
        process.kill()  # SIGKILL, mid-task: no answer, no more heartbeats
        process.communicate()
    assert outcome(sfn, execution)[0] == "RUNNING"
    clock = VirtualClock(time.time() + 61)  # past the task's HeartbeatSeconds since the worker took it
    assert approval_service(settings(), Store(redis_client), clock=clock).tick()["fired"] >= 1
    retried = threading.Event()

    def finish(payload):
        retried.set()
        return {"finished": payload["id"]}

    running = Worker("fragile", finish, endpoint_url=server, worker_name="survivor").start()
    assert retried.wait(30)
    running.stop()
    running.join(10)
    assert outcome(sfn, execution) == ("SUCCEEDED", {"finished": 7})
    events = sfn.get_execution_history(executionArn=execution)["events"]
    assert [e["type"] for e in events if e["type"].startswith("Activity")] == [
        "ActivityScheduled", "ActivityStarted", "ActivityTimedOut", "ActivityScheduled", "ActivityStarted",
        "ActivitySucceeded"]
    workers = [e["activityStartedEventDetails"]["workerName"] for e in events if e["type"] == "ActivityStarted"]
    assert workers == ["doomed", "survivor"]
    [timed_out] = [e for e in events if e["type"] == "ActivityTimedOut"]
    assert timed_out["activityTimedOutEventDetails"]["error"] == "States.HeartbeatTimeout"


def test_the_decorator_registers_by_activity():
    from . import sample_workers

    assert REGISTERED["add"] is sample_workers.add
    assert sample_workers.add({"x": 2, "y": 3}) == 5  # still the plain function
    assert sample_workers.held not in REGISTERED.values()


@pytest.mark.parametrize("args,message", [
    (["no_such_module_here:fn"], "cannot import no_such_module_here"),
    (["tests.workers.sample_workers:nothing"], "has no function 'nothing'"),
    (["tests.workers.sample_workers:held"], "give --activity"),
    (["--activity", "other", "tests.workers.sample_workers"], "registers no worker for other"),
    (["--concurrency", "0", "tests.workers.sample_workers:add"], "--concurrency must be at least 1"),
])
def test_the_command_refuses_what_it_cannot_run_in_one_line(args, message):
    done = subprocess.run([sys.executable, "-m", "chalicelib", "worker", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr


def test_the_library_sends_heartbeats_while_a_task_runs(server):
    sfn = client(server)
    machine = state_machine(sfn, "slow", "slow", HeartbeatSeconds=60)
    beats = threading.Event()
    sent: list[str] = []

    answered: list[int] = []

    def counted(params, **_):
        sent.append(params["taskToken"])

    def heard(http_response, **_):  # after the service answered the heartbeat
        answered.append(http_response.status_code)
        if len(answered) == 3:
            beats.set()

    def slow(payload):
        assert beats.wait(30)  # the function runs until three heartbeats were sent for its task
        return "done"

    running = Worker("slow", slow, endpoint_url=server, heartbeat_seconds=0.2)
    running.sfn.meta.events.register("provide-client-params.sfn.SendTaskHeartbeat", counted)
    running.sfn.meta.events.register("after-call.sfn.SendTaskHeartbeat", heard)
    running.start()
    execution = start(sfn, machine, {})
    assert beats.wait(30)
    running.stop()
    running.join(10)
    assert outcome(sfn, execution) == ("SUCCEEDED", "done")
    name = execution.rsplit(":", 1)[1]
    with urllib.request.urlopen(f"{server}/executions/{name}", timeout=10) as response:
        history = json.loads(response.read())["history"]
    [beat] = [event for event in history if event["type"] == "TaskHeartbeat"]
    assert beat["heartbeats"] >= 3 and answered[:3] == [200, 200, 200] and len(set(sent)) == 1


def test_a_worker_with_the_api_key_works_a_stage_that_requires_it(redis_client, tmp_path):
    with chalice_local(tmp_path / "chalice.log", ACTIVITY_POLL_SECONDS="1", API_KEY="stage-key",
                       TRUSTED_HOSTS="127.0.0.1") as server:
        without = client(server)
        with pytest.raises(ClientError) as refused:
            without.create_activity(name="add")
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        sfn = client(server, api_key="stage-key")
        machine = state_machine(sfn, "adder", "add")
        execution = start(sfn, machine, {"x": 4, "y": 5})
        done = threading.Event()

        def add(payload):
            done.set()
            return payload["x"] + payload["y"]

        running = Worker("add", add, endpoint_url=server, api_key="stage-key").start()
        assert done.wait(30)
        running.stop()
        running.join(10)
        assert outcome(sfn, execution) == ("SUCCEEDED", 9)
