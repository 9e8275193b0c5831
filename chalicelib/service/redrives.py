"""Redriving an execution that ended FAILED, TIMED_OUT or ABORTED: it runs on from where it stopped.

When an execution ends unsuccessfully its record keeps, beside the document, what a redrive needs
(``ExecutionRecord.redrive``): the snapshot where it stopped, if it is at most ``REDRIVE_MAX_BYTES``
of JSON, for as long as the record is kept (``RETENTION_SECONDS`` after the end), and the client tokens
of its last redrives. A redrive (``Redrives.redrive``) is refused with ``ExecutionNotRedrivable`` and
AWS's reasons (SUCCEEDED, still running, ended more than 14 days ago); else one commit stores it first:
the same execution ID and name, status RUNNING, ``redriveCount`` + 1, ``redriveDate``, an
``ExecutionRedriven`` event, and the snapshot made to run again (``chalicelib.asl.redrive``: the failed
or stopped states run again with the input they had; the branches and iterations that succeeded keep their
results). Only then does it run, one request budget here and the rest in the background, so what the
states call happens after the redrive is stored. A client token seen in the last 15 minutes answers the
redrive it made, once more, without another one (AWS keeps the last 10).
"""
from __future__ import annotations

from ..asl import redrive as redrive_snapshot
from ..asl.clock import iso_timestamp
from ..asl.timestamps import parse_timestamp
from ..store import CommitConflict, ExecutionRecord
from .errors import ServiceError, busy
from .runs import MAX_COMMIT_ATTEMPTS, RunOutcome, Runs
from .waits import timer_member

#: AWS's redrivable period: from the end of the execution.
REDRIVE_WINDOW_SECONDS = 14 * 86400
#: How long a client token answers the redrive it made, and how many are kept (AWS's numbers).
CLIENT_TOKEN_SECONDS = 15 * 60
CLIENT_TOKENS_KEPT = 10
UNSUCCESSFUL = ("FAILED", "TIMED_OUT", "ABORTED")


def redrive_status(record: ExecutionRecord, now: float) -> tuple[str, str | None]:
    """``REDRIVABLE`` or ``NOT_REDRIVABLE`` with the reason, as DescribeExecution says it."""
    if record.status not in UNSUCCESSFUL:
        shown = "SUCCEEDED" if record.status == "SUCCEEDED" else "RUNNING"
        return "NOT_REDRIVABLE", f"Execution is {shown} and cannot be redriven"
    stopped = parse_timestamp(record.document.get("stopDate") or "")
    if stopped is not None and now - stopped.timestamp() > REDRIVE_WINDOW_SECONDS:
        return "NOT_REDRIVABLE", "Execution redrivable period exceeded"
    if not (record.redrive or {}).get("snapshot"):
        return "NOT_REDRIVABLE", ("Execution state where it ended was not kept: it was larger than "
                                  "REDRIVE_MAX_BYTES, or the execution ended before redrives were kept")
    return "REDRIVABLE", None


class Redrives:
    def __init__(self, runs: Runs, executions):
        self.runs = runs
        self.executions = executions

    def status(self, execution_id: str) -> tuple[str, str | None]:
        return redrive_status(self.runs.reload(execution_id), self.runs.clock.now())

    def _record(self, execution_id: str) -> ExecutionRecord:
        """The execution by ID, or else by the name it was started with."""
        try:
            return self.runs.reload(execution_id)
        except ServiceError:
            found = self.executions.find(execution_id)
            if found is None:
                raise
            return self.runs.reload(found)

    def redrive(self, execution_id: str, client_token: str | None = None) -> dict:
        """Redrive the execution (by ID or name); its document once it has run a request budget on."""
        for _ in range(MAX_COMMIT_ATTEMPTS):
            record = self._record(execution_id)
            now = self.runs.clock.now()
            tokens = [entry for entry in (record.redrive or {}).get("tokens", ())
                      if now - entry[1] < CLIENT_TOKEN_SECONDS]
            if client_token is not None and any(entry[0] == client_token for entry in tokens):
                return self.runs.document(record)  # this request again: the redrive it made
            status, reason = redrive_status(record, now)
            if status != "REDRIVABLE":
                raise ServiceError(409, "ExecutionNotRedrivable", f"{reason}.", executionId=record.id)
            compiled = self.runs.definition(record.definition_hash)
            snapshot = redrive_snapshot(compiled, record.redrive["snapshot"], clock=self.runs.clock,
                                        copy_snapshot=False)
            count = int(record.document.get("redriveCount") or 0) + 1
            snapshot["events"] += 1
            event = {"id": snapshot["events"], "type": "ExecutionRedriven", "timestamp": iso_timestamp(now),
                     "redriveCount": count}
            for field in ("stopDate", "output", "error", "cause"):
                record.document.pop(field, None)
            record.document.update(redriveCount=count, redriveDate=iso_timestamp(now))
            if client_token is not None:
                tokens = (tokens + [[client_token, now]])[-CLIENT_TOKENS_KEPT:]
            record.redrive = {"tokens": tokens} if tokens else None
            outcome = RunOutcome({"status": "RUNNING", "snapshot": snapshot}, [event], {}, {})
            commit = self.runs.next_commit(record, compiled, outcome)
            if snapshot.get("timeoutAt"):
                commit.timers.append((timer_member("execution", record.id), snapshot["timeoutAt"]))
            try:
                self.runs.write(commit, compiled, outcome)
            except CommitConflict:
                continue  # changed meanwhile (another redrive): look again
            self.executions.run_once(record)
            return self.runs.document(self.runs.reload(record.id))
        raise busy()
