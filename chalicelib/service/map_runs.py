"""Map runs: a Distributed Map's children, run as child executions by workers on other invocations.

The interpreter hands a Distributed Map's children to the resource
``DISTRIBUTED_MAP`` (see ``chalicelib/asl/distributed.py``). Here that call is a
task-token call of the outbox (``calls``): during the run it only suspends the
Map (kind ``map-run``, answered by the service alone); once the commit has
stored the parent, the call stores the run (``chalicelib/store/map_runs.py``:
its children's inputs and counters, in the parent's slot), schedules its sweep
timer and dispatches its workers. A call whose maker died is made again by the
timer sweep, and storing the run a second time changes nothing.

A *worker* (``work``: one asynchronous Lambda invocation, a thread under
``chalice local``) claims a chunk of ``MAP_CHUNK_SIZE`` children at a time and runs
them one after the other, so at most as many children run at once as there are
workers: ``min(MaxConcurrency, chunks)``, MaxConcurrency defaulting to
``MAP_MAX_CONCURRENCY`` (1,000; at most 10,000). A STANDARD child is a child
execution, started by name (``<runId>-<index>``), so a chunk run again after its
worker died starts each child once; it may suspend (for a person, a timer) and
reports its end itself, through a ``mapchild`` timer its last commit writes. An
EXPRESS child runs inside the worker and is kept only as its result (it cannot
wait). Each end is recorded once (``record``); the one that records the last
child, or the failure past the tolerated threshold, ends the run and resumes the
parent: one join. The run's sweep timer, every ``LEASE_SECONDS``, dispatches a
worker for each chunk whose lease ran out (its worker died) and resumes the
parent again if the join did not get through.
"""
from __future__ import annotations

import json
import math
import time
from typing import Any, Callable

from ..asl import Suspend, TaskContext, proceed, run
from ..asl.clock import iso_timestamp
from ..asl.distributed import DISTRIBUTED_MAP, transform
from ..asl.errors import EXCEED_TOLERATED_FAILURE_THRESHOLD, RUNTIME
from ..asl.limits import MAX_DISTRIBUTED_MAP_CONCURRENCY
from ..store.map_runs import MapRunStore, StartedChildren
from .calls import idempotency_key
from .children import description
from .definitions import compile_definition
from .errors import ServiceError
from .listing import summary
from .statuses import FINISHED
from .waits import timer_member

KIND = "map-run"


def map_run_arn(execution_arn: str, state: str, label: str | None, run_id: str) -> str:
    """``arn:aws:states:<region>:<account>:mapRun:<machine>/<label or state>:<runId>``."""
    parts = execution_arn.split(":")
    return ":".join(parts[:5] + ["mapRun", f"{parts[6]}/{label or state}", run_id])


def run_id_of(arn: str) -> str | None:
    """The run ID a map run ARN ends with, when it is one."""
    parts = arn.split(":")
    return parts[-1] if len(parts) == 8 and parts[5] == "mapRun" and parts[-1] else None


class MapRunStarter:
    """The ``DISTRIBUTED_MAP`` handler of one parent execution: suspends the Map, then (after the
    commit, from the outbox) starts the run."""

    waits_for_token = True

    def __init__(self, map_runs: "MapRuns", execution_id: str):
        self.map_runs, self.execution_id = map_runs, execution_id

    def resolve(self, resource: str):
        return self if resource == DISTRIBUTED_MAP else None

    def suspension(self, payload: dict, context: TaskContext) -> Suspend:
        arn = map_run_arn(context.execution["Id"], payload["state"], payload.get("label"), context.idempotency_key)
        return Suspend(KIND, {"mapRunArn": arn, "runId": context.idempotency_key})

    def __call__(self, payload: dict, context: TaskContext) -> None:
        self.map_runs.start(self.execution_id, context.point, context.idempotency_key,
                            context.execution["Id"], payload)


