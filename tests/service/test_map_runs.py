"""Distributed Maps through the service: map runs of child executions, run by workers.

Workers run on a pool of threads (or in worker processes, for the kill) as the app runs them
on Lambda invocations; S3 is moto's server (tests/s3_server.py); Redis is the real server.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import time

import pytest

from chalicelib.asl import VirtualClock
from chalicelib.service.statuses import FINISHED

from ..map_worker import COUNTS, WORKERS, service as make_service
from ..s3_server import s3, s3_url  # noqa: F401 - fixtures

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def processor(states: dict, start: str, execution_type: str = "STANDARD") -> dict:
    return {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type},
            "StartAt": start, "States": states}


COUNT_CHILD = processor({"Count": {"Type": "Task", "Resource": "module:map-count", "End": True}}, "Count")
#: Odd items fail (the child's own error), even ones pass.
ODD_FAILS = processor({
    "Check": {"Type": "Choice", "Choices": [
        {"Or": [{"Variable": "$.n", "NumericEquals": 1}, {"Variable": "$.n", "NumericEquals": 3}],
         "Next": "Bad"}], "Default": "Ok"},
    "Bad": {"Type": "Fail", "Error": "Item.Odd", "Cause": "odd item"},
    "Ok": {"Type": "Pass", "End": True}}, "Check")


def map_definition(item_processor: dict, **fields) -> dict:
    return {"StartAt": "Map", "States": {"Map": {"Type": "Map", "ItemProcessor": item_processor, "End": True,
                                                 **fields}}}


class Workers:
    """A pool of worker threads for map runs, as ``chalice local`` has (Lambda invocations deployed)."""

    def __init__(self, threads: int):
        self.pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="worker")
        self.dispatched: list[str] = []
        self.service = None
        self.failures: list[BaseException] = []

    def __call__(self, run_id: str) -> None:
        self.dispatched.append(run_id)
        self.pool.submit(self._work, run_id)

    def _work(self, run_id: str) -> None:
        try:
            self.service.work_map_run(run_id)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.failures.append(exc)


@pytest.fixture
def workers(redis_client):
    pool = Workers(4)
    pool.service = make_service(dispatch_worker=pool)
    yield pool
    pool.pool.shutdown(wait=True)
    assert pool.failures == []


def finished(service, execution_id: str, seconds: float = 240) -> dict:
    """The execution's document once it has ended (workers finish it on their threads)."""
    deadline = time.monotonic() + seconds
    while True:
        document = service.describe(execution_id, with_history=False)
        if document["status"] in FINISHED:
            return document
        assert time.monotonic() < deadline, document
        time.sleep(0.05)


def test_ten_thousand_items_on_four_workers_each_child_once(workers, redis_client):
    items = [{"n": n} for n in range(10_000)]
    started = workers.service.start(map_definition(COUNT_CHILD), items, state_machine=None, trusted=True)
    assert started["status"] == "SUSPENDED"
    [run] = started["mapRuns"]
    assert run["state"] == "Map" and run["counts"]["total"] == 10_000
    document = finished(workers.service, started["executionId"])
    assert document["status"] == "SUCCEEDED"
    assert document["output"] == [{"n": n, "twice": 2 * n} for n in range(10_000)]
    counts = {int(k): int(v) for k, v in redis_client.hgetall(COUNTS).items()}
    assert counts == {n: 1 for n in range(10_000)}
    assert len(redis_client.hkeys(WORKERS)) == 4
    [described] = workers.service.map_runs.of_execution(started["executionId"])
    assert described["status"] == "SUCCEEDED"
    assert described["executionCounts"]["succeeded"] == described["itemCounts"]["succeeded"] == 10_000
    assert described["maxConcurrency"] == 1000
    # At most MaxConcurrency workers (1,000 by default), one per chunk of 10 children.
    assert len(workers.dispatched) == 1000


