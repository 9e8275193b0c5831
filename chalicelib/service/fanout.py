"""An execution's fan-out stored branch by branch: answering one branch costs what that branch holds.

While an execution is SUSPENDED with its root frame in a Parallel or Map that waits for at least
``SPLIT_FROM`` open branches (or iterations), each of them is stored apart, in the fields of
``asl:{t}:f:<executionId>`` (see ``chalicelib/store/store.py``): :func:`split` says what a commit
of the whole execution stores so, and :func:`assemble` puts a record read with its branches back
together, so everything that reads an execution (``Runs.load``) sees one snapshot as before.

A redemption of a point in such a branch (``Store.claim`` answers it with that branch alone) runs
only that branch and commits only it (``branches.Branches``). When that branch is the last one
open and ends, the join (the Parallel's or Map's end, and whatever follows it) runs on the
whole execution, assembled, in one commit.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from ..asl.engine import frame_waits
from ..store import ExecutionRecord, SplitWrite
from ..store.store import in_event_order, unit_path

#: How many open branches (or iterations) the root's Parallel or Map needs to be stored apart.
SPLIT_FROM = 2
#: What the record's snapshot holds in place of a branch stored apart.
STORED_APART = {"apart": True}


def group_slots(group: dict) -> list[tuple[int, dict]]:
    """The open branches of a Parallel's or Map's group: (index, frame)."""
    if "frames" in group:
        return [(index, frame) for index, frame in enumerate(group["frames"]) if frame is not None]
    return [(int(key), frame) for key, frame in group["active"].items()]


def put_branch(group: dict, index: int, frame: dict | None) -> None:
    """Put a branch's frame in its place in the group (None: it ended and left its place)."""
    if "frames" in group:
        group["frames"][index] = frame
    elif frame is None:
        group["active"].pop(str(index), None)
    else:
        group["active"][str(index)] = frame


def branch_label(meta: dict, path: str) -> str:
    """The branch name of a unit stored apart (its path), as ``iter_waits`` names it."""
    return f"{meta['root']['at']}[{path}]"


_RESOURCE = re.compile(r'"Resource": "([^"]*)"')


def reads_execution_input(state) -> bool:
    """Whether the branches of a compiled Parallel or Map state may read the execution's input: they
    refer to the context object (``$$``, ``$states.context``) or call a resource other than
    ``module:suspend`` (a handler is given the context's ``Execution``). When they cannot, what a
    branch's run reads besides its frame leaves the input out: it is the size of the whole execution."""
    text = json.dumps([machine.spec for machine in state.children()])
    return ("$$" in text or "$states.context" in text
            or any(resource != "module:suspend" for resource in _RESOURCE.findall(text)))


def split(record: ExecutionRecord, name: tuple[str, str] | None = None, state=None) -> SplitWrite | None:
    """How to store ``record`` with its root's branches apart, or None when it is stored whole.

    ``state`` is the compiled Parallel or Map the root frame is at (see ``reads_execution_input``)."""
    snapshot = record.snapshot
    if snapshot is None or snapshot.get("status") != "SUSPENDED":
        return None
    root = snapshot["root"]
    group = root.get("group")
    if not group or "wait" in root:
        return None
    slots = group_slots(group)
    if len(slots) < SPLIT_FROM:
        return None
    branches: dict[str, dict] = {}
    waiting: Counter = Counter()
    inside: set[str] = set()
    for index, frame in slots:
        opened = {}
        for _, wait in frame_waits(frame, "", inline=False):
            inside.add(wait["id"])
            entry = record.open.get(wait["id"])
            if entry is not None:
                opened[wait["id"]] = entry
                waiting[wait["state"]] += 1
        branches[unit_path("", index)] = {"f": frame, "o": opened}
    stored_group = dict(group)
    if "frames" in group:
        stored_group["frames"] = [STORED_APART if frame is not None else None for frame in group["frames"]]
    else:
        stored_group["active"] = {key: STORED_APART for key in group["active"]}
    stored = dict(snapshot, root=dict(root, group=stored_group), split=True)
    context = snapshot["context"]
    if state is not None and not reads_execution_input(state):
        execution = {key: value for key, value in context["Execution"].items() if key != "Input"}
        context = {**context, "Execution": execution}
    meta = {
        "root": {"at": root["at"], **({"vars": root["vars"]} if "vars" in root else {})},
        "context": context, "timeoutAt": snapshot.get("timeoutAt"), "started": snapshot.get("started"),
        "version": snapshot.get("version"), "definition": record.definition_hash,
        "machine": record.document.get("stateMachine") or "",
        "more": "items" in group and group["next"] < len(group["items"]),  # a Map with iterations to start
        **({"name": list(name)} if name else {}),
    }
    return SplitWrite(
        snapshot=stored, open={point: entry for point, entry in record.open.items() if point not in inside},
        meta=meta, branches=branches, groups={"": len(branches)},
        counters=(snapshot["events"], snapshot["seq"], snapshot.get("transitions", 0)), waiting=dict(waiting))


def assemble(record: ExecutionRecord | None) -> ExecutionRecord | None:
    """A record read with branches stored apart, made whole: the snapshot with every branch (and the
    results of those that ended since) in its place, the counters, open points and history events
    they hold. Its ``split_guard`` stays: a commit of the whole checks that none changed since."""
    if record is None or record.split is None:
        return record
    parts, snapshot = record.split, record.snapshot
    snapshot.pop("split", None)
    snapshot["events"], snapshot["seq"], snapshot["transitions"] = parts.counters
    group = snapshot["root"]["group"]
    for path, branch in parts.branches.items():
        put_branch(group, int(path), branch["f"])
        record.open.update(branch["o"])
    for path, output in parts.results.items():
        group["results"][int(path)] = output
        put_branch(group, int(path), None)
    record.history = in_event_order(record.history, parts.events)
    record.split = None
    return record


def waiting_document(execution_id: str, waiting: dict[str, int], limit: int) -> dict[str, Any]:
    """What a holder's answer reads of a split execution that goes on waiting: its status and the
    states its points wait at (one entry a point, at most ``limit``), without reading the branches."""
    states = [state for state, count in waiting.items() for _ in range(min(count, limit))][:limit]
    return {"executionId": execution_id, "status": "SUSPENDED", "continuations": [{"state": s} for s in states]}
