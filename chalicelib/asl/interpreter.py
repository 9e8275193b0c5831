"""The interpreter's public entry points: ``run``, ``resume`` and ``proceed``.

Each takes a definition (dict or JSON text) and returns one result shape::

    {"status": "SUCCEEDED", "output": ...}
    {"status": "FAILED" | "TIMED_OUT", "error": ..., "cause": ...}
    {"status": "SUSPENDED", "suspensions": [...], "snapshot": {...}}
    {"status": "RUNNING", "snapshot": {...}}          # budget ran out

A SUSPENDED or RUNNING result carries the snapshot: a plain JSON value that
``resume``/``proceed`` continue from, in this process or another one.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from .clock import SystemClock, iso_timestamp
from .engine import (_STOPS, SNAPSHOT_VERSION, Listener, Runner, UnknownSuspension, find_wait, frame_waits,
                     iter_waits)
from .limits import MAX_TRANSITIONS
from .errors import StatesError
from .states import Machine, check_payload, compile_machine
from .tasks import as_resolver
from .validation import Problem, size_problems, validate

__all__ = [
    "Compiled",
    "InvalidDefinition",
    "UnknownSuspension",
    "load",
    "proceed",
    "redrive",
    "resume",
    "run",
    "run_virtual",
]

ACCOUNT = "000000000000"
REGION = "local"


class InvalidDefinition(ValueError):
    """The definition does not validate; ``problems`` lists what is wrong."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Compiled:
    """A definition parsed, validated and compiled once; shared by all its executions."""

    hash: str
    text: str  # canonical JSON, what is hashed and stored
    definition: dict
    machine: Machine


_CACHE: "OrderedDict[str, Compiled]" = OrderedDict()
_CACHE_SIZE = 256


def canonical_json(definition: dict) -> str:
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate (a "\ud800" escape): only escaped text is UTF-8
        text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return text


def cached(definition_hash: str) -> Compiled | None:
    """The compiled definition with this content hash, if this process has it."""
    return _CACHE.get(definition_hash)


def load(definition: dict | str | Compiled) -> Compiled:
    """Validate and compile a definition, cached by its content hash.

    Raises :class:`InvalidDefinition` with the problems found.
    """
    if isinstance(definition, Compiled):
        return definition
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except (ValueError, RecursionError) as exc:
            raise InvalidDefinition(validate(definition)) from exc
    if not isinstance(definition, dict):
        raise InvalidDefinition(validate(definition))
    too_deep = size_problems(definition)  # before anything recurses into it
    if too_deep:
        raise InvalidDefinition(too_deep)
    text = canonical_json(definition)
    digest = hashlib.sha256(text.encode()).hexdigest()
    cached = _CACHE.get(digest)
    if cached is not None:
        _CACHE.move_to_end(digest)
        return cached
    problems = validate(definition)
    if problems:
        raise InvalidDefinition(problems)
    try:
        machine = compile_machine(definition)
    except ValueError as exc:  # a compiler check the validator did not catch
        raise InvalidDefinition([Problem(None, None, "State Machine", str(exc))]) from exc
    compiled = Compiled(digest, text, json.loads(text), machine)
    _CACHE[digest] = compiled
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return compiled


def new_snapshot(compiled: Compiled, input: Any, *, clock, name: str | None = None,
                 state_machine_name: str | None = None, region: str = REGION, account: str = ACCOUNT) -> dict:
    """The snapshot of an execution that has not run yet; its context object's ARNs name ``region``
    and ``account``."""
    started = clock.now()
    name = name or str(uuid.uuid4())
    machine_name = state_machine_name or "StateMachine"
    timeout = compiled.machine.timeout_seconds
    return {
        "version": SNAPSHOT_VERSION,
        "definition": compiled.hash,
        "status": "RUNNING",
        "events": 2,  # ExecutionStarted, then the first StateEntered
        "seq": 0,
        "transitions": 0,  # steps over the whole execution (see engine)
        "started": started,
        "timeoutAt": started + timeout if timeout else None,
        "context": {
            "Execution": {
                "Id": f"arn:aws:states:{region}:{account}:execution:{machine_name}:{name}",
                "Input": input,
                "Name": name,
                "RoleArn": f"arn:aws:iam::{account}:role/{machine_name}-role",
                "StartTime": iso_timestamp(started),
                "RedriveCount": 0,
            },
            "StateMachine": {
                "Id": f"arn:aws:states:{region}:{account}:stateMachine:{machine_name}",
                "Name": machine_name,
            },
        },
        "root": {"at": compiled.machine.start_at, "input": input, "t": started, "eid": 2},
    }


