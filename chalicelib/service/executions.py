"""Executions: start, run on after a budget ran out, stop, describe."""
from __future__ import annotations

import json
import time
from typing import Any

from ..asl import proceed, run
from ..asl.clock import iso_timestamp
from ..asl.engine import iter_waits
from ..store import Commit, CommitConflict, ExecutionRecord
from . import names
from .definitions import compile_definition
from .errors import ServiceError, busy
from .ids import new_execution_id
from .listing import MAX_LIMIT, decode_token, encode_token, invalid
from .runs import CONTINUATIONS_SHOWN, MAX_COMMIT_ATTEMPTS, Runs, kept_for_redrive
from .statuses import FINISHED
from .waits import asked, timer_member


def _cursor(token: str | None, execution_id: str, name: str) -> int:
    """Where a page goes on: what a ``nextToken`` or ``historyToken`` of this execution carries."""
    if token is None:
        return 0
    position, owner = decode_token(token)
    if owner != execution_id:
        raise invalid(f"'{name}' is a token of another execution.")
    return position


def _positions(events: list[dict]):
    """(position, event): events the service adds (aborts, heartbeats) have no id, so an event's
    position is the id before it, times a million, plus how many id-less events came since."""
    last, since = 0, 0
    for event in events:
        if "id" in event:
            last, since = event["id"], 0
        else:
            since += 1
        yield last * 1_000_000 + since, event


def _page_size(value: int | None, default: int, name: str) -> int:
    if value is None:
        return default
    if type(value) is not int or not 1 <= value <= MAX_LIMIT:
        raise invalid(f"'{name}' must be a whole number from 1 to {MAX_LIMIT}.")
    return value


