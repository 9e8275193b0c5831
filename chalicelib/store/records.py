"""The stored form of an execution: ``ExecutionRecord`` and its compressed body.

An execution is one string: its document, snapshot, open suspension points and
latest history events in one compressed body. Compressing them together (with
a preset dictionary of the words every record repeats) and paying for one key
instead of three is what keeps a suspended execution under 1 KiB of Redis
memory. ``tests/store/test_records.py`` keeps a golden record of each format readable.

Formats (the byte in front of the compressed body):

* ``1``: task tokens in the snapshot and history were replaced, wherever their text
  appeared, by unsealed markers ``{{TaskToken p1}}``;
* ``2``: the data holds sealed markers where ``$$.Task.Token`` put them and nothing
  is replaced (see ``chalicelib/service/tokens.py``); ``"k"`` is the last history event
  written in format 1, for an execution that began in it.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ExecutionRecord:
    """An execution as stored: document, snapshot while it can go on, open points, history, version."""

    id: str
    version: int
    status: str
    definition_hash: str
    document: dict
    snapshot: dict | None
    open: dict  # suspension point -> [nonce, expiresAt]
    history: list[dict] = field(default_factory=list)  # the latest events (see INLINE_EVENTS), oldest first
    format: int = 2  # the format it was read in (see RECORD_FORMAT)
    legacy_events: int = 0  # history events up to this id were written in format 1
    #: Once it ended unsuccessfully: what a redrive needs (the snapshot where it stopped, client tokens);
    #: see ``chalicelib/service/redrives.py``.
    redrive: dict | None = None
    split: "StoredBranches | None" = None  # its branches stored apart, as read (see ``Store.load``)
    #: What a commit of the whole execution checks is unchanged: the split branches' version and ID
    #: counters as read (None: there were none). Kept up to date by each commit.
    split_guard: list[str] | None = None


@dataclass
class StoredBranches:
    """The branches of a split execution as read: what ``asl:{t}:f:`` holds (see ``store``)."""

    meta: dict
    counters: tuple[int, int, int]  # events, points, transitions: the snapshot's own are stale
    branches: dict[str, dict]  # unit path -> {"f": frame, "o": its open points}
    results: dict[str, Any]  # unit path -> output of a branch that ended since the split
    events: list[dict]  # history events the branches' commits added, oldest commit first
    marks: list[tuple[int, int, dict]] = field(default_factory=list)  # their events without an ID (``read_marks``)
    #: group path -> a Map's next iteration to start, when its units' commits start them (``q``)
    next: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)  # group path -> a Map's tolerated failures (``fl``)
    failures: dict[str, int] = field(default_factory=dict)  # unit path -> its place in its group's failures


# The words every record repeats (JSON keys, event types, ARNs of the context object), most
# frequent last. Deflate refers back into it, so a record stores what is its own. Changing it
# makes stored records unreadable: add a new RECORD_FORMAT instead.
_DICTIONARY = "".join([
    '"ExecutionFailed","error":"States.","cause":"","ExecutionAborted","ExecutionTimedOut",',
    '"TaskFailed","StateFailed","StateRetryScheduled","TaskHeartbeat","TimerScheduled",',
    '"ParallelStateStarted","ParallelStateSucceeded","MapStateStarted","MapStateSucceeded",',
    '"ChoiceStateExited","PassStateExited","WaitStateExited","SucceedStateExited","FailStateExited",',
    '"ExecutionSucceeded","output":{"',
    '"stopDate":"2026-01-01T00:00:00.000Z","heartbeatAt":null,"due":null,"timeoutAt":null,',
    '"kind":"task","purpose":"task","detail":null,"group":{"frames":[],"active":{}},"vars":{},',
    '"answer":{"result":{}},"ExecutionResumed","point":"p1",',
    '"f":"0123456789abcdef","o":{"p1":["',
    '"s":{"version":1,"definition":"0123456789abcdef","status":"SUSPENDED","events":1,"seq":1,',
    '"started":1700000000.0,"timeoutAt":null,"context":{"Execution":{"Id":',
    '"arn:aws:states:local:000000000000:execution:',
    '","Input":{},"Name":"","RoleArn":"arn:aws:iam::000000000000:role/',
    '-role","StartTime":"2026-01-01T00:00:00.000Z","RedriveCount":0},',
    '"StateMachine":{"Id":"arn:aws:states:local:000000000000:stateMachine:',
    '","Name":""}},"root":{"at":"","input":{},"t":1700000000.0,"eid":1,',
    '"wait":{"id":"p1","kind":"suspend","purpose":"task","state":"","parameters":{},"merge":true}}},',
    '"h":[{"id":1,"type":"ExecutionStarted","timestamp":"2026-01-01T00:00:00.000Z","input":{}},',
    '{"id":2,"type":"StateEntered","timestamp":"2026-01-01T00:00:00.000Z","state":"","input":{}},',
    '{"id":3,"type":"TaskScheduled","timestamp":"2026-01-01T00:00:00.000Z","state":"",',
    '"resource":"module:","parameters":{}},',
    '{"id":4,"type":"TaskSucceeded","timestamp":"2026-01-01T00:00:00.000Z","state":"","resource":"module:"},',
    '{"id":5,"type":"TaskStateExited","timestamp":"2026-01-01T00:00:00.000Z","state":"","output":{}},',
    '{"id":6,"type":"ExecutionSuspended","timestamp":"2026-01-01T00:00:00.000Z","state":"","point":"p1",',
    '"kind":"suspend","parameters":{}}]}',
    '{"d":{"executionId":"","name":"","stateMachine":"","status":"SUSPENDED","input":{},',
    '"startDate":"2026-01-01T00:00:00.000Z"},',
]).encode()
RECORD_FORMAT = b"2"
READABLE_FORMATS = {b"1": 1, b"2": 2}
INLINE_EVENTS = 32  # history events a record keeps in itself after moving older ones to the list


def kept_history(events: list[dict], limit: int) -> tuple[list[dict], list[dict]]:
    """What a history of at most ``limit`` events keeps, as (pinned, latest): its ``ExecutionStarted``
    while that leads it, never evicted, and the latest events after it."""
    pinned = events[:1] if events and events[0].get("type") == "ExecutionStarted" else []
    rest, room = events[len(pinned):], limit - len(pinned)
    return pinned, (rest[max(0, len(rest) - room):] if room > 0 else [])


def pack_record(record: ExecutionRecord, history: list[dict], snapshot: Any = None, open: dict | None = None
                ) -> bytes:
    """The stored body of a record: a format byte, then raw deflate of compact JSON (with ``snapshot``
    and ``open`` in place of the record's own, when given: a split execution's)."""
    text = "".join([
        '{"d":', compact(record.document), ',"f":', compact(record.definition_hash),
        ',"o":', compact(record.open if open is None else open),
        ',"s":', compact(record.snapshot if snapshot is None else snapshot),
        ',"h":', compact(history), f',"k":{record.legacy_events}' if record.legacy_events else "",
        f',"r":{compact(record.redrive)}' if record.redrive is not None else "", "}",
    ])
    return RECORD_FORMAT + deflate_text(text)


def deflate_text(text: str) -> bytes:
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zdict=_DICTIONARY)
    return deflate.compress(text.encode()) + deflate.flush()


def inflate(data: bytes) -> Any:
    inflate = zlib.decompressobj(-15, zdict=_DICTIONARY)
    return json.loads(inflate.decompress(data) + inflate.flush())


def unpack_record(execution_id: str, stored: bytes) -> ExecutionRecord:
    """Read what ``pack_record`` wrote, behind the version the scripts keep in front."""
    version, _, body = stored.partition(b"|")
    if body[:1] not in READABLE_FORMATS:
        raise ValueError(f"execution {execution_id}: unknown record format {body[:1]!r}")
    data = inflate(body[1:])
    document = data["d"]
    return ExecutionRecord(
        id=execution_id, version=int(version), status=document.get("status", ""),
        definition_hash=data["f"], document=document, snapshot=data["s"], open=data["o"],
        history=data["h"], format=READABLE_FORMATS[body[:1]], legacy_events=data.get("k", 0),
        redrive=data.get("r"),
    )


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