def _runner(compiled: Compiled, snapshot: dict, options: dict) -> Runner:
    options.pop("redrivable", None)  # what the result carries (see result_of), not the run's concern
    return Runner(
        compiled.machine,
        snapshot,
        resolver=as_resolver(options.pop("handlers", None)),
        clock=options.pop("clock", None) or SystemClock(),
        **options,
    )


def result_of(snapshot: dict, runner: Runner | None = None, redrivable: bool = False) -> dict:
    """The result shape for a snapshot; with ``redrivable``, a FAILED or TIMED_OUT one carries the
    snapshot too (where it stopped), which :func:`redrive` makes run again."""
    status = snapshot["status"]
    if status == "SUCCEEDED":
        return {"status": status, "output": snapshot.get("output")}
    if status in ("FAILED", "TIMED_OUT", "ABORTED"):
        result = {"status": status, "error": snapshot.get("error"), "cause": snapshot.get("cause")}
        if redrivable:
            result["snapshot"] = snapshot
        return result
    result: dict = {"status": status}
    if status == "SUSPENDED":
        result["suspensions"] = suspensions(snapshot, runner.issued_tokens if runner else {})
    result["snapshot"] = snapshot
    return result


def suspensions(snapshot: dict, tokens: dict | None = None) -> list[dict]:
    """Every open suspension point of a snapshot, as the result lists them."""
    out = []
    for branch, wait in iter_waits(snapshot):
        entry = {"id": wait["id"], "state": wait["state"], "branch": branch or None,
                 "kind": wait["kind"]}
        if wait["kind"] == "timer":
            entry["due"] = iso_timestamp(wait["due"])
            entry["purpose"] = wait["purpose"]
        else:
            entry["parameters"] = wait.get("parameters")
        for field in ("timeoutAt", "heartbeatAt"):
            if field in wait:
                entry[field] = iso_timestamp(wait[field])
        if wait["kind"] == "task-token" and tokens and wait["id"] in tokens:
            entry["token"] = tokens[wait["id"]]
        out.append(entry)
    return out


def run(
    definition: dict | str | Compiled,
    input: Any = None,
    *,
    handlers: Any = None,
    clock=None,
    name: str | None = None,
    state_machine_name: str | None = None,
    region: str = REGION,
    account: str = ACCOUNT,
    inline_wait_limit: float | None = None,
    max_transitions: int | None = None,
    max_seconds: float | None = None,
    transition_limit: int | None = MAX_TRANSITIONS,
    listener: Listener | None = None,
    token_factory: Callable[[str], str] | None = None,
    redrivable: bool = False,
) -> dict:
    """Start an execution and run it until it ends, suspends or runs out of budget.

    ``handlers`` maps Task resources to handlers, or resolves them (default:
    none; ``chalicelib.run`` adds the built-in resources); ``clock`` replaces real time (see ``VirtualClock``);
    waits longer than ``inline_wait_limit`` seconds become timer suspension
    points instead of sleeping (None: always sleep on the clock). One call takes at most
    ``max_transitions`` steps and ``max_seconds`` seconds (then the result is RUNNING); the
    whole execution at most ``transition_limit`` steps, over every ``resume`` and ``proceed``
    (then it fails with ``States.Runtime``; None: no limit). ``region`` and ``account`` go into the
    context object's ARNs (``$$.Execution.Id``, ``$$.StateMachine.Id``). ``redrivable``: a FAILED or
    TIMED_OUT result carries its snapshot (see :func:`redrive`).
    """
    compiled = load(definition)
    clock = clock or SystemClock()
    snapshot = new_snapshot(compiled, {} if input is None else input, clock=clock, name=name,
                            state_machine_name=state_machine_name, region=region, account=account)
    runner = _runner(compiled, snapshot, dict(
        handlers=handlers, clock=clock, inline_wait_limit=inline_wait_limit,
        max_transitions=max_transitions, max_seconds=max_seconds, transition_limit=transition_limit,
        listener=listener, token_factory=token_factory))
    if listener is not None:
        started, root = iso_timestamp(snapshot["started"]), snapshot["root"]
        listener({"id": 1, "type": "ExecutionStarted", "timestamp": started, "input": root["input"]})
        listener({"id": 2, "type": "StateEntered", "timestamp": started, "state": root["at"],
                  "input": root["input"]})
    try:
        check_payload(snapshot["root"]["input"], None)
    except StatesError as refused:
        return result_of(runner.fail(refused.error, refused.cause), runner)
    return result_of(runner.execute(), runner, redrivable)