def test_max_concurrency_bounds_the_workers(workers):
    items = [{"n": n} for n in range(50)]
    started = workers.service.start(map_definition(COUNT_CHILD, MaxConcurrency=2), items,
                                    state_machine=None, trusted=True)
    assert finished(workers.service, started["executionId"])["status"] == "SUCCEEDED"
    assert len(workers.dispatched) == 2


def test_tolerated_failures_and_the_threshold(workers):
    items = [{"n": n} for n in range(5)]
    within = workers.service.start(map_definition(ODD_FAILS, ToleratedFailureCount=2), items,
                                   state_machine=None, trusted=True)
    document = finished(workers.service, within["executionId"])
    assert document["status"] == "SUCCEEDED"
    failed = [entry for entry in document["output"] if isinstance(entry, dict) and entry.get("Status") == "FAILED"]
    assert [(json.loads(entry["Input"]), entry["Error"], entry["Cause"]) for entry in failed] == [
        ({"n": 1}, "Item.Odd", "odd item"), ({"n": 3}, "Item.Odd", "odd item")]
    assert [entry for entry in document["output"] if entry not in failed] == [{"n": 0}, {"n": 2}, {"n": 4}]

    over = workers.service.start(map_definition(ODD_FAILS, ToleratedFailurePercentage=20), items,
                                 state_machine=None, trusted=True)
    document = finished(workers.service, over["executionId"])
    assert (document["status"], document["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold")

    none = workers.service.start(map_definition(ODD_FAILS), items, state_machine=None, trusted=True)
    document = finished(workers.service, none["executionId"])
    assert (document["status"], document["error"], document["cause"]) == ("FAILED", "Item.Odd", "odd item")
    [described] = workers.service.map_runs.of_execution(none["executionId"])
    assert described["status"] == "FAILED" and described["executionCounts"]["failed"] == 1


def test_a_tolerated_failure_path_form(workers):
    items = [{"n": n} for n in range(5)]
    started = workers.service.start(map_definition(ODD_FAILS, ToleratedFailureCountPath="$$.Execution.Input[0].n"),
                                    [{"n": 2}] + items[1:], state_machine=None, trusted=True)
    assert finished(workers.service, started["executionId"])["status"] == "SUCCEEDED"


def test_a_child_that_waits_for_a_person(workers):
    ask = processor({"Ask": {"Type": "Task", "Resource": "module:suspend", "End": True}}, "Ask")
    started = workers.service.start(map_definition(ask, Label="Approvals"), [{"n": 1}, {"n": 2}],
                                    state_machine=None, trusted=True)
    parent = started["executionId"]
    deadline = time.monotonic() + 60
    while True:
        listed = workers.service.list_executions(status="SUSPENDED", limit=10)["executions"]
        children = [item for item in listed if item["executionId"] != parent]
        if len(children) == 2:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [run] = workers.service.describe(parent, with_history=False)["mapRuns"]
    assert run["counts"]["running"] == 2 and run["counts"]["succeeded"] == 0
    assert ":mapRun:inline/Approvals:" in run["mapRunArn"]
    for child in children:
        [question] = workers.service.describe(child["executionId"])["continuations"]
        workers.service.redeem(question["id"], result={"ok": child["name"]})
    document = finished(workers.service, parent)
    assert document["status"] == "SUCCEEDED"
    assert document["output"] == [{"n": 1, "ok": f"{parent}-p1-0"}, {"n": 2, "ok": f"{parent}-p1-1"}]


def test_the_maps_own_continuation_is_not_answered_from_outside(workers):
    from chalicelib.service import ServiceError

    ask = processor({"Ask": {"Type": "Task", "Resource": "module:suspend", "End": True}}, "Ask")
    started = workers.service.start(map_definition(ask), [{"n": 1}], state_machine=None, trusted=True)
    [continuation] = [c for c in started["continuations"] if c["kind"] == "map-run"]
    with pytest.raises(ServiceError) as refused:
        workers.service.redeem(continuation["id"], result={})
    assert refused.value.code == "ContinuationInternal"


def test_express_children_run_inside_the_worker(workers, redis_client):
    child = dict(COUNT_CHILD, ProcessorConfig={"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"})
    started = workers.service.start(map_definition(child), [{"n": n} for n in range(30)],
                                    state_machine=None, trusted=True)
    document = finished(workers.service, started["executionId"])
    assert document["output"] == [{"n": n, "twice": 2 * n} for n in range(30)]
    # No child execution is stored: only the parent is listed.
    listed = workers.service.list_executions(limit=100)["executions"]
    assert [item["executionId"] for item in listed] == [started["executionId"]]


def test_items_from_s3_in_batches(workers, s3):
    lines = "".join(json.dumps({"n": n}) + "\n" for n in range(23))
    s3.put_object(Bucket=s3.bucket, Key="in.jsonl", Body=lines.encode())
    definition = map_definition(
        processor({"Sum": {"Type": "Pass", "Parameters": {"count.$": "States.ArrayLength($.Items)",
                                                          "job.$": "$.BatchInput.job"}, "End": True}}, "Sum"),
        ItemReader={"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSONL"},
                    "Parameters": {"Bucket.$": "$.bucket", "Key": "in.jsonl"}},
        ItemBatcher={"MaxItemsPerBatch": 10, "BatchInput": {"job.$": "$.job"}})
    started = workers.service.start(definition, {"bucket": s3.bucket, "job": "j7"}, state_machine=None, trusted=True)
    document = finished(workers.service, started["executionId"])
    assert document["output"] == [{"count": 10, "job": "j7"}, {"count": 10, "job": "j7"}, {"count": 3, "job": "j7"}]
    [described] = workers.service.map_runs.of_execution(started["executionId"])
    assert described["executionCounts"]["total"] == 3 and described["itemCounts"]["total"] == 23
    assert described["itemCounts"]["succeeded"] == 23


