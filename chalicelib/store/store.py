"""Executions and continuations in Redis.

Key layout (``t`` is the execution's 4-character shard tag, shared by its
continuation IDs; the braces make it a Redis Cluster hash tag, so every key of
one execution lives in one slot and each multi-key change is one Lua script)::

    asl:d:<sha256>            string: definition text, stored once per distinct definition
    asl:{t}:x:<executionId>   string: "<version>|" then the record, compressed (see ``pack_record``)
    asl:{t}:h:<executionId>   list: older history events, compressed chunks (only for long histories)
    asl:{t}:c:<hash(id)>      hash: one continuation: exec, point, expiresAt, status
                              (+ lease, claim while claimed; + about, answer, answeredAt and the
                              answer's digest once answered; + about, reason once closed)
    asl:{t}:o:<executionId>   hash: the execution's pending calls (its outbox): task-token calls its last
                              commits stored and nobody has made yet; field = the token's nonce, value
                              "<since>|<call JSON>" (see ``take_call``)
    asl:{t}:f:<executionId>   hash: the open branches of its root Parallel or Map, stored apart (below)
    asl:{t}:e:<executionId>   list: compressed chunks of history events those branches' commits added
    asl:{t}:w:<executionId>   sorted set: the states those branches' open points wait at, scored by how many
    asl:{t}:k:<executionId>   hash: the marks of those branches' commits: history events without an ID
                              (a task's latest heartbeat, an activity task's start), one a field (below)
    asl:timers                sorted set: due timers, member "<kind>|<executionId>|<point>", score = due time
    asl:{ix}:...              the execution index (``GET /executions``), in its own slot; see ``page``
                              and ``scripts/index.lua``

An execution is one string (see ``records.py``). The Lua scripts in
``scripts/`` only read the version in front; the service reads and writes the
rest. When the record holds more than ``2 * INLINE_EVENTS`` events,
all but the latest ``INLINE_EVENTS`` move to the history list in one chunk, so
a commit costs what it adds, not what the execution did before.

**Branches stored apart.** While an execution waits with its root frame in a Parallel or Map
(``chalicelib/service/fanout.py`` decides when), each open branch or iteration is a field of
``asl:{t}:f:``, so answering a point in one of them reads and writes that branch only. A branch
stored apart is a *unit*, named by its *path* of indices (``unit_path``): "3" is the root's branch 3.
A unit whose own frame waits in a Parallel or Map for several branches is split further the same
way, at any depth: "3.17" is iteration 17 of the Map that branch 3 is at, "3.17.0" branch 0 of a
Parallel inside that iteration:

    b<path>      "<version>|" then deflate of {"f": the branch's frame, "o": its open points}; the
                 frame of a unit split further holds ``{"apart": true}`` in its units' places and no
                 open points (they are all in its units)
    r<path>      deflate of the output of a branch that ended since the split (its field b is gone)
    p<point>     the path of the unit an open point is in (``claim`` and ``read_point`` look the point
                 up here); a point that waits for a timer (a Wait, a Retry's back-off) too, once
    pt           is there: then a point that is not here waits no more
    n<parent>    how many units of a group are still open (``group_counter``: ``n`` for the root's
                 group, ``n3`` for the group of unit 3): a unit that ends takes one off, unless it is
                 the last (then the whole execution is run on and committed: that group's join) or it
                 starts the next iteration of its Map in its place
    a<path>      JSON, for a unit split further: what the runs of the units inside it need of it, its
                 state (``at``), variables (``vars``), ``more`` (a Map with iterations not started
                 yet) and ``tolerated`` (its Map's tolerated failures); stored once, and a claim reads
                 the ``a`` of each unit its point is inside
    q<parent>    a Map's next iteration to start (the engine's ``next``; ``q`` for the root's group), when
                 its units' commits start them: an iteration that ends (or fails, tolerated) starts that
                 one in its place and moves ``q`` on, in the same commit (which checks ``q`` is as it ran)
    i<path>      an iteration not started yet: deflate of its input after the ItemSelector, evaluated at
                 the split, or "" where the selector failed (the whole execution is run on there, and fails
                 as it would); the commit that starts it removes it
    fl<parent>   a Map's tolerated failures (the engine's ``failed``): a commit of an iteration that failed
                 adds one, and stores its ``{Error, Cause}`` as ``r<path>``, while it stays within the
                 tolerance (``tolerated`` of ``m`` or of the group's ``a``; beyond it the whole execution
                 runs on and the Map fails)
    x<path>      an iteration that failed since the split: its place in the order of its group's failures
                 (the engine's ``failedIndexes``, which a redrive starts again)
    v            the version of the branches, raised by every commit of one; a branch's version is
                 never above it, and a commit of the whole writes every branch at ``v`` + 1
    ev, sq, tr   the snapshot's ``events``, ``seq`` and ``transitions`` counters (the record's own are
                 stale while the branches are apart); a claim reserves a block of event and point IDs
                 for its run (``EVENT_BLOCK``, ``POINT_BLOCK``), its commit gives back what it did not
                 use if nobody reserved after it, so IDs stay unique and have gaps only when branches
                 ran at the same moment
    m            JSON: what a branch's run needs besides its frame: ``root`` (the root frame's state
                 and variables), ``context``, ``timeoutAt``, ``started``, ``version`` (the snapshot's),
                 ``definition``, ``machine``, ``more`` (a Map with iterations not started yet),
                 ``items`` (its item count, when ``q`` is kept), ``tolerated`` (its tolerated failures),
                 ``name`` (the execution's name and its key's text, to keep it as long as the records)

The record's snapshot then holds ``"split": true``, and ``{"apart": true}`` in the place of each
branch stored apart (in ``root.group.frames`` of a Parallel, ``root.group.active`` of a Map); its
``open`` holds no point of those branches. ``load`` reads the record, the hashes and the list in one
script; the service puts them back together (``fanout.assemble``), so a snapshot is always read
whole, in the layout ``chalicelib/asl/engine.py`` documents. Every commit of the whole execution
checks the branches' ``v``, ``ev`` and ``sq`` as it read them, removes the four keys (``e``'s events
and ``k``'s marks are in the record from then on), and writes ``f`` and ``w`` again when the execution
still waits for enough branches. Records stored before branches were stored apart have none of these
keys and are read, resumed and committed as they always were; those stored before units were split
below the root's branches (each root branch whole in its ``b``) too, until a commit of the whole
stores them the new way.

What touches one point reads only its unit: ``read_point`` finds the unit from the point (or from its
continuation) in one script, and a change without a claim (``commit_branch`` of a
:class:`BranchCommit` without ``claim``: a heartbeat, an activity task handed out) writes only it,
guarded by its version. A mark in ``k`` is named ``<event type>|<point>`` (so a task's next heartbeat
replaces its last, as the record keeps one) and holds ``<ev when written>|<order>|<event JSON>``: it
is shown after the event of that ID (and the marks written before it), where a commit of the whole
would have added it; a heartbeat mark hides the record's own older heartbeat of that point.

It is long because the keys of an execution, the scripts that change them and the formats they
hold are one contract: each commit writes what ``load`` and ``claim`` read back.

Redis only ever sees a hash of a continuation ID. The record's ``open`` maps
each open suspension point to ``[nonce, expiresAt]``; the ID is derived from
the nonce with the service's secret (see ``chalicelib/service/ids.py``), so a copy of
the Redis data cannot be used to redeem anything.

Round trips: a write (start, resume, checkpoint, a branch's commit) is one pipeline: keep the
definition stored, add due timers, run the commit script. Claiming a
continuation is one script call that also returns the execution, or the unit its point is in. The timer
set is written before the commit, in another slot: a timer whose execution
did not commit finds nothing to do when it fires.
"""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis
from redis.cluster import RedisCluster