def run_virtual(definition: dict | str | Compiled, input: Any = None, **options: Any) -> dict:
    """``run`` on a virtual clock: Wait states and Retry intervals take no real time."""
    from .clock import VirtualClock

    return run(definition, input, clock=VirtualClock(), **options)


def resume(
    definition: dict | str | Compiled,
    snapshot: dict,
    point: str,
    result: Any = None,
    *,
    error: str | None = None,
    cause: str | None = None,
    copy_snapshot: bool = True,
    **options: Any,
) -> dict:
    """Answer one open suspension point and run on.

    With ``error`` the waiting task fails with that error (Retry and Catch
    apply); otherwise ``result`` is the task's result (for a ``module:suspend``
    state without ResultPath, or in JSONata without Output, it is deep-merged
    into the state's input). A timer point is resumed with no result. Raises :class:`UnknownSuspension` when the
    point is not open.
    """
    compiled = load(definition)
    if copy_snapshot:
        snapshot = copy.deepcopy(snapshot)
    wait = find_wait(snapshot, point)
    wait["answer"] = {"error": error, "cause": cause} if error is not None else {"result": result}
    return proceed(compiled, snapshot, copy_snapshot=False, **options)


def proceed(definition: dict | str | Compiled, snapshot: dict, *, copy_snapshot: bool = True,
            redrivable: bool = False, **options: Any) -> dict:
    """Continue a snapshot that stopped for lack of budget (status RUNNING)."""
    compiled = load(definition)
    if copy_snapshot:
        snapshot = copy.deepcopy(snapshot)
    runner = _runner(compiled, snapshot, dict(options))
    return result_of(runner.execute(), runner, redrivable)


def redrive(definition: dict | str | Compiled, snapshot: dict, *, clock=None, copy_snapshot: bool = True) -> dict:
    """The snapshot of an execution that ended FAILED, TIMED_OUT or ABORTED (as a ``redrivable`` result
    carries it), made to run again from where it stopped: ``proceed`` continues it (see ``Runner.redrive``)."""
    compiled = load(definition)
    if copy_snapshot:
        snapshot = copy.deepcopy(snapshot)
    return _runner(compiled, snapshot, {"clock": clock}).redrive()


def resume_branch(
    definition: dict | str | Compiled,
    snapshot: dict,
    path: str,
    frame: dict,
    point: str,
    result: Any = None,
    *,
    error: str | None = None,
    cause: str | None = None,
    ancestors: list[dict] = (),
    **options: Any,
) -> str:
    """Answer ``point`` in ``frame``, the branch or iteration at ``path`` ("3": branch 3 of the root
    frame's Parallel or Map; "3.17": iteration 17 of the Map that branch 3 is at; any depth), and
    run it alone, without its siblings, the frames it is inside or the root (``resume`` runs them all).

    ``snapshot`` holds what the branch needs besides its frame: the counters, context and
    deadline, and the root frame (its state and variables) without the group's frames;
    ``ancestors`` the state and variables of each frame on the way from the root's branch to the
    branch's own (``[]`` for a root branch), so it sees the scopes it would inside the whole run. Its
    counters and ``frame`` are changed in place. Returns ``succeeded`` or ``failed`` (the branch
    ended: its frame says how), ``blocked`` (it waits at suspension points only), or
    ``unfinished``: it stopped for the request's budget or the ``id_ceilings`` option, at the
    execution's deadline or transition limit, or at an inline wait; then the whole snapshot,
    with this frame in its place, goes on with ``proceed``.
    """
    compiled = load(definition)
    runner = _runner(compiled, snapshot, dict(options))
    _, machine, scopes, label = _unit(compiled, runner, snapshot, path, ancestors)
    wait = find_wait(snapshot, point, frame)
    wait["answer"] = {"error": error, "cause": cause} if error is not None else {"result": result}
    return _run_alone(runner, machine, label, scopes, frame)