def test_result_writer_files_in_the_bucket(workers, s3):
    definition = map_definition(ODD_FAILS, ToleratedFailureCount=2,
                                ResultWriter={"Resource": "arn:aws:states:::s3:putObject",
                                              "Parameters": {"Bucket.$": "$.bucket", "Prefix": "out"}})
    items = [{"n": n} for n in range(5)]
    started = workers.service.start(definition, {"bucket": s3.bucket, "items": items},
                                    state_machine=None, trusted=True)
    assert started["status"] == "FAILED"  # the input is not an array: ItemsPath is needed
    definition["States"]["Map"]["ItemsPath"] = "$.items"
    started = workers.service.start(definition, {"bucket": s3.bucket, "items": items},
                                    state_machine=None, trusted=True)
    document = finished(workers.service, started["executionId"])
    assert document["status"] == "SUCCEEDED", document
    output = document["output"]
    run_id = output["MapRunArn"].rsplit(":", 1)[1]
    assert output["ResultWriterDetails"] == {"Bucket": s3.bucket, "Key": f"out/{run_id}/manifest.json"}
    manifest = json.loads(s3.get_object(Bucket=s3.bucket, Key=f"out/{run_id}/manifest.json")["Body"].read())
    assert manifest["DestinationBucket"] == s3.bucket and manifest["MapRunArn"] == output["MapRunArn"]
    assert manifest["ResultFiles"]["PENDING"] == []
    files = {}
    for status in ("SUCCEEDED", "FAILED"):
        [entry] = manifest["ResultFiles"][status]
        body = s3.get_object(Bucket=s3.bucket, Key=entry["Key"])["Body"].read()
        assert entry == {"Key": f"out/{run_id}/{status}_0.json", "Size": len(body)}
        files[status] = json.loads(body)
    assert [json.loads(e["Output"]) for e in files["SUCCEEDED"]] == [{"n": 0}, {"n": 2}, {"n": 4}]
    assert [(json.loads(e["Input"]), e["Error"]) for e in files["FAILED"]] == [({"n": 1}, "Item.Odd"),
                                                                             ({"n": 3}, "Item.Odd")]
    first = files["SUCCEEDED"][0]
    assert first["Status"] == "SUCCEEDED" and first["ExecutionArn"].endswith(f":{run_id}-0")
    assert {"Name", "StartDate", "StopDate", "StateMachineArn", "RedriveCount", "InputDetails"} <= set(first)
    [described] = workers.service.map_runs.of_execution(started["executionId"])
    assert described["executionCounts"]["resultsWritten"] == 5