from . import pipelines
from .machines import Machines
from .records import (INLINE_EVENTS, ExecutionRecord, StoredBranches, compact, deflate_text, inflate, kept_history,
                      pack_record, unpack_record)

PREFIX = "asl"
TIMERS_KEY = f"{PREFIX}:timers"
INDEX_PREFIX = f"{PREFIX}:{{ix}}:"
#: The statuses the index lists executions under (as the service reports them).
STATUSES = ("SUCCEEDED", "FAILED", "SUSPENDED", "RUNNING", "TIMED_OUT", "ABORTED")
SCRIPTS = Path(__file__).with_name("scripts")


def _script(name: str) -> str:
    """The text of ``scripts/<name>.lua``, read once when the module is imported."""
    return (SCRIPTS / f"{name}.lua").read_text(encoding="utf-8")


(_CLAIM, _RELEASE, _COMMIT, _KEEP, _TAKE, _INDEX, _INDEX_PUT, _PAGE, _SWEEP, _SWAP, _CONTINUATIONS, _LOAD, _BRANCH,
 _UNIT, _POINT, _WAITING) = (
    _script(n) for n in ("claim", "release", "commit", "keep", "take", "index", "index_put", "page", "sweep",
                         "swap", "continuations", "load", "branch", "unit", "point", "waiting"))
#: IDs a claim of a branch reserves for its run (history events, suspension points); the run stops
#: for its budget before it uses them up, and gives back what it did not use (see ``scripts/branch.lua``).
EVENT_BLOCK = 4096
POINT_BLOCK = 256


@dataclass
class BranchClaim:
    """A claimed point in a branch stored apart: that branch, and what its run needs besides it."""

    path: str  # the unit's path of indices: "3" for the root's branch 3 (see ``unit_path``)
    version: int
    frame: dict
    open: dict  # the branch's open points: point -> [nonce, expiresAt]
    meta: dict  # see ``split_fields``
    left: int  # units still open in its group, this one included
    ancestors: list[dict]  # the units it is inside (``a<path>``), outermost first: [] for a root branch
    events: tuple[int, int]  # the event IDs reserved for the run: from, to (exclusive)
    points: tuple[int, int]  # the point IDs reserved for the run
    transitions: int
    next: int | None = None  # the next iteration its group's Map starts (``q``), when its commits start them
    next_input: bytes | None = None  # its ``i`` field: None when there is none left, b"" when its selector failed


@dataclass
class Claim:
    continuation_key: str
    token: str
    point: str
    execution: ExecutionRecord | None  # None for a point in a branch stored apart: see ``branch``
    execution_id: str = ""
    branch: BranchClaim | None = None


@dataclass
class PointRead:
    """One point of an execution as ``read_point`` reads it: the branch stored apart it is in, or else
    the whole record."""

    execution_id: str
    point: str
    fields: dict | None  # the continuation's fields, when read by its ID
    branch: BranchClaim | None = None  # the branch it is in (its execution is SUSPENDED)
    record: ExecutionRecord | None = None  # else the record as ``load`` reads it (None: gone, or ``apart``)
    apart: bool = False  # its branches are stored apart and it is in none of them: it waits no more


class ClaimRefused(Exception):
    """A continuation could not be claimed; ``reason`` says why."""

    def __init__(self, reason: str, execution_id: str | None, detail: str = "", digest: str = ""):
        super().__init__(reason)
        self.reason = reason  # missing | redeemed | closed | expired | busy
        self.execution_id = execution_id
        self.detail = detail  # redeemed: when (epoch seconds); closed: why; busy: when the lease ends
        self.digest = digest  # redeemed: the digest of the answer it was redeemed with