class MapRuns:
    def __init__(self, runs, executions, redemptions):
        self.runs, self.executions, self.redemptions = runs, executions, redemptions
        self.settings, self.clock = runs.settings, runs.clock
        self.store = MapRunStore(runs.store.redis)
        #: Runs one worker of a run elsewhere (a Lambda invocation, a thread); set by the Service.
        self.dispatch_worker: Callable[[str], None] = lambda run_id: None

    def starter(self, execution_id: str) -> MapRunStarter:
        return MapRunStarter(self, execution_id)

    # -- starting ---------------------------------------------------------------

    def start(self, execution_id: str, point: str, run_id: str, execution_arn: str, payload: dict) -> None:
        """Store the run (once) and dispatch its workers; its sweep timer looks after it from then on."""
        children = payload["children"]
        total = len(children)
        count, percentage = payload.get("toleratedFailureCount"), payload.get("toleratedFailurePercentage")
        tolerated = count
        if percentage is not None:
            by_pct = math.floor(total * percentage / 100)
            tolerated = by_pct if tolerated is None else max(tolerated, by_pct)
        concurrency = min(payload.get("maxConcurrency") or self.settings.map_max_concurrency,
                          MAX_DISTRIBUTED_MAP_CONCURRENCY)
        now = self.clock.now()
        parent = self.runs.load(execution_id)
        config = {
            "executionId": execution_id, "point": point, "executionArn": execution_arn,
            "arn": map_run_arn(execution_arn, payload["state"], payload.get("label"), run_id),
            "machine": f"{(parent.document.get('stateMachine') if parent else None) or 'inline'}/"
                       f"{payload.get('label') or payload['state']}",
            "definition": payload["definition"], "executionType": payload.get("executionType", "STANDARD"),
            "maxConcurrency": concurrency, "tolerated": tolerated, "toleratedFailureCount": count or 0,
            "toleratedFailurePercentage": percentage or 0, "resultWriter": payload.get("resultWriter"),
            "batched": bool(payload.get("batched")),
        }
        items = sum(len(c["Items"]) for c in children) if config["batched"] else total
        ttl = self.settings.continuation_ttl + self.settings.retention_seconds
        self.store.create(run_id, execution_id, {"config": json.dumps(config), "startDate": iso_timestamp(now),
                                                 "items": str(items)},
                          [json.dumps(child, separators=(",", ":")) for child in children], now, ttl)
        self.runs.store.add_timers([(timer_member("maprun", execution_id, point),
                                     now + self.settings.lease_seconds)], ttl)
        if total == 0:
            self._end(run_id, "SUCCEEDED")
            return
        for _ in range(self.workers(config, total)):
            self.dispatch_worker(run_id)

    def workers(self, config: dict, total: int) -> int:
        return min(config["maxConcurrency"], math.ceil(total / self.settings.map_chunk_size))

    # -- workers ----------------------------------------------------------------

    def work(self, run_id: str, seconds: float | None = None) -> int:
        """Run chunks of children until none is left; how many children this worker ran.

        With ``seconds`` (what is left of a Lambda invocation) it stops before it runs out
        and dispatches another worker for the rest.
        """
        deadline = None if seconds is None else time.monotonic() + seconds
        config = None
        ran = 0
        lease, chunk = self.settings.lease_seconds, self.settings.map_chunk_size
        while True:
            if deadline is not None and time.monotonic() + self.settings.request_max_seconds > deadline:
                self.dispatch_worker(run_id)
                return ran
            start = self.store.claim(run_id, self.clock.now(), lease, chunk)
            if start < 0:
                return ran
            if config is None:
                meta = self.store.get(run_id)
                config = json.loads(meta["config"])
            extended = self.clock.now()
            for offset, text in enumerate(self.store.inputs(run_id, start, start + chunk)):
                ran += 1
                if not self.run_child(run_id, config, start + offset, json.loads(text)):
                    break  # the run has ended (a failure past the threshold): the rest never run
                if self.clock.now() - extended > lease / 3:  # still at it: keep the chunk
                    extended = self.clock.now()
                    self.store.extend(run_id, start, extended + lease)
            self.store.release(run_id, start)

    def run_child(self, run_id: str, config: dict, index: int, child_input: Any) -> bool:
        """Run child ``index`` (record it if it ended); False once the run has ended."""
        if config["executionType"] == "EXPRESS":
            return self._record(run_id, config, index, self._express(run_id, config, index, child_input))
        document = self.executions.start(
            config["definition"], child_input, state_machine=config["machine"], trusted=True,
            name=f"{run_id}-{index}", map_run={"runId": run_id, "index": index})
        self.store.add_child(run_id, document["executionId"], self.clock.now())
        if document["status"] in FINISHED:
            return self._record(run_id, config, index, _entry(description(document, "sync")))
        return True

    def _express(self, run_id: str, config: dict, index: int, child_input: Any) -> dict:
        """Run an EXPRESS child here, to its end: its result-file entry."""
        name = f"{run_id}-{index}"
        compiled = compile_definition(config["definition"], trusted=True,
                                      allowed_resources=self.settings.allowed_resources)
        started = iso_timestamp(self.clock.now())
        outcome = self.runs.run(name, lambda options: run(
            compiled, child_input, name=name, state_machine_name=config["machine"],
            region=self.settings.aws_region, account=self.settings.aws_account_id, **options))
        result = outcome.result
        while result["status"] == "RUNNING":
            result = self.runs.run(name, lambda options, snapshot=result["snapshot"]: proceed(
                compiled, snapshot, copy_snapshot=False, **options), result["snapshot"]).result
        if result["status"] == "SUSPENDED":
            result = {"status": "FAILED", "error": RUNTIME,
                      "cause": "An EXPRESS child execution cannot wait (for a person, a token or a timer)."}
        document = {"executionId": name, "name": name, "stateMachine": config["machine"], "input": child_input,
                    "startDate": started, "stopDate": iso_timestamp(self.clock.now()), **result}
        return _entry(description(document, "sync"))

    # -- ends -------------------------------------------------------------------

    def collect(self, child_id: str) -> bool:
        """A STANDARD child's end (from its ``mapchild`` timer or right after its commit): record it."""
        child = self.runs.load(child_id)
        if child is None or child.status not in FINISHED or not child.document.get("mapRun"):
            return True
        link = child.document["mapRun"]
        meta = self.store.get(link["runId"])
        if meta is not None:
            self._record(link["runId"], json.loads(meta["config"]), link["index"],
                         _entry(description(child.document, "sync")))
        return True

    def _record(self, run_id: str, config: dict, index: int, entry: dict) -> bool:
        """Record a child's end; end the run after its last child, or a failure past the threshold.
        False once the run has ended."""
        items = len(json.loads(entry["Input"]).get("Items", ())) if config["batched"] else 1
        recorded, done, failed, total = self.store.record(run_id, index, entry["Status"],
                                                          json.dumps(entry, separators=(",", ":")), items)
        if not recorded:
            return total > 0
        tolerated = config["tolerated"]
        if entry["Status"] != "SUCCEEDED" and (tolerated is None or failed > tolerated):
            if tolerated is None:
                error, cause = entry.get("Error"), entry.get("Cause")
            else:
                error, cause = (EXCEED_TOLERATED_FAILURE_THRESHOLD,
                                "The specified tolerated failure threshold for the Map Run has been exceeded.")
            self._end(run_id, "FAILED", error or "", cause or "")
            return False
        if done == total:
            self._end(run_id, "SUCCEEDED")
            return False
        return True

    def _end(self, run_id: str, state: str, error: str = "", cause: str = "") -> None:
        if self.store.end(run_id, state, iso_timestamp(self.clock.now()), error, cause):
            self.join(run_id)
            if state != "SUCCEEDED":
                self._stop_children(run_id)

    def _stop_children(self, run_id: str) -> None:
        """Stop the STANDARD children of a run that ended without them (failed, or its parent stopped
        waiting): those started and not ended, waiting for a person say, end ABORTED."""
        meta = self.store.get(run_id)
        if json.loads(meta["config"])["executionType"] != "STANDARD":
            return
        ended = self.store.ended(run_id)
        for index in range(min(int(meta["cursor"]), int(meta["total"]))):
            child_id = None if index in ended else self.executions.find(f"{run_id}-{index}")
            if child_id is None:
                continue
            try:
                self.executions.stop(child_id, "ABORTED", "States.Aborted", "Its map run ended.",
                                     "ExecutionAborted", "aborted")
            except ServiceError:
                pass  # it ended meanwhile, or is no longer stored

    def join(self, run_id: str) -> bool:
        """Resume the parent with what the ended run gives (again, harmlessly, after a lost try).
        False: its continuation is busy; the sweep tries again."""
        meta = self.store.get(run_id)
        config = json.loads(meta["config"])
        parent = self.runs.load(config["executionId"])
        if parent is None or config["point"] not in parent.open or meta["state"] == "ABORTED":
            return True
        if meta["state"] == "FAILED":
            self.write_unfinished(run_id, meta, config)
            answer = {"error": meta.get("error") or None, "cause": meta.get("cause") or None}
        else:
            try:
                answer = {"result": self.output(run_id, config)}
            except Exception as exc:  # noqa: BLE001 - the writer's failure is the Map's
                from ..asl.tasks import task_failure

                failure = task_failure(exc)
                answer = {"error": failure.error, "cause": failure.cause}
        return self.redemptions.answer_point(parent, config["point"], answer, "redeemed")

    def output(self, run_id: str, config: dict) -> Any:
        """The Map's result: the children's outputs in order, or where the ResultWriter put them."""
        writer = config.get("resultWriter") or {}
        if not writer.get("Bucket"):
            stored = self.store.results(run_id)
            return transform([json.loads(stored[index]) for index in sorted(stored)],
                             writer.get("Transformation", "COMPACT"))
        return {"MapRunArn": config["arn"], "ResultWriterDetails": self._write(run_id, config)}

    def write_unfinished(self, run_id: str, meta: dict, config: dict) -> None:
        """Write the result files of a run that FAILED or was ABORTED, as AWS does (once: not again
        after a join that did not get through). A write that fails leaves the run's own error."""
        if meta["state"] in ("FAILED", "ABORTED") and (config.get("resultWriter") or {}).get("Bucket") \
                and not meta.get("written"):
            try:
                self._write(run_id, config)
            except Exception:  # noqa: BLE001 - the run has failed already; its error is the Map's
                pass

    def _write(self, run_id: str, config: dict) -> dict:
        """Write the ResultWriter's files (the ``ResultWriterDetails``): the ended children's records
        by status, and those that never ran or did not end (the run failed or was stopped) as
        ``PENDING``, ``{"Input", "Name", "Status": "PENDING"}``."""
        from ..resources.s3_items import write_results

        stored = self.store.results(run_id)
        by_status: dict[str, list] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
        for index in sorted(stored):
            entry = json.loads(stored[index])
            by_status["SUCCEEDED" if entry["Status"] == "SUCCEEDED" else "FAILED"].append(entry)
        total = int(self.store.get(run_id)["total"])
        if len(stored) < total:
            for index, text in enumerate(self.store.inputs(run_id, 0, total)):
                if index not in stored:
                    by_status["PENDING"].append({"Input": text, "Name": f"{run_id}-{index}", "Status": "PENDING"})
        writer = config["resultWriter"]
        shaped = {status: transform(items, writer.get("Transformation", "COMPACT"))
                  for status, items in by_status.items()}
        details = write_results(writer, config["arn"], run_id, shaped)
        self.store.mark_written(run_id)
        return details

    # -- the sweep --------------------------------------------------------------

    def sweep(self, execution_id: str, point: str) -> bool | float:
        """The run's timer: join an ended run; replace workers whose lease ran out; look again later.

        A run whose parent no longer waits for it (the parent ended, or was stopped) ends ABORTED."""
        run_id = idempotency_key(execution_id, point)
        parent = self.runs.load(execution_id)
        waiting = parent is not None and parent.snapshot is not None and point in parent.open
        meta = self.store.get(run_id)
        if meta is None:
            if waiting:
                return self.redemptions.answer_point(parent, point, {
                    "error": RUNTIME, "cause": "The map run is no longer stored."}, "redeemed")
            return True
        if not waiting:
            if self.store.end(run_id, "ABORTED", iso_timestamp(self.clock.now())):
                self._stop_children(run_id)
            self.write_unfinished(run_id, self.store.get(run_id), json.loads(meta["config"]))
            return True
        if meta["state"] != "RUNNING":
            return self.join(run_id)
        now = self.clock.now()
        live, expired = self.store.leases(run_id, now)
        config = json.loads(meta["config"])
        total = int(meta["total"])
        lost = expired + (1 if live == 0 and int(meta["cursor"]) < total else 0)
        for _ in range(min(lost, self.workers(config, total))):
            self.dispatch_worker(run_id)
        return now + self.settings.lease_seconds

    # -- reading ----------------------------------------------------------------

    def describe(self, run_id: str) -> dict | None:
        """The run as DescribeMapRun shows it (dates as ISO text), or None."""
        meta = self.store.get(run_id)
        if meta is None:
            return None
        config = json.loads(meta["config"])
        total, items_total = int(meta["total"]), int(meta.get("items") or meta["total"])
        claimed = min(int(meta["cursor"]), total)
        children = _counts(meta, "", total, claimed)
        items = _counts(meta, "items", items_total, round(items_total * claimed / max(1, total)))
        return {"mapRunArn": config["arn"], "executionArn": config["executionArn"], "status": meta["state"],
                "startDate": meta["startDate"], "stopDate": meta.get("stopDate"),
                "maxConcurrency": config["maxConcurrency"],
                "toleratedFailureCount": config["toleratedFailureCount"],
                "toleratedFailurePercentage": float(config["toleratedFailurePercentage"]),
                "executionCounts": children, "itemCounts": items}

    def summary(self, wait: dict, branch: str | None) -> dict:
        """An open map run as the execution document shows it: its ARN and children's counters
        (``STARTING`` until the run is stored, right after the commit that suspended the Map)."""
        detail = wait.get("detail") or {}
        found = self.describe(detail.get("runId", ""))
        if found is None:
            total = (wait.get("parameters") or {}).get("items", 0)
            counts = {"pending": total, "running": 0, "succeeded": 0, "failed": 0, "timedOut": 0, "aborted": 0,
                      "total": total}
            status = "STARTING"
        else:
            counts = {key: found["executionCounts"][key] for key in
                      ("pending", "running", "succeeded", "failed", "timedOut", "aborted", "total")}
            status = found["status"]
        return {"mapRunArn": detail.get("mapRunArn"), "state": wait["state"], "branch": branch, "status": status,
                "counts": counts}

    def children(self, run_id: str) -> StartedChildren:
        """The run's STANDARD child executions (IDs), oldest first, read a page at a time."""
        return self.store.children(run_id)

    def child_summaries(self, run_id: str, execution_ids: list[str]) -> list[dict]:
        """What a listing shows of each child still stored, and ``itemCount`` (its batch's items, or 1)."""
        meta = self.store.get(run_id)
        batched = meta is not None and json.loads(meta["config"])["batched"]
        out = []
        for execution_id in execution_ids:
            record = self.runs.load(execution_id)
            if record is not None:
                items = record.document.get("input") if batched else None
                count = len(items.get("Items") or ()) if isinstance(items, dict) else 1
                out.append({**summary(record), "itemCount": count})
        return out

    def of_execution(self, execution_id: str) -> list[dict]:
        return [found for found in (self.describe(run_id) for run_id in self.store.runs_of(execution_id)) if found]


def _entry(described: dict) -> dict:
    """A child's description as an entry of the result files (AWS adds its redrive fields)."""
    return {**described, "RedriveCount": 0, "RedriveStatus": "NOT_REDRIVABLE"}


def _counts(meta: dict, prefix: str, total: int, claimed: int) -> dict:
    """Counters by status. While the run runs, ``claimed`` (children, or their items, of the chunks
    workers took) that have not ended are running and the rest pending; once it has ended, what never
    ran is aborted."""
    ended = {status: int(meta.get(prefix + status) or 0) for status in ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")}
    done = sum(ended.values())
    running_now = meta["state"] == "RUNNING"
    running = max(0, min(claimed, total) - done) if running_now else 0
    written = bool(meta.get("written"))
    return {"pending": max(0, total - done - running) if running_now else 0, "running": running,
            "succeeded": ended["SUCCEEDED"], "failed": ended["FAILED"], "timedOut": ended["TIMED_OUT"],
            "aborted": ended["ABORTED"] + (0 if running_now else total - done), "total": total,
            "resultsWritten": done if written else 0, "failuresNotRedrivable": 0, "pendingRedrive": 0}