def test_result_writer_jsonl_compact(workers, s3):
    definition = map_definition(COUNT_CHILD, ResultWriter={
        "Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": s3.bucket, "Prefix": "c/"},
        "WriterConfig": {"OutputType": "JSONL", "Transformation": "COMPACT"}})
    started = workers.service.start(definition, [{"n": 1}, {"n": 2}], state_machine=None, trusted=True)
    output = finished(workers.service, started["executionId"])["output"]
    manifest = json.loads(s3.get_object(Bucket=s3.bucket, Key=output["ResultWriterDetails"]["Key"])["Body"].read())
    [entry] = manifest["ResultFiles"]["SUCCEEDED"]
    assert entry["Key"].endswith("/SUCCEEDED_0.jsonl")
    body = s3.get_object(Bucket=s3.bucket, Key=entry["Key"])["Body"].read().decode()
    assert [json.loads(line) for line in body.splitlines()] == [{"n": 1, "twice": 2}, {"n": 2, "twice": 4}]


def test_a_result_writer_that_cannot_write_fails_the_map(workers, s3):
    definition = map_definition(COUNT_CHILD, ResultWriter={
        "Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "no-such-bucket-here"}})
    started = workers.service.start(definition, [{"n": 1}], state_machine=None, trusted=True)
    document = finished(workers.service, started["executionId"])
    assert (document["status"], document["error"]) == ("FAILED", "States.ResultWriterFailed")
    assert document["cause"].startswith("NoSuchBucket")


def test_a_worker_killed_mid_run_loses_no_child(redis_client, monkeypatch):
    """Two worker processes; one kills itself inside item 5 (the children before it recorded). Once its
    lease has run out, the run's sweep dispatches a worker for its chunk, and the run finishes."""
    dispatched: list[str] = []
    service = make_service(dispatch_worker=dispatched.append)
    items = [{"n": n} for n in range(60)]
    started = service.start(map_definition(COUNT_CHILD, MaxConcurrency=2), items, state_machine=None, trusted=True)
    [run_id] = set(dispatched)
    env = {**os.environ, "PYTHONPATH": ROOT}
    killed = subprocess.Popen([sys.executable, "-m", "tests.map_worker", run_id], cwd=ROOT,
                              env={**env, "MAP_KILL_AT": "5"}, stdout=subprocess.PIPE)
    assert killed.wait(120) == -9
    survivor = subprocess.run([sys.executable, "-m", "tests.map_worker", run_id], cwd=ROOT, env=env,
                              capture_output=True, timeout=120, check=True)
    assert int(survivor.stdout) == 50  # every chunk but the one whose worker died
    assert service.describe(started["executionId"], with_history=False)["status"] == "SUSPENDED"
    # The lease (LEASE_SECONDS) runs out: the sweep finds the dead worker's chunk and dispatches one.
    later = VirtualClock(time.time() + service.settings.lease_seconds + 1)
    dispatched.clear()
    late = make_service(clock=later, dispatch_worker=dispatched.append)
    late.tick()
    assert dispatched == [run_id]
    assert late.work_map_run(run_id) == 10
    document = service.describe(started["executionId"], with_history=False)
    assert document["status"] == "SUCCEEDED"
    assert document["output"] == [{"n": n, "twice": 2 * n} for n in range(60)]
    counts = {int(k): int(v) for k, v in redis_client.hgetall(COUNTS).items()}
    # Item 5's child died with its worker before its commit, so it ran again; every other child ran once.
    assert counts == {n: 2 if n == 5 else 1 for n in range(60)}


class Died(BaseException):
    """Stands for the process dying (a crash is no exception the service could catch)."""


def test_the_run_starts_after_the_parents_commit_even_if_its_maker_dies(redis_client, monkeypatch):
    """The run's start is a call of the parent's outbox: the parent is stored first; a process that dies
    before it has started the run leaves the call there, and the timer sweep makes it once its lease ended."""
    from chalicelib.service.map_runs import MapRuns

    service = make_service()
    stored_before: list[str] = []

    def dies(self, execution_id, *args):
        stored_before.append(self.runs.load(execution_id).status)
        raise Died()

    with monkeypatch.context() as patched:
        patched.setattr(MapRuns, "start", dies)
        with pytest.raises(Died):
            service.start(map_definition(COUNT_CHILD), [{"n": 1}, {"n": 2}], state_machine=None, trusted=True)
    assert stored_before == ["SUSPENDED"]  # the parent was committed before the run was started
    [listed] = service.list_executions(limit=10)["executions"]
    assert service.map_runs.of_execution(listed["executionId"]) == []  # no run, no child yet
    later = VirtualClock(time.time() + service.settings.lease_seconds + 1)
    pool = Workers(2)
    pool.service = make_service(clock=later, dispatch_worker=pool)
    assert pool.service.tick()["calls"] == 1
    document = finished(pool.service, listed["executionId"])
    pool.pool.shutdown(wait=True)
    assert pool.failures == []
    assert document["output"] == [{"n": 1, "twice": 2}, {"n": 2, "twice": 4}]


ASK_OR_FAIL = processor({
    "Which": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "Bad"}],
              "Default": "Ask"},
    "Ask": {"Type": "Task", "Resource": "module:suspend", "End": True},
    "Bad": {"Type": "Fail", "Error": "Item.Bad", "Cause": "bad item"}}, "Which")