class Executions:
    def __init__(self, runs: Runs):
        self.runs = runs
        self.store = runs.store
        self.clock = runs.clock
        self.settings = runs.settings

    def start(self, definition: Any, input: Any, *, state_machine: str | None, trusted: bool,
              name: str | None = None, parent: dict | None = None, map_run: dict | None = None,
              dispatch: bool = True) -> dict:
        """Start an execution; ``parent`` links a child execution to the parent's waiting task,
        ``map_run`` a map run's child to its run (``{"runId", "index"}``).

        ``dispatch=False``: an execution still RUNNING after the request's budget is not handed to
        the background (the caller ends it: a synchronous start that ran out of time)."""
        compiled = compile_definition(definition, trusted=trusted,
                                      allowed_resources=self.settings.allowed_resources)
        execution_id = new_execution_id()
        if name is not None:
            existing = self._reserve(name, execution_id, names.machine_of(state_machine, compiled.hash), input)
            if existing is not None:
                return existing
        now = self.clock.now()
        outcome = self.runs.run(execution_id, lambda options: run(
            compiled, input, name=name or execution_id, state_machine_name=state_machine or "inline",
            region=self.settings.aws_region, account=self.settings.aws_account_id,
            **options))
        record = ExecutionRecord(
            id=execution_id, version=0, status="RUNNING", definition_hash=compiled.hash,
            document={
                "executionId": execution_id,
                "name": name or execution_id,
                "stateMachine": state_machine,
                "status": "RUNNING",
                "input": input,
                "startDate": iso_timestamp(now),
            },
            snapshot=None, open={},
        )
        if parent is not None:
            record.document["parent"] = parent
        if map_run is not None:
            record.document["mapRun"] = map_run
        self.runs.write(self.runs.next_commit(record, compiled, outcome, create=True), compiled, outcome)
        if record.status == "RUNNING" and dispatch:
            self.runs.dispatch(execution_id)
        return self.runs.document(record)

    def _reserve(self, name: str, execution_id: str, machine: str, input: Any) -> dict | None:
        """Reserve ``name`` before anything runs; the execution that already has it, if any.

        The same state machine and input answer that execution (``alreadyExisted``);
        anything else is ``409 ExecutionAlreadyExists``. The reservation first lasts a
        lease; the execution's commits then keep it as long as its records (see
        ``Runs.commit``). A name whose holder has no records a lease after it was
        reserved belonged to a start that died before its first commit, or to an
        execution no longer kept: it is taken over.
        """
        lease = self.settings.lease_seconds
        for _ in range(MAX_COMMIT_ATTEMPTS):
            now = self.clock.now()
            owner = names.holder(execution_id, machine, input, now)
            held = self.store.reserve_name(name, owner, lease)
            if held is None:
                return None
            holder = json.loads(held)
            record = self.runs.load(holder["executionId"])
            if record is None and holder.get("since", now) + lease <= now:
                if self.store.replace_name(name, held, owner, lease):
                    return None
                continue  # another start took it first: look again
            if holder["machine"] != machine or holder["input"] != names.input_digest(input):
                raise ServiceError(409, "ExecutionAlreadyExists",
                                   f"An execution named {name!r} already exists with another state machine "
                                   "or input.", executionId=holder["executionId"], name=name)
            if record is None:  # the first start is still running its first step
                raise ServiceError(409, "ExecutionStarting",
                                   f"The execution named {name!r} is starting; try again.",
                                   executionId=holder["executionId"], name=name, retryAfterSeconds=1)
            return {**self.runs.document(record), "alreadyExisted": True}
        raise busy()

    def find(self, name: str) -> str | None:
        """The ID of the execution named ``name``, while its records are kept."""
        held = self.store.name_owner(name)
        return None if held is None else json.loads(held)["executionId"]

    def continue_running(self, execution_id: str, seconds: float | None = None) -> dict | None:
        """Run a RUNNING execution on, one request budget at a time, committing each step.

        With ``seconds`` (what is left of a Lambda invocation), stop in time and hand
        the rest to a new invocation, so a long execution is never cut off half-way.
        """
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            record = self.runs.load(execution_id)
            if record is None or record.status != "RUNNING" or record.snapshot is None:
                return None if record is None else self.runs.document(record)
            if deadline is not None and time.monotonic() + self.settings.request_max_seconds > deadline:
                self.runs.dispatch(execution_id)
                return self.runs.document(record)
            self._step(record)  # a conflict (a redemption, an abort changed it first): reload and look again

    def run_once(self, record: ExecutionRecord) -> None:
        """Run a RUNNING execution one request budget on, then hand the rest to the background."""
        if self._step(record) and record.status == "RUNNING":
            self.runs.dispatch(record.id)

    def _step(self, record: ExecutionRecord) -> bool:
        """One request budget of a RUNNING execution, committed; False when another writer came first."""
        compiled = self.runs.definition(record.definition_hash)
        outcome = self.runs.run(record.id, lambda options: proceed(
            compiled, record.snapshot, copy_snapshot=False, **options), record.snapshot)
        try:
            self.runs.write(self.runs.next_commit(record, compiled, outcome), compiled, outcome)
        except CommitConflict:
            return False
        if record.status != "RUNNING":
            self.runs.after_commit(record)
        return True

    def abort(self, execution_id: str) -> dict:
        return self.stop(execution_id, "ABORTED", "States.Aborted", "Stopped by a DELETE request.",
                         "ExecutionAborted", "aborted")

    def stop(self, execution_id: str, status: str, error: str, cause: str, event: str,
             reason: str, at: float | None = None) -> dict:
        """End an execution from outside (abort, execution timeout); close its continuations.

        ``at`` is when it ended, if not now (a timeout ends at its deadline, however late the
        timer fires)."""
        for _ in range(MAX_COMMIT_ATTEMPTS):
            record = self.runs.reload(execution_id)
            if record.status in FINISHED:
                raise ServiceError(409, "ExecutionAlreadyFinished",
                                   f"The execution has already ended ({record.status}).",
                                   executionId=execution_id)
            now = self.clock.now()
            ended = iso_timestamp(now if at is None else min(at, now))
            closed = [(self.runs.key_hash(execution_id, nonce), reason, point)
                      for point, (nonce, _) in record.open.items()]
            about = asked(record.snapshot)
            record.status = status
            record.document.update(status=status, stopDate=ended, error=error, cause=cause)
            record.redrive = kept_for_redrive(record.snapshot, record.redrive, self.settings.redrive_max_bytes)
            record.snapshot, record.open = None, {}
            commit = Commit(record=record, ttl=self.settings.retention_seconds, closed=closed, about=about,
                            now=now, timers=[(timer_member("mapchild", record.id), now)]
                            if record.document.get("mapRun") else [],
                            events=[{"type": event, "timestamp": ended, "error": error,
                                     "cause": cause}])
            if record.redrive and "snapshot" in record.redrive:  # its definition is kept as long
                compiled = self.runs.definition(record.definition_hash)
                commit.definition = (compiled.hash, compiled.text)
            try:
                self.runs.commit(commit)
            except CommitConflict:
                continue
            return self.runs.document(record)
        raise busy()

    def describe(self, execution_id: str, with_history: bool = True, *, limit: int | None = None,
                 next_token: str | None = None, history_limit: int | None = None,
                 history_token: str | None = None) -> dict:
        """By ID, or else by the name the execution was started with.

        A page of its open continuations (``limit``, default ``CONTINUATIONS_SHOWN``; ``next_token``
        from the page before) and of its history, oldest first (``history_limit``, default all it
        keeps; ``history_token``). A task-token call of this execution whose maker died is made
        first (see ``calls``).
        """
        try:
            record = self.runs.reload(execution_id)
        except ServiceError:
            found = self.find(execution_id)
            if found is None:
                raise
            record = self.runs.reload(found)
        offset = _cursor(next_token, record.id, "nextToken")
        after = _cursor(history_token, record.id, "historyToken")
        limit = _page_size(limit, CONTINUATIONS_SHOWN, "limit")
        history_limit = _page_size(history_limit, self.store.history_limit, "historyLimit")
        if record.snapshot is not None and any(w["kind"] in ("task-token", "event") for _, w in iter_waits(record.snapshot)):
            made, _ = self.runs.calls.finish(record.id)
            if made:
                record = self.runs.reload(record.id)
        document = self.runs.document(record, limit, offset)
        if with_history:
            events = [(key, event) for key, event in _positions(self.store.history(record.id)) if key > after]
            page = events[:history_limit]
            document["history"] = self.runs.tokens.history(record, [event for _, event in page])
            if len(events) > len(page):
                document["historyNextToken"] = encode_token((page[-1][0], record.id))
        return document

    def definition_of(self, execution_id: str) -> dict:
        """The definition an execution runs (410 once it is no longer stored)."""
        return self.runs.definition(self.runs.reload(execution_id).definition_hash).definition
