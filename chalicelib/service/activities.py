"""Activities: tasks that workers outside the service poll for, as in AWS Step Functions.

A Task whose ``Resource`` is an activity ARN of this stage
(``arn:aws:states:<region>:<account>:activity:<name>``) suspends (kind ``activity``)
and queues itself on the activity: a task-token call, so the push is made by the outbox
after the commit that stores the continuation (see ``calls``), never for an execution that
was not stored. The task token is the continuation ID, as for ``.waitForTaskToken``.

A worker takes a task with :meth:`Activities.take`: a blocking pop hands each queued task to
one caller, and a commit guarded by the execution's version marks the task started (with
the worker's name, an ``ActivityStarted`` event), so a task queued twice (its push made
again after a crash) is still handed out once. A task whose execution ended, or that no
longer waits (it timed out, was answered or retried), is skipped. An activity task's
heartbeat clock starts when a worker takes it; its ``TimeoutSeconds`` counts from when it
was scheduled, as in AWS. A task handed out whose worker never answers (it died, or the
answer to its poll was lost on the way) is failed by those timeouts, and Retry applies. A task
in a branch stored apart (a Map of activity tasks) is read and marked started in that branch alone.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from ..asl import Suspend, TaskContext, TaskFailed, errors
from ..asl.clock import iso_timestamp
from ..store import CommitConflict
from ..store.activities import ActivityStore
from .errors import ServiceError, busy
from .points import record_of
from .runs import MAX_COMMIT_ATTEMPTS, Runs
from .statuses import FINISHED
from .waits import point_wait, timer_member

log = logging.getLogger(__name__)

KIND = "activity"
DEFAULT_ENCRYPTION = {"type": "AWS_OWNED_KEY"}


@dataclass
class Activity:
    name: str
    created: float
    encryption: dict


class Activities:
    def __init__(self, runs: Runs):
        self.runs = runs
        self.clock = runs.clock
        self.store = ActivityStore(runs.store.redis, runs.settings.redis_socket_timeout)
        settings = runs.settings
        self.prefix = f"arn:aws:states:{settings.aws_region}:{settings.aws_account_id}:activity:"

    # -- the registry -------------------------------------------------------------

    def get(self, name: str) -> Activity | None:
        fields = self.store.get(name)
        if fields is None:
            return None
        return Activity(name, float(fields["created"]), json.loads(fields["encryption"]))

    def create(self, name: str, encryption: dict | None = None) -> tuple[Activity, bool]:
        """(the activity, whether it was created now). Idempotent by name, as in AWS: the same name
        answers the activity that exists, unless another encryption is asked for."""
        wanted = encryption or DEFAULT_ENCRYPTION
        fields = {"created": repr(self.clock.now()), "encryption": json.dumps(wanted, sort_keys=True)}
        existing = self.store.create(name, fields)
        if existing is None:
            return Activity(name, float(fields["created"]), wanted), True
        activity = Activity(name, float(existing["created"]), json.loads(existing["encryption"]))
        if encryption is not None and activity.encryption != wanted:
            raise ServiceError(409, "ActivityAlreadyExists",
                               f"Activity already exists: '{name}' (with another encryptionConfiguration).")
        return activity, False

    def delete(self, name: str) -> None:
        self.store.delete(name)

    def names(self, after: str | None, limit: int) -> tuple[list[str], bool]:
        """Names in order after ``after``: (at most ``limit``, whether more follow)."""
        names = self.store.names(after, limit + 1)
        return names[:limit], len(names) > limit

    # -- tasks --------------------------------------------------------------------

    def name_of(self, resource: str) -> str | None:
        """The activity an ARN of this stage names (None for any other resource)."""
        if not resource.startswith(self.prefix):
            return None
        name = resource[len(self.prefix):]
        return name if name and ":" not in name else None

    def resolver(self, execution_id: str) -> "ActivityTasks":
        return ActivityTasks(self, execution_id)

    def take(self, name: str, worker: str | None, seconds: float) -> dict | None:
        """The next task of activity ``name`` for ``worker``, waiting up to ``seconds``:
        ``{"taskToken", "input"}`` (input as JSON text), or None when none came."""
        ends = time.monotonic() + seconds  # a real wait, whatever the service's clock
        while True:
            queued = self.store.pop(name, ends - time.monotonic())
            if queued is None:
                return None
            try:
                task = self._hand_off(*queued, worker)
            except Exception:
                self._put_back(name, *queued)
                raise
            if task is not None:
                return task

    def _put_back(self, name: str, execution_id: str, point: str) -> None:
        """A task popped whose hand-off failed before its commit goes back, next out (if Redis can be reached)."""
        settings = self.runs.settings
        try:
            self.store.push(name, execution_id, point, settings.continuation_ttl + settings.retention_seconds,
                            first=True)
        except Exception:  # noqa: BLE001 - then only the task's timeouts end it
            log.warning("could not queue task %s of %s again", point, execution_id, exc_info=True)

    def _hand_off(self, execution_id: str, point: str, worker: str | None) -> dict | None:
        """Mark a popped task started by ``worker`` (one commit: of its branch, in one stored apart); None
        when it no longer waits."""
        for _ in range(MAX_COMMIT_ATTEMPTS):
            read = self.runs.points.read(execution_id, point)
            record = record_of(read)
            if record is None or record.status in FINISHED or point not in record.open:
                return None
            wait = point_wait(read)
            if wait is None or wait.get("kind") != KIND or "startedAt" in wait:
                return None  # answered, timed out, retried, or already handed out
            now = self.clock.now()
            wait["startedAt"] = now
            timers = []
            if wait.get("heartbeatSeconds"):
                wait["heartbeatAt"] = now + wait["heartbeatSeconds"]
                timers.append((timer_member("heartbeat", record.id, point), wait["heartbeatAt"]))
            event = {"type": "ActivityStarted", "timestamp": iso_timestamp(now), "state": wait["state"],
                     "point": point, **({"workerName": worker} if worker else {})}
            try:
                self.runs.points.mark(read, event, timers, now)
            except CommitConflict:
                continue
            parameters = self.runs.tokens.revealed(record, wait.get("parameters"), points={point})
            return {"taskToken": self.runs.tokens.token(record, point),
                    "input": json.dumps(parameters, ensure_ascii=False, separators=(",", ":"))}
        raise busy()

    def queue(self, execution_id: str, resource: str, context: TaskContext) -> None:
        """Queue the task of ``context`` (the outbox calls this once its continuation is stored)."""
        name = self.name_of(resource) or ""
        now = self.clock.now()
        timeout_at = now + context.timeout_seconds if context.timeout_seconds else None
        ttl = int(self.runs.expiry(now, timeout_at) - now) + self.runs.settings.retention_seconds
        if not self.store.push(name, execution_id, context.point, ttl):
            raise missing(resource, context)


def missing(resource: str, context: TaskContext) -> Exception:
    """The task of an activity that does not exist: ``States.Runtime``, with AWS's cause."""
    message = f"The activity {resource} does not exist."
    if context.entered_event is None:  # a call made again after a crash knows no event
        return TaskFailed(errors.RUNTIME, message)
    return errors.state_failure(errors.RUNTIME, context.state, context.entered_event, message)


class ActivityTasks:
    """Resolves the activity ARNs of this stage for one execution: a task-token call (see ``calls``)."""

    def __init__(self, activities: Activities, execution_id: str):
        self.activities, self.execution_id = activities, execution_id

    def resolve(self, resource: str):
        name = self.activities.name_of(resource)
        if name is None:
            return None
        activities, execution_id = self.activities, self.execution_id

        def queue(payload: Any, context: TaskContext) -> None:
            activities.queue(execution_id, resource, context)

        def suspension(payload: Any, context: TaskContext) -> Suspend:
            if activities.get(name) is None:  # fails the task at once, as in AWS
                raise missing(resource, context)
            return Suspend(KIND, {"activity": name})

        queue.waits_for_token = True  # made after the commit that stores the wait
        queue.suspension = suspension
        return queue
