"""An execution's fan-out stored branch by branch: answering one branch costs what that branch holds.

While an execution is SUSPENDED with its root frame in a Parallel or Map that waits for at least
``SPLIT_FROM`` open branches (or iterations), each of them is stored apart, in the fields of
``asl:{t}:f:<executionId>`` (see ``chalicelib/store/store.py``), as a *unit* named by its path of
indices ("3": the root's branch 3). A branch that itself waits in a Parallel or Map for at least
``SPLIT_FROM`` open slots is split further the same way ("3.17": iteration 17 of the Map inside
branch 3), at any depth. :func:`split` says what a commit of the whole execution stores so, and
:func:`assemble` puts a record read with its units back together, so everything that reads an
execution (``Runs.load``) sees one snapshot as before.

A redemption of a point in such a unit (``Store.claim`` answers it with that unit alone, and what
the units it is inside hold for its run) runs only that unit and commits only it
(``branches.Branches``). When that unit is the last one open in its group and ends, the join (the
Parallel's or Map's end, and whatever follows it) runs on the whole execution, assembled, in one
commit: the join of each group runs once.

A root Map with iterations not started yet (``MaxConcurrency`` below its item count) keeps their inputs
apart too, evaluated through its ItemSelector at the split (``unstarted_inputs``): an iteration that
ends, or fails within the Map's tolerated failures, starts the next one in its place, in its own
commit, as the Map would, so answering one costs what that iteration and the next hold, not the items.
A failure within the tolerance of any Map stored apart is counted in its iteration's commit.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from ..asl.engine import frame_waits
from ..asl.interpreter import Compiled, unstarted_inputs
from ..store import ExecutionRecord, SplitWrite
from ..store.store import in_event_order, unit_path

#: How many open branches (or iterations) a Parallel or Map needs to be stored apart (the root's Map
#: counts the iterations not started yet whose inputs are kept apart, too).
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


def slot_at(root: dict, path: str) -> tuple[dict | None, int, dict | None]:
    """Where the unit at ``path`` sits in the frames under ``root``: its group (None when a frame on
    the way has no group), its index there and its frame (None when it is not open)."""
    *outer, last = (int(index) for index in path.split("."))
    frame: dict | None = root
    for index in outer:
        group = frame.get("group") if frame else None
        frame = dict(group_slots(group)).get(index) if group else None
    group = frame.get("group") if frame else None
    return group, last, dict(group_slots(group)).get(last) if group else None


def path_order(path: str) -> tuple[int, ...]:
    """A unit path as the indices it is made of: outer units first, then each group's in the order
    its Map started them."""
    return (path.count("."), *(int(index) for index in path.split(".")))


def branch_label(meta: dict, ancestors: list[dict], path: str) -> str:
    """The branch name of a unit stored apart (its path, the states of the units it is inside), as
    ``iter_waits`` names it: "Outer[3]/Inner[17]"."""
    states = [meta["root"]["at"], *(ancestor["at"] for ancestor in ancestors)]
    return "/".join(f"{state}[{index}]" for state, index in zip(states, path.split(".")))


def claim_label(branch) -> str:
    """The branch name of a claimed unit (a ``BranchClaim``)."""
    return branch_label(branch.meta, branch.ancestors, branch.path)


_RESOURCE = re.compile(r'"Resource": "([^"]*)"')
#: A reference to the context object that may read the execution's input: the whole context, the whole
#: ``Execution`` object or its ``Input`` (``$$.Task.Token``, ``$$.Map.Item.Value`` or ``$$.Execution.Id``
#: do not). A form this does not recognise (brackets, a JSONata variable holding the context) counts.
_READS_INPUT = re.compile(
    r"(\$\$|\$states\.context)(?!\.(?:Task|Map|State|StateMachine)\b|\.Execution\.(?!Input\b))")
#: ``module:`` handlers the service ships that read nothing of the execution but their payload.
_PAYLOAD_ONLY = frozenset({"module:suspend", "module:increment", "module:square"})


def reads_execution_input(state) -> bool:
    """Whether the branches of a compiled Parallel or Map state may read the execution's input: they
    refer to it through the context object (``_READS_INPUT``) or call a Python handler (``module:``, as
    ``module:event``, which matches events against the input; a handler is given the context's
    ``Execution``). The AWS-shaped resources (``arn:``: Lambda, the service integrations, activities,
    email) are given their payload only. When the branches cannot read it, what a branch's run reads
    besides its frame leaves the input out: it is the size of the whole execution."""
    text = json.dumps([machine.spec for machine in state.children()])
    return bool(_READS_INPUT.search(text)) or any(
        resource.startswith("module:") and resource not in _PAYLOAD_ONLY for resource in _RESOURCE.findall(text))


def _stored_apart(frame: dict) -> bool:
    """Whether a frame's group is stored unit by unit: the frame waits for its branches or iterations
    (not itself, as a Map waiting for its map run), at least ``SPLIT_FROM`` of them open, or fewer
    of which one is stored apart so (a Parallel's last open branch holding a Map of many)."""
    group = frame.get("group")
    if not group or "wait" in frame:
        return False
    slots = group_slots(group)
    return len(slots) >= SPLIT_FROM or any(_stored_apart(child) for _, child in slots)


def _more(group: dict) -> bool:
    """A Map's group with iterations not started yet."""
    return "items" in group and group["next"] < len(group["items"])


class _Units:
    """The units of a split record, gathered by walking its frames (see ``split``)."""

    def __init__(self, open_points: dict):
        self.open_points = open_points
        self.branches: dict[str, dict] = {}
        self.groups: dict[str, int] = {}
        self.ancestors: dict[str, dict] = {}
        self.failed: dict[str, int] = {}  # the path of a unit whose Map's group it is -> its tolerated failures
        self.waiting: Counter = Counter()
        self.inside: set[str] = set()
        self.timers: dict[str, list[str]] = {}  # unit path -> its points that wait for a timer

    def apart(self, frame: dict, path: str) -> dict:
        """``frame`` with each open slot of its group stored apart (``STORED_APART`` in its place): a
        unit of its own, or, when it waits for enough slots itself, split further the same way."""
        group = frame["group"]
        slots = group_slots(group)
        self.groups[path] = len(slots)
        if group.get("tolerated") is not None:
            self.failed[path] = group["failed"]
        for index, child in slots:
            child_path = unit_path(path, index)
            if _stored_apart(child):
                tolerated = child["group"].get("tolerated")
                self.ancestors[child_path] = {"at": child["at"], **({"vars": child["vars"]} if "vars" in child else {}),
                                              "more": _more(child["group"]),
                                              **({"tolerated": tolerated} if tolerated is not None else {})}
                self.branches[child_path] = {"f": self.apart(child, child_path), "o": {}}
                continue
            opened = {}
            for _, wait in frame_waits(child, "", inline=False):
                self.inside.add(wait["id"])
                entry = self.open_points.get(wait["id"])
                if entry is not None:
                    opened[wait["id"]] = entry
                    self.waiting[wait["state"]] += 1
                elif wait["kind"] == "timer":
                    self.timers.setdefault(child_path, []).append(wait["id"])
            self.branches[child_path] = {"f": child, "o": opened}
        stored_group = dict(group)
        if "frames" in group:
            stored_group["frames"] = [STORED_APART if slot is not None else None for slot in group["frames"]]
        else:
            stored_group["active"] = {key: STORED_APART for key in group["active"]}
        return dict(frame, group=stored_group)


def split(record: ExecutionRecord, name: tuple[str, str] | None = None,
          compiled: Compiled | None = None) -> SplitWrite | None:
    """How to store ``record`` with its root's branches apart, or None when it is stored whole.

    A branch that itself waits for enough branches or iterations is split further, at any depth: each
    of its open slots is a unit of its own, and the branch keeps ``STORED_APART`` in their places.
    ``compiled`` is the execution's definition: the Parallel or Map the root frame is at decides what a
    branch's run reads (see ``reads_execution_input``), and the root Map's iterations not started yet
    are evaluated with it (``unstarted_inputs``)."""
    snapshot = record.snapshot
    if snapshot is None or snapshot.get("status") != "SUSPENDED":
        return None
    root = snapshot["root"]
    group = root.get("group")
    waits = bool(group) and "wait" not in root
    unstarted = unstarted_inputs(compiled, snapshot) if waits and _more(group) and compiled is not None else None
    if not _stored_apart(root) and not (waits and group_slots(group)
                                        and len(group_slots(group)) + len(unstarted or ()) >= SPLIT_FROM):
        return None
    state = compiled.machine.states[root["at"]] if compiled is not None else None
    units = _Units(record.open)
    stored = dict(snapshot, root=units.apart(root, ""), split=True)
    context = snapshot["context"]
    if state is not None and not reads_execution_input(state):
        execution = {key: value for key, value in context["Execution"].items() if key != "Input"}
        context = {**context, "Execution": execution}
    meta = {
        "root": {"at": root["at"], **({"vars": root["vars"]} if "vars" in root else {})},
        "context": context, "timeoutAt": snapshot.get("timeoutAt"), "started": snapshot.get("started"),
        "version": snapshot.get("version"), "definition": record.definition_hash,
        "machine": record.document.get("stateMachine") or "",
        "more": _more(group),
        **({"items": len(group["items"])} if unstarted is not None else {}),
        **({"tolerated": group["tolerated"]} if group.get("tolerated") is not None else {}),
        **({"name": list(name)} if name else {}),
    }
    return SplitWrite(
        snapshot=stored, open={point: entry for point, entry in record.open.items() if point not in units.inside},
        meta=meta, branches=units.branches, groups=units.groups, ancestors=units.ancestors,
        counters=(snapshot["events"], snapshot["seq"], snapshot.get("transitions", 0)), waiting=dict(units.waiting),
        timers=units.timers,
        unstarted={} if unstarted is None else {unit_path("", index): value for index, value in unstarted.items()},
        next={} if unstarted is None else {"": group["next"]}, failed=units.failed)


def assemble(record: ExecutionRecord | None) -> ExecutionRecord | None:
    """A record read with branches stored apart, made whole: the snapshot with every unit (and the
    results of those that ended since) in its place, outer units first and each group's iterations
    started since the split after the others, in the order their Map started them; a Map's next
    iteration to start and its failures; the counters, open points and history events they hold
    (their marks too: see ``Store``). Its ``split_guard`` stays: a commit of the whole checks that none
    changed since."""
    if record is None or record.split is None:
        return record
    parts, snapshot = record.split, record.snapshot
    snapshot.pop("split", None)
    snapshot["events"], snapshot["seq"], snapshot["transitions"] = parts.counters
    placed = {"": snapshot["root"]}
    for path in sorted(parts.branches, key=path_order):
        parent, _, index = path.rpartition(".")
        branch = parts.branches[path]
        put_branch(placed[parent]["group"], int(index), branch["f"])
        placed[path] = branch["f"]
        record.open.update(branch["o"])
    for path, output in parts.results.items():
        parent, _, index = path.rpartition(".")
        group = placed[parent]["group"]
        group["results"][int(index)] = output
        put_branch(group, int(index), None)
    for path, next_index in parts.next.items():
        placed[path]["group"]["next"] = next_index
    for path, failed in parts.failed.items():
        placed[path]["group"]["failed"] = failed
    for path in sorted(parts.failures, key=parts.failures.get):
        parent, _, index = path.rpartition(".")
        placed[parent]["group"].setdefault("failedIndexes", []).append(int(index))
    record.history = in_event_order(record.history, parts.events, parts.marks)
    record.split = None
    return record


def waiting_document(execution_id: str, waiting: dict[str, int], limit: int) -> dict[str, Any]:
    """What a holder's answer reads of a split execution that goes on waiting: its status and the
    states its points wait at (one entry a point, at most ``limit``), without reading the branches."""
    states = [state for state, count in waiting.items() for _ in range(min(count, limit))][:limit]
    return {"executionId": execution_id, "status": "SUSPENDED", "continuations": [{"state": s} for s in states]}