def children_of(service, parent: str) -> dict[str, str]:
    listed = service.list_executions(limit=100)["executions"]
    return {item["name"]: item["status"] for item in listed if item["executionId"] != parent}


def test_a_failed_run_stops_its_children_that_still_wait(workers):
    started = workers.service.start(map_definition(ASK_OR_FAIL, MaxConcurrency=1), [{"n": 0}, {"n": 1}, {"n": 2}],
                                    state_machine=None, trusted=True)
    parent = started["executionId"]
    document = finished(workers.service, parent)
    assert (document["status"], document["error"]) == ("FAILED", "Item.Bad")
    # Item 0 waited for a person: stopped with its run. Item 2 never ran.
    assert children_of(workers.service, parent) == {f"{parent}-p1-0": "ABORTED", f"{parent}-p1-1": "FAILED"}
    [described] = workers.service.map_runs.of_execution(parent)
    counts = described["executionCounts"]
    assert (counts["failed"], counts["aborted"], counts["pending"], counts["running"]) == (1, 2, 0, 0)


def test_a_stopped_parent_stops_its_run_and_children(workers):
    ask = processor({"Ask": {"Type": "Task", "Resource": "module:suspend", "End": True}}, "Ask")
    started = workers.service.start(map_definition(ask), [{"n": 0}, {"n": 1}], state_machine=None, trusted=True)
    parent = started["executionId"]
    deadline = time.monotonic() + 60
    while list(children_of(workers.service, parent).values()) != ["SUSPENDED", "SUSPENDED"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    workers.service.abort(parent)
    later = VirtualClock(time.time() + workers.service.settings.lease_seconds + 1)
    make_service(clock=later).tick()  # the run's timer: its parent no longer waits
    assert set(children_of(workers.service, parent).values()) == {"ABORTED"}
    [described] = workers.service.map_runs.of_execution(parent)
    assert described["status"] == "ABORTED" and described["executionCounts"]["aborted"] == 2


def test_an_express_child_cannot_wait(workers):
    ask = processor({"Ask": {"Type": "Task", "Resource": "module:suspend", "End": True}}, "Ask", "EXPRESS")
    started = workers.service.start(map_definition(ask, ToleratedFailureCount=5), [{"n": 1}],
                                    state_machine=None, trusted=True)
    [entry] = finished(workers.service, started["executionId"])["output"]
    assert (entry["Status"], entry["Error"]) == ("FAILED", "States.Runtime")
    assert entry["Cause"] == "An EXPRESS child execution cannot wait (for a person, a token or a timer)."


def result_files(s3, manifest_key: str) -> tuple[dict, dict[str, list]]:
    """The manifest at ``manifest_key`` and the records of the files it names, by status."""
    manifest = json.loads(s3.get_object(Bucket=s3.bucket, Key=manifest_key)["Body"].read())
    records = {status: [record for entry in entries
                        for record in json.loads(s3.get_object(Bucket=s3.bucket, Key=entry["Key"])["Body"].read())]
               for status, entries in manifest["ResultFiles"].items()}
    return manifest, records


def test_a_run_past_its_threshold_writes_what_ran_and_what_did_not(workers, s3):
    """One worker runs the five children in order: item 1 fails past ToleratedFailureCount 0, so the
    run fails and items 2 to 4 never run: the files list them as PENDING."""
    definition = map_definition(ODD_FAILS, ToleratedFailureCount=0, MaxConcurrency=1, ResultWriter={
        "Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": s3.bucket, "Prefix": "failed"}})
    items = [{"n": n} for n in range(5)]
    started = workers.service.start(definition, items, state_machine=None, trusted=True)
    document = finished(workers.service, started["executionId"])
    assert (document["status"], document["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    [described] = workers.service.map_runs.of_execution(started["executionId"])
    run_id = described["mapRunArn"].rsplit(":", 1)[1]
    manifest, records = result_files(s3, f"failed/{run_id}/manifest.json")
    assert manifest["MapRunArn"] == described["mapRunArn"] and manifest["DestinationBucket"] == s3.bucket
    assert {status: [entry["Key"] for entry in entries] for status, entries in manifest["ResultFiles"].items()} == {
        status: [f"failed/{run_id}/{status}_0.json"] for status in ("FAILED", "PENDING", "SUCCEEDED")}
    assert [json.loads(record["Output"]) for record in records["SUCCEEDED"]] == [{"n": 0}]
    assert [(json.loads(record["Input"]), record["Status"], record["Error"]) for record in records["FAILED"]] == [
        ({"n": 1}, "FAILED", "Item.Odd")]
    assert [(json.loads(record["Input"]), record["Name"], record["Status"]) for record in records["PENDING"]] == [
        ({"n": n}, f"{run_id}-{n}", "PENDING") for n in (2, 3, 4)]
    assert described["executionCounts"]["resultsWritten"] == described["itemCounts"]["resultsWritten"] == 2
    assert described["executionCounts"]["aborted"] == 3


def test_a_stopped_run_writes_its_unfinished_children_as_pending(workers, s3):
    ask = processor({"Ask": {"Type": "Task", "Resource": "module:suspend", "End": True}}, "Ask")
    definition = map_definition(ask, ResultWriter={"Resource": "arn:aws:states:::s3:putObject",
                                                   "Parameters": {"Bucket": s3.bucket}})
    started = workers.service.start(definition, [{"n": 0}, {"n": 1}], state_machine=None, trusted=True)
    parent = started["executionId"]
    deadline = time.monotonic() + 60
    while list(children_of(workers.service, parent).values()) != ["SUSPENDED", "SUSPENDED"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [described] = workers.service.map_runs.of_execution(parent)
    assert described["executionCounts"]["resultsWritten"] == 0
    workers.service.abort(parent)
    later = VirtualClock(time.time() + workers.service.settings.lease_seconds + 1)
    make_service(clock=later).tick()  # the run's timer: its parent no longer waits
    run_id = described["mapRunArn"].rsplit(":", 1)[1]
    manifest, records = result_files(s3, f"{run_id}/manifest.json")
    assert (records["SUCCEEDED"], records["FAILED"]) == ([], [])
    assert [json.loads(record["Input"]) for record in records["PENDING"]] == [{"n": 0}, {"n": 1}]
    [described] = workers.service.map_runs.of_execution(parent)
    assert described["status"] == "ABORTED" and described["executionCounts"]["resultsWritten"] == 0
