"""Executions driven by EventBridge-style events: start on one, wait for the next by correlation key.

* **Start rules** live beside the definitions, in ``state_machines/rules/<machine>.json``:
  ``{"start": [<event pattern>, ...]}``. An event matching one starts ``<machine>`` with the
  event as its input, named after the event's ``id`` (starting is idempotent by name, so the
  same event twice starts one execution).
* **Waiting**: a Task with ``"Resource": "module:event"`` waits for an event whose
  correlation value (the event's ``detail.id``) equals its ``CorrelationKey`` (a Parameters
  field; by default ``$$.Execution.Input.detail.id``), optionally only of the ``DetailType``
  and ``Source`` values it names, or matching its ``Pattern``. The answer is merged into the
  state's input as a ``module:suspend`` answer is: the event's ``detail`` (or, with
  ``"Answer": "event"``, the whole event) with ``eventName`` set to its ``detail-type``.
* **Delivery**: an event is given to every open wait of its correlation value that takes
  it (but those of the executions it started: it is their input); one that started nothing
  and found no wait is buffered (``EVENT_BUFFER_SECONDS``, default the continuation TTL;
  at most ``MAX_BUFFERED`` per correlation value) and given, in arrival order, to the first
  wait that opens and takes it. A wait opens with the commit that stores it: registering it is the task's
  call, kept in the execution's outbox (see ``calls``), so it is made after that commit and
  made again if its maker died. An event ID seen before is not delivered again.
* **Reading**: a delivery and a registration read the waiting point alone (``Points.read``: in an
  execution whose branches are stored apart, the branch it is in).
* **History**: the ``ExecutionResumed`` of a task an event answered names that event (``event``:
  ``eventId``, ``source``, ``detailType``); the continuation's ``detail.waitsFor`` says what an open wait
  takes.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from typing import Any

from ..asl import Suspend, TaskContext, TaskFailed
from ..asl.clock import iso_timestamp
from ..store.events import EventStore
from . import catalog, patterns
from .errors import ServiceError
from .points import record_of
from .waits import point_wait

RESOURCE = "module:event"
KIND = "event"
MAX_ATTEMPTS = 50
#: Events one correlation value may keep for waits not yet open: each delivery reads them all, so a
#: sender cannot make every later event of the key slower without bound.
MAX_BUFFERED = 1000
ENVELOPE = ("id", "source", "detail-type", "detail", "time", "account", "region", "resources", "version")


def rules_folder() -> str | None:
    folder = catalog.folder()
    path = None if folder is None else os.path.join(folder, "rules")
    return path if path and os.path.isdir(path) else None


_rules_cache: dict[str, tuple[float, list[dict]]] = {}


def start_rules() -> list[tuple[str, dict]]:
    """(state machine, pattern) of every start rule in ``state_machines/rules/``."""
    folder = rules_folder()
    if folder is None:
        return []
    rules: list[tuple[str, dict]] = []
    for file in sorted(os.listdir(folder)):
        if not file.endswith(".json"):
            continue
        path = os.path.join(folder, file)
        mtime = os.path.getmtime(path)
        cached = _rules_cache.get(path)
        if cached is None or cached[0] != mtime:
            try:
                cached = _rules_cache[path] = (mtime, load_rules(path))
            except (ValueError, RecursionError) as bad:  # the deployment's fault, named: no event is delivered
                raise ServiceError(500, "InvalidStartRules",
                                   f"state_machines/rules/{file} cannot be used: {bad}") from None
        rules += [(file[:-5], pattern) for pattern in cached[1]]
    return rules


def load_rules(path: str) -> list[dict]:
    """The start patterns of one rules file (checked: a bad one is refused by name)."""
    with open(path, encoding="utf-8") as handle:
        body = json.load(handle)
    starts = body.get("start", []) if isinstance(body, dict) else None
    if not isinstance(starts, list):
        raise ValueError(f"{path}: 'start' must be a list of event patterns")
    for index, pattern in enumerate(starts):
        patterns.check(pattern, f"{os.path.basename(path)}: start[{index}]")
    return starts


PUT_EVENTS_ENTRY = ("Source", "DetailType", "Detail", "Resources", "Time", "EventBusName", "TraceHeader")
MAX_ID = 256


def _invalid(message: str) -> ServiceError:
    return ServiceError(400, "InvalidRequest", message)


def from_put_events(entry: Any, loads=json.loads) -> dict:
    """A PutEvents entry (``Source``, ``DetailType``, ``Detail`` as JSON text...) in EventBridge's envelope.

    ``loads`` parses the Detail text (the HTTP layer's, which refuses what JSON cannot carry back)."""
    if not isinstance(entry, dict):
        raise _invalid("Each entry must be an object.")
    unknown = set(entry) - set(PUT_EVENTS_ENTRY)
    if unknown:
        raise _invalid(f"Unknown entry fields: {', '.join(sorted(unknown))}.")
    detail = entry.get("Detail")
    if not isinstance(detail, str):
        raise _invalid("'Detail' must be a JSON object as text.")
    try:
        detail = loads(detail)
        json.dumps(detail, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError):
        raise _invalid("'Detail' must be a JSON object as text.") from None
    for field in ("EventBusName", "TraceHeader"):
        if field in entry and not isinstance(entry[field], str):
            raise _invalid(f"'{field}' must be a string.")
    return {"source": entry.get("Source"), "detail-type": entry.get("DetailType"), "detail": detail,
            **({"resources": entry["Resources"]} if "Resources" in entry else {}),
            **({"time": entry["Time"]} if "Time" in entry else {})}


def normalize(entry: Any, now: float) -> dict:
    """An event in EventBridge's envelope, checked (400 otherwise), with its ``id`` and ``time``."""
    if not isinstance(entry, dict):
        raise _invalid("Each event must be an object.")
    unknown = set(entry) - set(ENVELOPE)
    if unknown:
        raise _invalid(f"Unknown event fields: {', '.join(sorted(unknown))}.")
    for field in ("source", "detail-type"):
        if not isinstance(entry.get(field), str) or not 1 <= len(entry[field]) <= MAX_ID:
            raise _invalid(f"'{field}' must be a string of 1 to {MAX_ID} characters.")
    if not isinstance(entry.get("detail", {}), dict):
        raise _invalid("'detail' must be an object.")
    for field in ("id", "time", "account", "region", "version"):
        if field in entry and (not isinstance(entry[field], str) or not 1 <= len(entry[field]) <= MAX_ID):
            raise _invalid(f"'{field}' must be a string of 1 to {MAX_ID} characters.")
    resources = entry.get("resources", [])
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise _invalid("'resources' must be a list of strings.")
    return {"version": "0", "account": "000000000000", "region": "us-east-1", "resources": [], **entry,
            "id": entry.get("id") or str(uuid.uuid4()), "detail": entry.get("detail", {}),
            "time": entry.get("time") or iso_timestamp(now).replace(".000Z", "Z")}


def correlation_of(event: dict) -> Any:
    """The value an event is correlated by: its ``detail.id`` (None: it resumes nothing)."""
    detail = event.get("detail")
    return detail.get("id") if isinstance(detail, dict) else None


def answer_of(event: dict, shape: str) -> dict:
    """What a waiting task gets: the detail (or the whole event) with ``eventName``."""
    base = event if shape == "event" else event.get("detail")
    return {**(base if isinstance(base, dict) else {"detail": base}), "eventName": event["detail-type"]}


def waits_for(payload: Any, context: TaskContext) -> dict:
    """What a ``module:event`` Task waits for, from its payload (its Parameters or Arguments).

    ``detailTypes`` are the ``detail-type`` values it names (None: any its pattern takes); ``pattern``
    is all it takes, DetailType and Source included."""
    given = payload if isinstance(payload, dict) else {}
    if "CorrelationKey" in given:
        key = given["CorrelationKey"]
    else:
        detail = (context.execution.get("Input") or {}).get("detail") if isinstance(
            context.execution.get("Input"), dict) else None
        key = detail.get("id") if isinstance(detail, dict) else None
    if key is None or isinstance(key, (dict, list)):
        raise TaskFailed("Events.InvalidCorrelationKey",
                         "The task's CorrelationKey (default $$.Execution.Input.detail.id) must be a string "
                         "or a number.")
    pattern: dict = {}
    named: dict[str, list[str]] = {}
    for field, name in (("DetailType", "detail-type"), ("Source", "source")):
        if field in given:
            values = given[field] if isinstance(given[field], list) else [given[field]]
            if not values or not all(isinstance(v, str) for v in values):
                raise TaskFailed("Events.InvalidPattern", f"{field} must be a string or a list of strings.")
            pattern[name] = named[field] = values
    if "Pattern" in given:
        if not isinstance(given["Pattern"], dict):
            raise TaskFailed("Events.InvalidPattern", "Pattern must be an event pattern (an object).")
        pattern = {**given["Pattern"], **pattern}
    if pattern:
        try:
            patterns.check(pattern, "Pattern")
        except patterns.InvalidPattern as invalid:
            raise TaskFailed("Events.InvalidPattern", str(invalid)) from None
    shape = given.get("Answer", "detail")
    if shape not in ("detail", "event"):
        raise TaskFailed("Events.InvalidPattern", "Answer must be 'detail' or 'event'.")
    return {"correlationKey": key, "detailTypes": named.get("DetailType"), "pattern": pattern or None,
            "answer": shape}


def _expired(entry: str, now: float) -> bool:
    """A buffered entry (``<expiresAt>|<event JSON>``) whose time is over."""
    return float(entry.partition("|")[0]) <= now


def execution_name(machine: str, event_id: str) -> str:
    """The name of the execution an event starts: the same for the same event and state machine."""
    return "event-" + hashlib.sha256(f"{machine}\0{event_id}".encode()).hexdigest()[:40]


class EventWaits:
    """Resolves ``module:event`` for one execution: a task-token call (made after the commit)."""

    def __init__(self, events: "Events", execution_id: str):
        self.events, self.execution_id = events, execution_id

    def resolve(self, resource: str):
        if resource != RESOURCE:
            return None
        events, execution_id = self.events, self.execution_id

        def register(payload: Any, context: TaskContext) -> None:
            events.open_wait(execution_id, context.point, waits_for(payload, context))

        register.waits_for_token = True  # made after the commit that stores the wait (see ``calls``)
        register.suspension = lambda payload, context: Suspend(KIND, {"waitsFor": waits_for(payload, context)})
        return register


class Events:
    """Publish events; open the waits of ``module:event`` tasks."""

    def __init__(self, runs, executions, redemptions):
        self.runs, self.executions, self.redemptions = runs, executions, redemptions
        self.store = EventStore(runs.store.redis)
        self.clock = runs.clock

    @property
    def buffer_seconds(self) -> int:
        return self.runs.settings.event_buffer_seconds

    # -- publishing -------------------------------------------------------------

    def publish(self, entries: list) -> list[dict]:
        """Deliver each event in turn; per event, what it did (or its error, the others go on)."""
        now = self.clock.now()
        events = [normalize(entry, now) for entry in entries]  # all checked before any is delivered
        results = []
        for event in events:
            try:
                results.append(self.deliver(event))
            except ServiceError as error:
                results.append({"eventId": event["id"], "error": error.code, "message": error.message})
        return results

    def deliver(self, event: dict) -> dict:
        started = self._start(event)
        result: dict[str, Any] = {"eventId": event["id"], "started": started, "resumed": [], "buffered": False}
        value = correlation_of(event)
        if value is None or isinstance(value, (dict, list)):
            return result
        outcome, did = self._offer(event, value, may_buffer=not started,
                                   starting={execution["executionId"] for execution in started})
        if outcome == "duplicate":
            result["duplicate"] = True
        result["buffered"] = did == "buffered"
        for wait in did.removeprefix("resumed:").split(",") if did.startswith("resumed:") else []:
            execution_id, _, point = wait.partition("|")
            given = self._give(execution_id, point, event)  # again for a duplicate: its sender may have
            if outcome == "duplicate":                       # died before the first delivery was made
                given = {"executionId": execution_id, "point": point}
            if given is not None:
                result["resumed"].append(given)
        return result

    def _start(self, event: dict) -> list[dict]:
        started = []
        for machine, pattern in start_rules():
            if not patterns.matches(pattern, event):
                continue
            text = catalog.load_text(machine)
            if text is None:
                continue
            try:
                document = self.executions.start(text, event, state_machine=machine, trusted=True,
                                                 name=execution_name(machine, event["id"]))
            except ServiceError as error:
                # The name is this event's (and state machine's): its execution, though the event came
                # again with another time or detail.
                if error.code != "ExecutionAlreadyExists":
                    raise
                document = {**self.runs.document(self.runs.reload(error.extra["executionId"])),
                            "alreadyExisted": True}
            started.append({"executionId": document["executionId"], "stateMachine": machine,
                            "status": document["status"],
                            **({"alreadyExisted": True} if document.get("alreadyExisted") else {})})
        return started

    def _offer(self, event: dict, value: Any, may_buffer: bool, starting: set[str]) -> tuple[str, str]:
        """Give ``event`` to the open waits that take it (not those of the executions it ``starting``: it
        is their input, not an answer), or buffer it."""
        for _ in range(MAX_ATTEMPTS):
            now = self.clock.now()
            version, waits, buffered = self.store.read(value)
            matching = [wait for wait, accepts in waits.items()
                        if wait.partition("|")[0] not in starting
                        and (accepts.get("pattern") is None or patterns.matches(accepts["pattern"], event))]
            taking = [wait for wait in matching if self._waiting(wait)]
            gone = [wait for wait in matching if wait not in taking]  # timed out, aborted: drop them
            entry = f"{now + self.buffer_seconds!r}|" + json.dumps(event, separators=(",", ":"))
            outcome, did = self.store.offer(value, event["id"], version, taking,
                                            entry if taking or may_buffer else "", self.buffer_seconds,
                                            MAX_BUFFERED, gone, [e for e in buffered if _expired(e, now)])
            if outcome == "full":
                raise ServiceError(429, "EventBufferFull",
                                   f"{MAX_BUFFERED} events of this correlation key already wait for a task to "
                                   "take them; send it again once one has.", retryAfterSeconds=60)
            if outcome != "retry":
                return outcome, did
        raise ServiceError(409, "EventBusy", "The event's correlation key is changing too often; try again.",
                           retryAfterSeconds=1)

    def _waiting(self, wait: str) -> bool:
        """The task of a registered wait still waits (it may have timed out, or its execution ended)."""
        execution_id, _, point = wait.partition("|")
        record = record_of(self.runs.points.read(execution_id, point))
        return record is not None and point in record.open

    def _give(self, execution_id: str, point: str, event: dict) -> dict | None:
        """Answer the wait ``point`` of ``execution_id`` with ``event``; None if it no longer waits there."""
        for _ in range(MAX_ATTEMPTS):
            read = self.runs.points.read(execution_id, point)
            record, wait = record_of(read), point_wait(read)
            if wait is None or point not in record.open:
                return None  # it no longer waits there (answered, ended)
            shape = ((wait.get("detail") or {}).get("waitsFor") or {}).get("answer", "detail")
            answer = {"result": answer_of(event, shape),
                      "event": {"eventId": event["id"], "source": event["source"],
                                "detailType": event["detail-type"]}}
            try:
                if self.redemptions.answer_point(record, point, answer, "redeemed"):
                    return {"executionId": execution_id, "point": point, "state": wait["state"]}
            except ServiceError:  # it ended meanwhile (aborted, timed out)
                return None
            time.sleep(0.01)  # someone holds the continuation (a timeout firing): real time
        raise ServiceError(409, "EventBusy", "The waiting task is busy; send the event again.",
                           retryAfterSeconds=1)

    # -- waits ------------------------------------------------------------------

    def open_wait(self, execution_id: str, point: str, waits: dict) -> None:
        """Register a wait, or give it the first buffered event it takes (in arrival order)."""
        value = waits["correlationKey"]
        member = f"{execution_id}|{point}"
        accepts = {"pattern": waits["pattern"]}
        record = record_of(self.runs.points.read(execution_id, point))
        if record is None or point not in record.open:
            return  # answered or ended meanwhile
        lifetime = int(record.open[point][1] - self.clock.now()) + 1  # as long as its continuation
        for _ in range(MAX_ATTEMPTS):
            now = self.clock.now()
            version, _, buffered = self.store.read(value)
            expired, taking = [], ""
            for entry in buffered:
                if _expired(entry, now):
                    expired.append(entry)
                    continue
                event = json.loads(entry.partition("|")[2])
                if waits["pattern"] is None or patterns.matches(waits["pattern"], event):
                    taking = entry
                    break
            outcome, entry = self.store.open(value, member, accepts, version, taking, expired,
                                             max(lifetime, self.buffer_seconds))
            if outcome == "retry":
                continue
            if outcome in ("took", "given"):
                self._give(execution_id, point, json.loads(entry.partition("|")[2]))
            return
        raise ServiceError(409, "EventBusy", "The wait's correlation key is changing too often.")