class CommitConflict(Exception):
    """Another writer changed the execution first (``reason``: conflict, lost, exists, gone; for a branch's
    commit also last, tolerance and moved, see ``Store.commit_branch``)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class NextMoved(CommitConflict):
    """A branch's commit that starts the Map's next iteration found that another commit started it: the
    next one to start now, and its ``i`` field (as ``BranchClaim.next`` and ``next_input``)."""

    def __init__(self, next_index: int, next_input: bytes | None):
        super().__init__("moved")
        self.next_index = next_index
        self.next_input = next_input


@dataclass
class NewContinuation:
    key_hash: str
    fields: dict  # exec, point, expiresAt, status
    ttl: int


@dataclass
class Commit:
    """One atomic change to an execution."""

    record: ExecutionRecord
    ttl: int
    events: list[dict]
    create: bool = False
    claim: Claim | None = None
    answer: str = ""
    digest: str = ""  # of the answer the claimed continuation is redeemed with (compared on retries)
    about: dict[str, dict] | None = None  # point -> what it asked (state, branch, kind, parameters)
    created: list[NewContinuation] | None = None
    closed: list[tuple[str, str, str]] | None = None  # (continuation key hash, reason, point)
    now: float = 0.0
    outcome: str = "redeemed"  # what the claimed continuation becomes: redeemed, or a close reason
    timers: list[tuple[str, float]] | None = None  # (member, due) to add to the timer set
    definition: tuple[str, str] | None = None  # (hash, text) to keep stored at least as long
    calls: list[tuple[str, str]] | None = None  # pending calls to store: (field, call JSON)
    name: tuple[str, str] | None = None  # (name, holder): kept at least ``ttl``, before the commit script runs
    split: "SplitWrite | None" = None  # store the record's root Parallel or Map branch by branch


@dataclass
class SplitWrite:
    """A record stored with its root Parallel's or Map's open branches apart (see the module docstring)."""

    snapshot: dict  # the record's snapshot without the branches' frames
    open: dict  # its open points outside the branches (none: the root waits for its branches)
    meta: dict
    branches: dict[str, dict]  # unit path -> {"f": frame, "o": its open points}
    groups: dict[str, int]  # the path of the unit whose group it is ("" for the root's) -> units open in it
    ancestors: dict[str, dict]  # the path of a unit whose group is stored apart too -> what its units' runs need
    counters: tuple[int, int, int]  # events, points, transitions
    waiting: dict[str, int]  # state -> how many open points of the branches wait there
    timers: dict[str, list[str]] = field(default_factory=dict)  # unit path -> its points that wait for a timer
    #: A Map's iterations not started yet, when its units' commits start them: unit path -> (True, input
    #: after the ItemSelector) or (False, None) where the selector fails.
    unstarted: dict[str, tuple[bool, Any]] = field(default_factory=dict)
    next: dict[str, int] = field(default_factory=dict)  # group path -> the Map's next iteration to start
    failed: dict[str, int] = field(default_factory=dict)  # group path -> a Map's tolerated failures so far


@dataclass
class BranchCommit(Commit):
    """One atomic change to one branch stored apart (``branch``): after its run, with its point's ``claim``
    or without one (a heartbeat, a Wait's timer)."""

    branch: BranchClaim | None = None
    marks: list[dict] = field(default_factory=list)  # history events without an ID, kept in ``k`` (see above)
    frame: dict | None = None  # the branch now; None once it ended
    output: Any = None  # what it ended with
    opened: list[str] = field(default_factory=list)  # its points that opened
    left: list[str] = field(default_factory=list)  # its points that closed or were answered
    waiting: dict[str, int] = field(default_factory=dict)  # state -> change in open points there
    used: tuple[int, int, int] = (0, 0, 0)  # events and points counters after the run, transitions it took
    failed: bool = False  # it ended failed, in a Map that tolerates failures: counted as one
    started: "StartedIteration | None" = None  # the Map's next iteration, started in its place


@dataclass
class StartedIteration:
    """The Map's next iteration, started by the commit of one that ended (see ``BranchCommit``)."""

    index: int  # in its Map
    path: str  # its unit path
    frame: dict
    open: dict  # its open points: point -> [nonce, expiresAt]
    points: list[str]  # every point it waits at, a timer's too (indexed to it, as ``opened``)


def _listing(record: ExecutionRecord, now: float, ttl: int) -> dict:
    """What the index keeps of an execution: where it is listed and until when."""
    return {"p": INDEX_PREFIX, "id": record.id, "machine": record.document.get("stateMachine") or "",
            "status": record.status, "start": str(start_ms(record.document.get("startDate"), now)),
            "expires": repr(now + ttl)}


def start_ms(iso: str | None, now: float) -> int:
    """An ISO 8601 start date (``...Z``) in milliseconds since the epoch; ``now`` when there is none."""
    try:
        moment = datetime.datetime.fromisoformat((iso or "").replace("Z", "+00:00"))
        return round(moment.timestamp() * 1000)
    except ValueError:
        return round(now * 1000)


def split_fields(split: SplitWrite, guard: list[str] | None) -> list:
    """The fields of ``asl:{t}:f:`` for a split record, flat (name, value, ...); version above ``guard``'s."""
    version = str(int(guard[0]) + 1 if guard else 1)
    events, points, transitions = split.counters
    fields: list = ["v", version, "ev", str(events), "sq", str(points), "tr", str(transitions), "m", compact(split.meta),
                    "pt", "1"]
    for parent, count in split.groups.items():
        fields += [f"n{parent}", str(count)]
    for path, ancestor in split.ancestors.items():
        fields += [f"a{path}", compact(ancestor)]
    for path, branch in split.branches.items():
        fields += [f"b{path}", version.encode() + b"|" + deflate_text(compact(branch))]
        for point in [*branch["o"], *split.timers.get(path, ())]:
            fields += [f"p{point}", path]
    for parent, failed in split.failed.items():
        fields += [f"fl{parent}", str(failed)]
    for parent, next_index in split.next.items():
        fields += [f"q{parent}", str(next_index)]
    for path, (selected, value) in split.unstarted.items():
        fields += [f"i{path}", deflate_text(compact(value)) if selected else b""]
    return fields


def unit_path(parent: str, index: int) -> str:
    """The path of branch or iteration ``index`` of the group in unit ``parent`` ("" for the root's)."""
    return f"{parent}.{index}" if parent else str(index)


def group_counter(path: str) -> str:
    """The field counting the open units of the group unit ``path`` is in: ``n<its parent's path>``."""
    return "n" + group_of(path)


def group_of(path: str) -> str:
    """The path of the unit whose group unit ``path`` is in ("" for the root's group)."""
    return path.rpartition(".")[0]


def waiting_counts(flat: list) -> dict[str, int]:
    """Where an execution's points wait as ``ZRANGE ... WITHSCORES`` of ``asl:{t}:w:`` reads it (flat:
    state, count, ...): state -> how many."""
    return {_text(flat[i]): int(float(_text(flat[i + 1]))) for i in range(0, len(flat), 2)}


def read_marks(flat: list) -> list[tuple[int, int, dict]]:
    """The marks ``asl:{t}:k:`` holds (flat, as read): (events counter, order, event)."""
    marks = []
    for i in range(0, len(flat), 2):
        if _text(flat[i]) != "#":
            after, order, event = _text(flat[i + 1]).split("|", 2)
            marks.append((int(after), int(order), json.loads(event)))
    return marks


def read_split(flat: list, chunks: list, marks: list) -> tuple[StoredBranches, list[str]]:
    """What ``asl:{t}:f:``, ``asl:{t}:e:`` and ``asl:{t}:k:`` hold, as read (see ``load``), and the guard of a
    commit."""
    fields = {_text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}
    branches, results, failures, next_index, failed = {}, {}, {}, {}, {}
    for name, value in fields.items():
        if name[0] == "b":
            branches[name[1:]] = inflate(value.partition(b"|")[2])
        elif name[0] == "r":
            results[name[1:]] = inflate(value)
        elif name[0] == "x":
            failures[name[1:]] = int(_text(value))
        elif name[0] == "q":
            next_index[name[1:]] = int(_text(value))
        elif name[:2] == "fl":
            failed[name[2:]] = int(_text(value))
    counters = tuple(int(_text(fields[name])) for name in ("ev", "sq", "tr"))
    stored = StoredBranches(meta=json.loads(fields["m"]), counters=counters, branches=branches, results=results,
                            events=[event for chunk in chunks for event in inflate(chunk)], marks=read_marks(marks),
                            next=next_index, failed=failed, failures=failures)
    return stored, [_text(fields[name]) for name in ("v", "ev", "sq")]


def merged_events(own: list[dict], chunks: list, marks: list) -> list[dict]:
    """A record's own history events, those its branches' commits added (compressed chunks) and their
    marks (flat, as read)."""
    return in_event_order(own, [event for chunk in chunks for event in inflate(chunk)], read_marks(marks))


def in_event_order(own: list[dict], added: list[dict], marks: list[tuple[int, int, dict]] = ()) -> list[dict]:
    """Two lists of history events merged by event ID; an event without one (a heartbeat) stays
    right after the event before it in its list. ``marks`` (see ``read_marks``) go after the event
    their counter names and the marks before them; a heartbeat mark replaces the heartbeat of its
    point ``own`` holds (the record keeps a task's latest one)."""
    if not added and not marks:
        return own
    beating = {event.get("point") for _, _, event in marks if event.get("type") == "TaskHeartbeat"}
    if beating:
        own = [event for event in own if not (event.get("type") == "TaskHeartbeat" and event.get("point") in beating)]

    def keyed(events: list[dict], source: int):
        last = 0
        for position, event in enumerate(events):
            last = event.get("id", last)
            yield (last, "id" not in event, source, position), event

    marked = [((after, True, 2, order), event) for after, order, event in marks]
    return [event for _, event in sorted([*keyed(own, 0), *keyed(added, 1), *marked], key=lambda pair: pair[0])]


def _record_read(execution_id: str, stored: bytes | None, fields: list, chunks: list, marks: list
                 ) -> ExecutionRecord | None:
    """The record as ``load.lua`` reads it: with its branches stored apart (``split``), if any."""
    if not stored:
        return None
    record = unpack_record(execution_id, stored)
    if fields:
        record.split, record.split_guard = read_split(fields, chunks, marks)
    return record


def _branch_read(reply: list, reserved: bool) -> BranchClaim:
    """A branch as ``unit.lua`` reads it; ``reserved``: ID blocks were reserved for a run of it (else
    the blocks are empty, at the counters)."""
    version, _, body = reply[2].partition(b"|")
    stored = inflate(body)
    events, points = int(reply[4]), int(reply[5])
    blocks = (EVENT_BLOCK, POINT_BLOCK) if reserved else (0, 0)
    return BranchClaim(
        path=_text(reply[0]), version=int(version), frame=stored["f"], open=stored["o"], meta=json.loads(reply[1]),
        left=int(reply[3]), events=(events - blocks[0], events), points=(points - blocks[1], points),
        transitions=int(reply[6]), next=int(reply[7]) if reply[7] else None,
        next_input=reply[8] if reply[7] and reply[8] is not None else None,
        ancestors=[json.loads(value) for value in reply[9:]])


def _evalsha(pipe, script, keys: list, args: list) -> None:
    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


def tagged_key(kind: str, ident: str) -> str:
    """``asl:{<first 4 characters of ident>}:<kind>:<ident>``: the keys of one execution (or one map
    run) share the hash tag of its ID's first characters, so they sit on one Redis Cluster slot."""
    return f"{PREFIX}:{{{ident[:4]}}}:{kind}:{ident}"


class Store:
    def __init__(self, redis: Redis, history_limit: int = 1000):
        self.redis = redis
        self.history_limit = history_limit
        self._claim = redis.register_script(_UNIT + _CLAIM)
        self._release = redis.register_script(_RELEASE)
        self._commit = redis.register_script(_INDEX + _CONTINUATIONS + _COMMIT)
        self._branch = redis.register_script(_INDEX + _CONTINUATIONS + _BRANCH)
        self._load = redis.register_script(_LOAD)
        self._point = redis.register_script(_UNIT + _POINT)
        self._waiting = redis.register_script(_WAITING)
        self._keep = redis.register_script(_KEEP)
        self._take = redis.register_script(_TAKE)
        self._index = redis.register_script(_INDEX + _INDEX_PUT)
        self._page = redis.register_script(_INDEX + _PAGE)
        self._sweep = redis.register_script(_INDEX + _SWEEP)
        #: On a Cluster the index has its own slot, so it is changed by a script of its own right after
        #: each commit; on a single server the commit script changes it in the same step.
        self.cluster = isinstance(redis, RedisCluster)
        self._swap = redis.register_script(_SWAP)
        self._known_definitions: set[str] = set()
        self.machines = Machines(redis)  # the registry of state machines (``machines``)

    # -- keys -------------------------------------------------------------------

    @staticmethod
    def execution_key(execution_id: str) -> str:
        return tagged_key("x", execution_id)

    @staticmethod
    def history_key(execution_id: str) -> str:
        return tagged_key("h", execution_id)

    @staticmethod
    def continuation_key(tag: str, key_hash: str) -> str:
        return f"{PREFIX}:{{{tag}}}:c:{key_hash}"

    @staticmethod
    def split_key(execution_id: str) -> str:
        return tagged_key("f", execution_id)

    @staticmethod
    def split_history_key(execution_id: str) -> str:
        return tagged_key("e", execution_id)

    @staticmethod
    def split_waiting_key(execution_id: str) -> str:
        return tagged_key("w", execution_id)

    @staticmethod
    def split_marks_key(execution_id: str) -> str:
        return tagged_key("k", execution_id)

    @staticmethod
    def calls_key(execution_id: str) -> str:
        return tagged_key("o", execution_id)

    @staticmethod
    def definition_key(definition_hash: str) -> str:
        return f"{PREFIX}:d:{definition_hash}"

    @staticmethod
    def name_key(name: str) -> str:
        return f"{PREFIX}:n:{name}"

    # -- execution names --------------------------------------------------------

    def reserve_name(self, name: str, owner: str, ttl: int) -> str | None:
        """Reserve ``name`` for ``owner`` (SET NX): None when it was free, else who holds it."""
        key = self.name_key(name)
        if self.redis.set(key, owner, nx=True, ex=max(1, ttl)):
            return None
        held = _text(self.redis.get(key))
        return held if held is not None else self.reserve_name(name, owner, ttl)

    def name_owner(self, name: str) -> str | None:
        return _text(self.redis.get(self.name_key(name)))

    def replace_name(self, name: str, held: str, owner: str, ttl: int) -> bool:
        """Give ``name`` to ``owner`` if it is still ``held`` as read (a start that died took it)."""
        return bool(self._swap(keys=[self.name_key(name)], args=[held, owner, max(1, ttl)]))

    # -- definitions ------------------------------------------------------------

    def get_definition(self, definition_hash: str) -> str | None:
        """The definition's text; once read, this process's commits keep it without sending it again."""
        text = _text(self.redis.get(self.definition_key(definition_hash)))
        if text is not None:
            self._known_definitions.add(definition_hash)
        return text

    # -- executions -------------------------------------------------------------

    def load(self, execution_id: str) -> ExecutionRecord | None:
        """The record, with its branches stored apart (``split``) read in the same step."""
        keys = [self.execution_key(execution_id), self.split_key(execution_id), self.split_history_key(execution_id),
                self.split_marks_key(execution_id)]
        return _record_read(execution_id, *self._load(keys=keys))

    def waiting(self, execution_id: str, shown: int = 100) -> dict[str, int] | None:
        """Where the points of an execution stored branch by branch wait (state -> how many, at most
        ``shown`` states), without reading its record or branches; None when it is not stored so."""
        flat = self._waiting(keys=[self.split_key(execution_id), self.split_waiting_key(execution_id)], args=[shown])
        if flat is None:
            return None
        return waiting_counts(flat)

    def read_point(self, execution_id: str, point: str, reserve: bool = False) -> PointRead:
        """One point of an execution, in one script: the branch stored apart it is in, or else the whole
        record (as ``load``). ``reserve``: IDs for a run of that branch, as ``claim`` reserves them."""
        blocks = (EVENT_BLOCK, POINT_BLOCK) if reserve else (0, 0)
        return self._read_point(self.execution_key(execution_id), execution_id[:4], execution_id, point, blocks)

    def read_continuation(self, tag: str, key_hash: str) -> PointRead | None:
        """A continuation's fields and its point, read as ``read_point`` reads it; None when it is missing."""
        read = self._read_point(self.continuation_key(tag, key_hash), tag, "", "", (0, 0))
        return None if read.fields is None else read

    def _read_point(self, key: str, tag: str, execution_id: str, point: str, blocks: tuple[int, int]) -> PointRead:
        reply = self._point(keys=[key], args=[f"{PREFIX}:{{{tag}}}:", execution_id, point, *blocks])
        flat, how = reply[0], _text(reply[3])
        fields = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)} if flat else None
        if how == "missing":
            return PointRead("", "", None)
        read = PointRead(_text(reply[1]), _text(reply[2]), fields if not execution_id else None)
        if how == "branch":
            read.branch = _branch_read(reply[4:], reserved=bool(blocks[0]))
        elif how == "apart":
            read.apart = True
        else:
            read.record = _record_read(read.execution_id, *reply[4:])
        return read

    def history(self, execution_id: str) -> list[dict]:
        """``ExecutionStarted`` and the latest events, ``history_limit`` in all, oldest first: the
        record's first event when it is ``ExecutionStarted`` (kept there), the list's chunks, then the
        rest of the record's own."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.lrange(self.history_key(execution_id), 0, -1)
        pipe.get(self.execution_key(execution_id))
        pipe.lrange(self.split_history_key(execution_id), 0, -1)
        pipe.hgetall(self.split_marks_key(execution_id))
        chunks, stored, branch_chunks, marks = pipe.execute()
        if stored is None:
            return []
        events = [event for chunk in chunks for event in inflate(chunk)]
        flat_marks = [x for name, value in marks.items() for x in (name, value)]
        own = merged_events(unpack_record(execution_id, stored).history, branch_chunks, flat_marks)
        pinned = own[:1] if own and own[0].get("type") == "ExecutionStarted" else []
        return sum(kept_history(pinned + events + own[len(pinned):], self.history_limit), [])

    def commit(self, change: Commit) -> int:
        """Apply a change atomically; return the new version or raise CommitConflict.

        One round trip: the definition touch and the timers go in the same pipeline.
        """
        record = change.record
        tag = record.id[:4]
        pinned, history = kept_history(record.history + change.events, self.history_limit)
        spill = None
        if len(history) > 2 * INLINE_EVENTS:
            spill, history = history[:-INLINE_EVENTS], history[-INLINE_EVENTS:]
        history = pinned + history  # ExecutionStarted stays in the record, ahead of everything
        keys = [self.execution_key(record.id), self.history_key(record.id), self.split_key(record.id),
                self.split_history_key(record.id), self.split_waiting_key(record.id), self.split_marks_key(record.id)]
        if change.claim is not None:
            keys.append(change.claim.continuation_key)
        created = change.created or []
        closed = change.closed or []
        about = change.about or {}
        keys += [self.continuation_key(tag, c.key_hash) for c in created]
        keys += [self.continuation_key(tag, key_hash) for key_hash, _, _ in closed]
        calls = change.calls or []
        if calls:
            keys.append(self.calls_key(record.id))
        ttl = max(1, int(change.ttl))
        head = {
            "create": change.create,
            "ver": record.version,
            "claim": change.claim.token if change.claim else False,
            "outcome": change.outcome,
            "ttl": ttl,
            "created": len(created),
            "closed": len(closed),
            "now": str(change.now),
            "answer": change.answer,
            "digest": change.digest,
            "about": compact(about.get(change.claim.point)) if change.claim else "",
            "spill": spill is not None,
            "calls": len(calls),
            "chunks": -(-self.history_limit // INLINE_EVENTS) + 1,  # chunks hold >= INLINE_EVENTS events
            "guard": record.split_guard or False,
        }
        split = change.split
        stored_apart = [] if split is None else split_fields(split, record.split_guard)
        head["split"] = len(stored_apart) // 2
        waiting = [] if split is None else [x for state, count in split.waiting.items() for x in (state, str(count))]
        head["waiting"] = len(waiting) // 2
        listed = _listing(record, change.now, ttl)
        if not self.cluster:
            head["ix"] = listed
        body = (pack_record(record, history) if split is None
                else pack_record(record, history, split.snapshot, split.open))
        args: list[Any] = [json.dumps(head), body]
        if spill is not None:
            args.append(deflate_text(compact(spill)))
        args += [compact({**c.fields, "ttl": max(1, int(c.ttl))}) for c in created]
        for _, reason, point in closed:
            args += [reason, compact(about.get(point))]
        for name, call in calls:
            args += [name, f"{change.now!r}|{call}"]
        args += stored_apart + waiting
        reply = self._send(change, self._commit, keys, args, ttl)
        status = _text(reply[0])
        if status != "ok":
            raise CommitConflict(status)
        record.version = int(_text(reply[1]))
        record.history = history
        record.split = None
        record.split_guard = None if split is None else [stored_apart[1], *(str(n) for n in split.counters[:2])]
        if self.cluster:
            self._put_in_index(listed, change.now, ttl)
        return record.version

    def _send(self, change: Commit, script, keys: list[str], args: list, ttl: int) -> Any:
        """One pipeline: keep the definition and the name, add the timers, run the commit ``script``."""
        definition = change.definition

        def fill(pipe) -> None:
            if definition is not None:
                known = definition[0] in self._known_definitions
                _evalsha(pipe, self._keep, [self.definition_key(definition[0])],
                         [ttl, "" if known else definition[1]])
            if change.timers:
                self._fill_timers(pipe, change.timers, ttl)
            if change.name is not None:  # sent ahead of the commit: a stored execution's name outlives it
                _evalsha(pipe, self._keep, [self.name_key(change.name[0])], [ttl, change.name[1]])
            _evalsha(pipe, script, keys, args)

        replies = self._pipeline(fill)
        if definition is not None:
            if not replies[0]:  # it had expired from Redis: store it again
                self._keep(keys=[self.definition_key(definition[0])], args=[ttl, definition[1]])
            self._known_definitions.add(definition[0])
        return replies[-1]

    def commit_branch(self, change: BranchCommit, shown: int = 100) -> dict[str, int]:
        """Apply the change to one branch stored apart; where the execution's points wait now (state ->
        how many, for at most ``shown`` states), or raise CommitConflict: ``last``, the branch ended and is
        the last one open, so the join is for a commit of the whole execution; ``tolerance``, it failed
        and the Map's failures would exceed what it tolerates (the Map fails, in a commit of the whole);
        :class:`NextMoved` when the iteration it starts was started by another commit. One round trip, as
        ``commit``."""
        claim, execution_id, branch = change.claim, change.record.id, change.branch
        tag = execution_id[:4]
        created, closed, calls = change.created or [], change.closed or [], change.calls or []
        keys = [self.split_key(execution_id), self.split_history_key(execution_id), self.execution_key(execution_id),
                self.history_key(execution_id), self.split_waiting_key(execution_id),
                self.split_marks_key(execution_id), *([claim.continuation_key] if claim else [])]
        keys += [self.continuation_key(tag, c.key_hash) for c in created]
        keys += [self.continuation_key(tag, key_hash) for key_hash, _, _ in closed]
        if calls:
            keys.append(self.calls_key(execution_id))
        ttl = max(1, int(change.ttl))
        events, points, steps = change.used
        about = change.about or {}
        started = change.started
        head = {
            "path": branch.path, "counter": group_counter(branch.path), "ver": branch.version,
            "claim": claim.token if claim else False, "done": change.frame is None,
            "failed": change.failed, "group": group_of(branch.path),
            "tolerated": (branch.ancestors[-1] if branch.ancestors else branch.meta).get("tolerated"),
            "start": False if started is None else {"index": str(started.index), "path": started.path,
                                                    "after": str(started.index + 1), "opened": started.points},
            "steps": steps, "events": [str(events), str(branch.events[1])],
            "points": [str(points), str(branch.points[1])],
            "opened": change.opened, "left": change.left,
            "waiting": [x for state, delta in change.waiting.items() if delta for x in (state, delta)],
            "chunks": self.history_limit, "shown": shown, "ttl": ttl, "now": str(change.now), "outcome": change.outcome,
            "answer": change.answer, "digest": change.digest,
            "about": compact(about.get(claim.point)) if claim else "",
            "marks": [x for event in change.marks for x in (f"{event['type']}|{event['point']}", compact(event))],
            "created": len(created), "closed": len(closed), "calls": len(calls),
        }
        machine = branch.meta.get("machine") or ""
        if not self.cluster:
            head["ix"] = {"p": INDEX_PREFIX, "machine": machine, "expires": repr(change.now + ttl)}
        body = ("" if change.frame is None and started is None else
                deflate_text(compact({"f": change.frame, "o": change.record.open} if started is None else
                                     {"f": started.frame, "o": started.open})))
        args: list[Any] = [json.dumps(head), body, deflate_text(compact(change.output)),
                           deflate_text(compact(change.events)) if change.events else ""]
        args += [compact({**c.fields, "ttl": max(1, int(c.ttl))}) for c in created]
        for _, reason, point in closed:
            args += [reason, compact(about.get(point))]
        for name, call in calls:
            args += [name, f"{change.now!r}|{call}"]
        reply = self._send(change, self._branch, keys, args, ttl)
        status = _text(reply[0])
        if status == "moved":
            raise NextMoved(int(_text(reply[1])), reply[2])
        if status != "ok":
            raise CommitConflict(status)
        if self.cluster:
            self._index(keys=self._index_keys(), args=[INDEX_PREFIX, "extend", machine, repr(change.now + ttl), ttl])
        flat = json.loads(_text(reply[1])) or []  # Lua encodes an empty list as {}
        return waiting_counts(flat)

    def _put_in_index(self, listed: dict, now: float, ttl: int) -> None:
        args = [INDEX_PREFIX, "put", listed["id"], listed["machine"], listed["status"], listed["start"],
                listed["expires"], repr(now), ttl]
        self._index(keys=self._index_keys(), args=args)

    def _pipeline(self, fill) -> list:
        """Run a pipeline built by ``fill`` (see ``pipelines``: Redis may have lost the scripts)."""
        return pipelines.run(self.redis, fill, (self._keep, self._commit, self._branch))

    # -- the execution index ---------------------------------------------------

    @staticmethod
    def _index_keys() -> list[str]:
        return [INDEX_PREFIX + "machines", INDEX_PREFIX + "exp"]

    def page(self, now: float, *, status: str | None = None, machine: str | None = None,
             after: tuple[int, str] | None = None, limit: int = 50
             ) -> tuple[list[ExecutionRecord], tuple[int, str] | None]:
        """A page of executions, newest first (start time, then ID), and the cursor of the next page.

        ``machine`` "" is the executions of inline definitions; None is every state machine.
        Two round trips whatever the index holds: the page script and one pipeline reading the
        page's records; a third when reading heals the index, all its changes in one script call: an
        entry whose execution is gone (its records expired) is dropped, one whose status changed is
        moved (on a Cluster the index is changed right after the commit, so a process that died in
        between leaves it behind); neither is listed under a status it no longer has.
        """
        cursor = ("", "") if after is None else (str(after[0]), after[1])
        flat = self._page(keys=self._index_keys(), args=[
            INDEX_PREFIX, repr(now), status or "*", "*" if machine is None else machine, *cursor, limit])
        entries = [(_text(flat[i]), int(float(_text(flat[i + 1]))), _text(flat[i + 2]), _text(flat[i + 3]))
                   for i in range(0, len(flat), 4)]
        more = len(entries) > limit
        entries = entries[:limit]
        pipe = self.redis.pipeline(transaction=False)
        for execution_id, *_ in entries:
            pipe.get(self.execution_key(execution_id))
        stored = pipe.execute() if entries else []
        records, seen, heal = [], set(), []
        for (execution_id, start, listed_machine, listed_status), value in zip(entries, stored):
            if value is None:
                heal += [execution_id, listed_machine, "", start]
                continue
            record = unpack_record(execution_id, value)
            if record.status != listed_status:
                heal += [execution_id, listed_machine, record.status, start]
                if status is not None:
                    continue
            if execution_id not in seen:
                seen.add(execution_id)
                records.append(record)
        self._heal(heal)
        last = (entries[-1][1], entries[-1][0]) if more else None
        return records, last

    def _heal(self, entries: list) -> None:
        """Change the index's ``entries`` (flat: executionId, machine, status or "" to drop it, start)."""
        if entries:
            self._index(keys=self._index_keys(), args=[INDEX_PREFIX, "heal", *entries])

    def sweep_index(self, now: float, count: int = 1000) -> int:
        """Drop the entries of the next slice of the index (about ``count``) whose records are gone;
        how many. At most three round trips: the slice, whether its records exist, the drop. Run by every tick, it
        passes over the whole index again and again, so entries nobody lists do not outlive their
        executions for long (a page drops those it reads)."""
        flat = self._sweep(keys=[INDEX_PREFIX + "sweep", *self._index_keys()], args=[INDEX_PREFIX, repr(now), count])
        entries = [(_text(flat[i]), _text(flat[i + 1])) for i in range(0, len(flat), 2)]
        if not entries:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for execution_id, _ in entries:
            pipe.exists(self.execution_key(execution_id))
        gone = [(execution_id, machine) for (execution_id, machine), exists in zip(entries, pipe.execute())
                if not exists]
        self._heal([x for execution_id, machine in gone for x in (execution_id, machine, "", "")])
        return len(gone)

    # -- pending calls (the outbox) ---------------------------------------------

    def pending_calls(self, execution_id: str) -> dict[str, float]:
        """The execution's pending calls: field -> since when (made, or last taken)."""
        values = self.redis.hgetall(self.calls_key(execution_id))
        return {_text(name): float(_text(value).partition("|")[0]) for name, value in values.items()}

    def take_call(self, execution_id: str, name: str, now: float, lease_seconds: float) -> str | None:
        """Take a pending call whose lease ended (stamping it ``now``); its JSON, or None."""
        call = self._take(keys=[self.calls_key(execution_id)], args=[name, now, lease_seconds])
        return _text(call) if call else None

    def remove_call(self, execution_id: str, name: str) -> None:
        """A pending call was made: remove it."""
        self.redis.hdel(self.calls_key(execution_id), name)

    # -- timers -----------------------------------------------------------------

    def due_timers(self, now: float, limit: int) -> list[tuple[str, float]]:
        return [(_text(m), due) for m, due in
                self.redis.zrangebyscore(TIMERS_KEY, "-inf", now, start=0, num=limit, withscores=True)]

    def add_timers(self, timers: list[tuple[str, float]], ttl: int) -> None:
        """Add timers; the set is kept at least ``ttl`` seconds (longer than any timer in it)."""
        if timers:
            self._pipeline(lambda pipe: self._fill_timers(pipe, timers, ttl))

    def _fill_timers(self, pipe, timers: list[tuple[str, float]], ttl: int) -> None:
        pipe.zadd(TIMERS_KEY, {member: due for member, due in timers})
        _evalsha(pipe, self._keep, [TIMERS_KEY], [max(1, int(ttl)), ""])

    def remove_timer(self, member: str) -> None:
        self.redis.zrem(TIMERS_KEY, member)

    # -- continuations ----------------------------------------------------------

    def claim(self, tag: str, key_hash: str, now: float, lease_seconds: float, token: str,
              force: bool = False) -> Claim:
        """Claim a continuation under a lease; ``force`` also claims an expired one (for timeouts)."""
        key = self.continuation_key(tag, key_hash)
        prefix = f"{PREFIX}:{{{tag}}}:"
        args = [now, now + lease_seconds, token, prefix, "force" if force else "", EVENT_BLOCK, POINT_BLOCK]
        reply = self._claim(keys=[key], args=args)
        status = _text(reply[0])
        if status not in ("ok", "branch"):
            detail = [_text(v) for v in reply] + ["", "", ""]
            raise ClaimRefused(detail[0], detail[1] or None, detail[2], detail[3])
        execution_id, point = _text(reply[1]), _text(reply[2])
        if status == "ok":
            return Claim(key, token, point, unpack_record(execution_id, reply[3]), execution_id)
        return Claim(key, token, point, None, execution_id, _branch_read(reply[3:], reserved=True))

    def release(self, claim: Claim) -> None:
        """Give a claim back unused, so the continuation can be answered at once."""
        self._release(keys=[claim.continuation_key], args=[claim.token])

    def continuation(self, tag: str, key_hash: str) -> dict | None:
        values = self.redis.hgetall(self.continuation_key(tag, key_hash))
        if not values:
            return None
        return {_text(k): _text(v) for k, v in values.items()}