def start_iteration(definition: dict | str | Compiled, snapshot: dict, path: str, value: Any, *,
                    ancestors: list[dict] = (), **options: Any) -> tuple[str, dict]:
    """Start the iteration at ``path`` (as :func:`resume_branch` names it) with ``value``, its input after
    the ItemSelector (see :func:`unstarted_inputs`), and run it alone, as the Map starts one when another
    has left its place: one step of the budget, its first state entered, then run as far as it goes.

    ``snapshot`` and ``ancestors`` are what :func:`resume_branch` takes, changed in place the same way.
    Returns the outcome as :func:`resume_branch` does (``unfinished`` also when the budget did not allow
    the start) and the iteration's frame.
    """
    compiled = load(definition)
    runner = _runner(compiled, snapshot, dict(options))
    _, machine, scopes, label = _unit(compiled, runner, snapshot, path, ancestors)
    try:
        runner.start_branches(1)
    except _STOPS:
        return "unfinished", {}
    frame = runner.new_frame(machine.start_at, value)
    return _run_alone(runner, machine, label, scopes, frame), frame


def _unit(compiled: Compiled, runner: Runner, snapshot: dict, path: str, ancestors: list[dict]):
    """The Parallel or Map state whose branch or iteration is at ``path``, that branch's machine, the
    scopes around it and its name in the run, found by walking the states from the root."""
    indices = [int(index) for index in path.split(".")]
    outside = [snapshot["root"], *ancestors]
    machine, scopes = compiled.machine, ()
    for around, index in zip(outside, indices):
        state = machine.states[around["at"]]
        machine = state.branches[index] if state.type == "Parallel" else state.processor
        runner.outer = scopes  # the scopes around ``around``, as the whole run has them when it runs it
        scopes = () if getattr(state, "distributed", False) else runner.inner_scopes(around)
    runner.outer = ()
    return state, machine, scopes, f"{state.name}[{indices[-1]}]"


def _run_alone(runner: Runner, machine, label: str, scopes: tuple, frame: dict) -> str:
    """Run one branch or iteration without its siblings or the frames it is inside (see
    :func:`resume_branch` for the outcomes)."""
    try:
        outcome = runner.run_frame(frame, machine, label, scopes)
    except _STOPS:
        return "unfinished"
    if outcome == "blocked" and any(wait.get("inline") for _, wait in frame_waits(frame, label)):
        return "unfinished"
    return outcome


#: What makes an ItemSelector's result depend on when (or how often) it is evaluated.
_TIMELY = re.compile(r"\$(now|millis|random|uuid)\b|States\.(UUID|MathRandom)")


def unstarted_inputs(definition: dict | str | Compiled, snapshot: dict) -> dict[int, tuple[bool, Any]] | None:
    """The inputs of the root Map's iterations not started yet, after its ItemSelector, evaluated now as
    the Map would evaluate them when it starts each: index -> (True, input), or (False, None) where
    the selector fails (the Map fails there, which a run of the whole execution does as it would).
    None when they cannot be evaluated ahead: the selector reads the time or draws at random."""
    compiled = load(definition)
    root = snapshot["root"]
    state = compiled.machine.states[root["at"]]
    group = root["group"]
    if not group.get("selected") and _TIMELY.search(json.dumps(state.spec.get("ItemSelector",
                                                                              state.spec.get("Parameters")))):
        return None
    runner = _runner(compiled, snapshot, {})
    inputs: dict[int, tuple[bool, Any]] = {}
    for index in range(group["next"], len(group["items"])):
        try:
            inputs[index] = (True, state.item_input(group, index, root, runner))
        except Exception:  # noqa: BLE001 - a StatesError, or what the run would turn into States.Runtime
            inputs[index] = (False, None)
    return inputs


def open_points(snapshot: dict) -> list[str]:
    return [wait["id"] for _, wait in iter_waits(snapshot)]


__all__ += ["new_snapshot", "result_of", "resume_branch", "start_iteration", "unstarted_inputs", "suspensions",
            "open_points", "canonical_json"]
