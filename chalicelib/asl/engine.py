"""The step loop: runs a compiled machine over a snapshot.

A *snapshot* is the whole state of an execution as one plain JSON value::

    {"version": 1, "status": "RUNNING", "events": 7, "seq": 2, "started": 1.7e9,
     "timeoutAt": null, "context": {"Execution": {...}, "StateMachine": {...}},
     "transitions": 5,               # steps taken so far, over every run of it
     "root": FRAME, "output" | "error"/"cause": ...}

A *step* is a state transition or the start of a Parallel branch or Map
iteration. Each run takes at most ``max_transitions`` steps (then the snapshot
is RUNNING and ``proceed`` goes on); a whole execution at most
``transition_limit`` (``limits.MAX_TRANSITIONS``), counted in the snapshot
across runs, resumes and processes: then it fails with ``States.Runtime``, so
an execution that loops forever ends by itself.

A *frame* is one thread of control (the execution itself, a Parallel branch or
a Map iteration)::

    {"at": "StateName", "input": ..., "eid": 5, "t": 1.7e9,
     "retries": {"0": 1},            # attempts per Retrier, when retrying
     "point": "p3",                  # suspension point id of a waiting task
     "wait": {...},                  # open suspension point (see Runner.suspend), or an
                                     # inline wait of a branch or iteration (Runner.wait_until)
     "group": {...},                 # children of a running Parallel or Map
     "vars": {"name": value}}        # the variables this frame's scope assigned

and, once finished, ``"status": "succeeded" | "failed"`` with ``output`` or
``error``/``cause``. The runner changes the snapshot in place, one state at a
time, so it can stop between any two steps (suspension, exhausted budget) and
another process can continue from ``json.loads(json.dumps(snapshot))``.

Variables (``Assign``) live in the frames, so they are part of the snapshot.
Each frame is one scope: the root frame's is the state machine's, a Parallel
branch's or Map iteration's its own. While the runner walks the frames it
knows the scopes around the one it runs (``Runner.outer``): a state reads its
own frame's variables and those of the enclosing frames, and assigns only in
its own frame; a name an enclosing scope holds cannot be assigned again
(``States.Runtime``). A state's assignments take effect once it is done, so
everything a state evaluates sees the variables as they were when it was
entered.

The execution's deadline (top-level ``TimeoutSeconds``, ``timeoutAt`` in the
snapshot) is checked before every step and again once a state has run, and no
wait sleeps past it: a Wait, Retry back-off, Task, Parallel or Map that outlives
it ends the execution as TIMED_OUT, its ``ExecutionTimedOut`` event stamped at
the deadline. A task handler cannot be interrupted: what it returns or raises
after the deadline is void.

It is long because it is one loop: stepping, suspending, resuming, retrying and the
execution's deadline all act on the same snapshot and frames, and keeping them
together keeps the snapshot's invariants in one place.
"""
from __future__ import annotations

import random
import time
from collections import ChainMap
from types import MappingProxyType
from typing import Any, Callable, Mapping

from . import errors
from .clock import iso_timestamp
from .errors import StatesError, error_matches
from .expressions import run_state_timed
from .history import EventLog
from .limits import MAX_TRANSITIONS, SizeCache
from .processing import JSONATA
from .states import BLOCK, Machine, State, Step, check_payload
from .tasks import TaskContext, task_failure

SNAPSHOT_VERSION = 1

Listener = Callable[[dict], None]


class OutOfBudget(Exception):
    """The request's transition or time budget ran out; the snapshot is consistent."""


class ExecutionTimedOut(Exception):
    """The definition's top-level TimeoutSeconds has passed."""


class TransitionLimitExceeded(Exception):
    """The execution has taken its ``transition_limit`` of steps."""


_STOPS = (OutOfBudget, ExecutionTimedOut, TransitionLimitExceeded)


class UnknownSuspension(KeyError):
    """A resume named a suspension point that is not open in the snapshot."""


_NO_VARIABLES: Mapping = MappingProxyType({})


class Env:
    """What paths and expressions see besides ``$``: the context object (built lazily) and variables."""

    __slots__ = ("_runner", "_frame", "_map_item", "_context", "_outer")

    def __init__(self, runner: "Runner", frame: dict, map_item: dict | None = None):
        self._runner = runner
        self._frame = frame
        self._map_item = map_item
        self._context = None
        self._outer = runner.outer

    @property
    def context(self) -> dict:
        if self._context is None:
            self._context = self._runner.context_object(self._frame, self._map_item)
        return self._context

    @property
    def variables(self) -> Mapping:
        """The variables in scope: the frame's own, then those of the enclosing frames."""
        own = self._frame.get("vars")
        if not self._outer:
            return _NO_VARIABLES if own is None else own
        return ChainMap(own or {}, *reversed(self._outer))


class Runner:
    """Runs one execution's snapshot until it ends, blocks or runs out of budget."""

    def __init__(
        self,
        machine: Machine,
        snapshot: dict,
        *,
        resolver,
        clock,
        inline_wait_limit: float | None = None,
        max_transitions: int | None = None,
        max_seconds: float | None = None,
        transition_limit: int | None = MAX_TRANSITIONS,
        listener: Listener | None = None,
        token_factory: Callable[[str], str] | None = None,
        rng: random.Random | None = None,
        id_ceilings: tuple[int, int] | None = None,
    ):
        self.machine = machine
        self.snapshot = snapshot
        self.resolver = resolver
        self.clock = clock
        self.inline_wait_limit = inline_wait_limit
        self.listener = listener
        self.sizes = SizeCache()  # exact sizes of what the run's checks measured (see limits)
        self._log = listener.add if isinstance(listener, EventLog) else None
        self.token_factory = token_factory or (lambda point: point)
        self.rng = rng or random.Random()
        self.issued_tokens: dict[str, str] = {}
        self.transitions = 0
        self.max_transitions = max_transitions
        self.transition_limit = transition_limit
        self.deadline = None if max_seconds is None else time.monotonic() + max_seconds
        #: (events, points): the run stops for its budget (OutOfBudget) before its event or point
        #: counter reaches these; a run of one branch of a split execution owns the IDs below them.
        self.id_ceilings = id_ceilings
        #: The variable scopes around the frame being run, outermost first.
        self.outer: tuple[dict, ...] = ()
        #: How many Parallel branches or Map iterations the frame being run is inside.
        self._nesting = 0
        #: A :class:`~chalicelib.asl.processing.Trace` of one frame's I/O steps (TestState), or None.
        self.trace = None

    # -- the loop ---------------------------------------------------------------

    def execute(self) -> dict:
        """Run the root frame as far as it goes; update and return the snapshot."""
        snap = self.snapshot
        try:
            outcome = self.run_frame(snap["root"], self.machine, "")
            while outcome == "blocked" and self.wake_inline_waits():
                outcome = self.run_frame(snap["root"], self.machine, "")
        except OutOfBudget:
            snap["status"] = "RUNNING"
            return snap
        except ExecutionTimedOut:
            return self._finish("TIMED_OUT", error=errors.TIMEOUT,
                                cause=errors.EXECUTION_TIMEOUT_CAUSE)
        except TransitionLimitExceeded:
            return self._finish("FAILED", error=errors.RUNTIME, cause=(
                f"The execution exceeded its limit of {self.transition_limit} state transitions."))
        root = snap["root"]
        if outcome == "succeeded":
            return self._finish("SUCCEEDED", output=root["output"])
        if outcome == "failed":
            return self._finish("FAILED", error=root.get("error"), cause=root.get("cause"))
        snap["status"] = "SUSPENDED"
        return snap

    def fail(self, error: str, cause: str) -> dict:
        """End the execution as FAILED before it runs (its input is refused)."""
        return self._finish("FAILED", error=error, cause=cause)

    def _finish(self, status: str, **fields: Any) -> dict:
        snap = self.snapshot
        snap["status"] = status
        snap.update(fields)
        event = {"SUCCEEDED": "ExecutionSucceeded", "FAILED": "ExecutionFailed",
                 "TIMED_OUT": "ExecutionTimedOut"}[status]
        # A timeout happens at the deadline, however late the run that noticed it.
        at = snap["timeoutAt"] if status == "TIMED_OUT" else self.clock.now()
        self._emit(at, snap["root"], event, fields)
        return snap

    def run_frame(self, frame: dict, machine: Machine, branch: str, outer: tuple[dict, ...] = ()) -> str:
        """Advance a frame; return 'succeeded', 'failed' or 'blocked'.

        ``outer`` holds the variable scopes around the frame (see ``inner_scopes``).
        """
        saved, self.outer = self.outer, outer
        nested = 1 if branch else 0
        self._nesting += nested
        try:
            return self._run(frame, machine)
        finally:
            self._nesting -= nested
            self.outer = saved

    def inner_scopes(self, frame: dict) -> tuple[dict, ...]:
        """The scopes around the branches or iterations that this frame's state starts."""
        return (*self.outer, frame.get("vars") or {})

    def assign(self, frame: dict, values: dict) -> None:
        """Set variables in the frame's own scope (a state's ``Assign``, once it is done)."""
        for name in values:
            for scope in self.outer:
                if name in scope:
                    raise errors.state_failure(
                        errors.RUNTIME, frame["at"], frame["eid"],
                        f"The variable '{name}' cannot be assigned: it belongs to an outer scope.")
        variables = frame.get("vars")
        if variables is None:
            frame["vars"] = dict(values)
        else:
            variables.update(values)

    def _run(self, frame: dict, machine: Machine) -> str:
        states = machine.states
        while True:
            status = frame.get("status")
            if status is not None:
                return status
            wait = frame.get("wait")
            if wait is not None and "answer" not in wait:
                return "blocked"
            self._check_budget()
            state = states[frame["at"]]
            if wait is not None and wait["purpose"] == "retry":
                del frame["wait"]  # the back-off timer fired: run the state again
            try:
                # only a JSONata state's step has expressions to time (JSONPath ones pay nothing)
                step = run_state_timed(state, frame, self) if state.language == JSONATA else state.run(frame, self)
                if step.kind in _MOVES and step.output is not frame.get("input"):
                    check_payload(step.output, state.name, sizes=self.sizes)
                if step.assign:
                    check_payload(step.assign, state.name, "assigned variables")
                    self.assign(frame, step.assign)
            except StatesError as failure:
                step = self._handle_error(state, frame, failure)
            except _STOPS:
                raise
            except Exception as bug:  # never let a Python error escape as such
                step = self._handle_error(state, frame, StatesError(
                    errors.RUNTIME, f"{type(bug).__name__}: {bug}"))
            self.check_deadline()  # the state ran into it (a long Task, a Parallel, a Map)
            if step is BLOCK:
                return "blocked"
            if step is _RETRY:
                continue
            if step is _FAILED:
                return "failed"
            self.count_steps(1)
            if step.assign:
                self.emit(frame, state.type + "StateExited", output=step.output, assignedVariables=step.assign)
            else:
                self.emit(frame, state.type + "StateExited", output=step.output)
            if step.kind == "next":
                self._enter(frame, step.next, step.output)
            else:
                frame.clear()
                frame["status"] = "succeeded"
                frame["output"] = step.output
                return "succeeded"

    def count_steps(self, steps: int) -> None:
        self.transitions += steps
        self.snapshot["transitions"] = self.snapshot.get("transitions", 0) + steps

    def start_branches(self, count: int) -> None:
        """Before a Parallel or Map starts ``count`` branches or iterations: they are steps of the budget.

        Raises (leaving the snapshot as it was) when the budget or the execution's limit is spent,
        so a large fan-out goes on in the next run like any other long work.
        """
        self._check_budget()
        self.count_steps(count)

    def _check_budget(self) -> None:
        limit = self.transition_limit
        if limit is not None and self.snapshot.get("transitions", 0) >= limit:
            raise TransitionLimitExceeded()
        if self.max_transitions is not None and self.transitions >= self.max_transitions:
            raise OutOfBudget()
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise OutOfBudget()
        ceilings = self.id_ceilings
        if ceilings is not None and (self.snapshot["events"] >= ceilings[0] or self.snapshot["seq"] >= ceilings[1]):
            raise OutOfBudget()
        self.check_deadline()

    def check_deadline(self) -> None:
        """Raise :class:`ExecutionTimedOut` once the execution's TimeoutSeconds has passed."""
        timeout_at = self.snapshot.get("timeoutAt")
        if timeout_at is not None and self.clock.now() >= timeout_at:
            raise ExecutionTimedOut()

    def new_frame(self, state: str, value: Any) -> dict:
        frame: dict = {}
        self._enter(frame, state, value)
        return frame

    def _enter(self, frame: dict, state: str, value: Any) -> None:
        variables = frame.get("vars")
        frame.clear()
        frame["at"] = state
        frame["input"] = value
        frame["t"] = self.clock.now()
        frame["eid"] = self.snapshot["events"] + 1
        if variables is not None:
            frame["vars"] = variables
        self.emit(frame, "StateEntered", input=value)

    # -- errors, Retry and Catch ------------------------------------------------

    def _handle_error(self, state: State, frame: dict, failure: StatesError):
        error, cause = failure.error, failure.cause
        self.emit(frame, "StateFailed", error=error, cause=cause)
        retries = frame.get("retries") or {}
        route, index = route_error(state, error, lambda index: retries.get(str(index), 0))
        if route == "retry":
            frame.pop("group", None)  # a Parallel or Map that failed starts again from its first branch
            attempt = retries.get(str(index), 0)
            frame.setdefault("retries", {})[str(index)] = attempt + 1
            delay = state.retriers[index].delay(attempt, self.rng.random())
            self.emit(frame, "StateRetryScheduled", error=error, delaySeconds=delay)
            if self.wait_until(frame, self.clock.now() + delay, purpose="retry"):
                return _RETRY
            return BLOCK
        if route == "catch":
            catcher = state.catchers[index]
            try:
                output, assign = self.caught(state, catcher, frame, error, cause)
            except StatesError as failure:  # the Catcher's own Output or Assign failed
                error, cause = failure.error, failure.cause
            except Exception as bug:  # never let a Python error escape as such
                error, cause = errors.RUNTIME, f"{type(bug).__name__}: {bug}"
            else:
                self.count_steps(1)
                if assign:
                    self.emit(frame, state.type + "StateExited", output=output, assignedVariables=assign)
                else:
                    self.emit(frame, state.type + "StateExited", output=output)
                return Step("next", catcher.next, output)
        fail_frame(frame, error, cause)
        return _FAILED

    def caught(self, state: State, catcher, frame: dict, error: str, cause: str | None) -> tuple[Any, dict | None]:
        """A Catcher's output and assignments for an error it caught (the assignments applied)."""
        output, assign = catcher.finish(frame["input"], error_output(error, cause), frame, self)
        check_payload(output, state.name)
        if assign:
            check_payload(assign, state.name, "assigned variables")
            self.assign(frame, assign)
        return output, assign

    # -- redrive ----------------------------------------------------------------

    def redrive(self) -> dict:
        """Make a snapshot that ended FAILED, TIMED_OUT or ABORTED able to run on from where it stopped.

        Every frame that failed or was stopped runs its state again, with the input and
        variables it had and its retries reset; Parallel branches and Map iterations that
        succeeded keep their results, the iterations a Map tolerated as failed start again.
        The deadline (top-level TimeoutSeconds) counts from now; ``$$.Execution.RedriveCount``
        goes up by one. Returns the snapshot, RUNNING: ``proceed`` continues it.
        """
        snap = self.snapshot
        self._rewind(snap["root"], self.machine)
        now = self.clock.now()
        snap["status"] = "RUNNING"
        for field in ("output", "error", "cause"):
            snap.pop(field, None)
        timeout = self.machine.timeout_seconds
        snap["timeoutAt"] = now + timeout if timeout else None
        execution = snap["context"]["Execution"]
        execution["RedriveCount"] = execution.get("RedriveCount", 0) + 1
        execution["RedriveTime"] = iso_timestamp(now)
        return snap

    def _rewind(self, frame: dict, machine: Machine) -> None:
        if frame.get("status") == "succeeded":
            return
        for field in ("status", "error", "cause", "wait", "point", "retries"):
            frame.pop(field, None)
        group = frame.get("group")
        if not group:
            return
        state = machine.states[frame["at"]]
        if "frames" in group:  # a Parallel: its branches that had not succeeded
            for index, child in enumerate(group["frames"]):
                if child is not None:
                    self._rewind(child, state.branches[index])
            return
        for child in group["active"].values():  # a Map: the iterations that were under way or failed
            self._rewind(child, state.processor)
        for index in group.pop("failedIndexes", ()):  # and those it tolerated as failed, from their start
            group["failed"] -= 1
            group["results"][index] = None
            group["active"][str(index)] = self.new_frame(state.processor.start_at,
                                                         state.item_input(group, index, frame, self))

    # -- time -------------------------------------------------------------------

    def wait_until(self, frame: dict, due: float, purpose: str) -> bool:
        """Wait until ``due``: True when done inline, False when the frame waits (a timer was set).

        In a Parallel branch or Map iteration a short wait is *inline*: the frame waits
        while its siblings go on, and ``execute`` sleeps until the first inline wait is
        due, so branches wait at the same time, as in AWS, not one after the other.
        """
        delay = due - self.clock.now()
        if delay <= 0:
            return True
        if self.inline_wait_limit is None or delay <= self.inline_wait_limit:
            if self._nesting:
                frame["wait"] = {"kind": "timer", "purpose": purpose, "state": frame["at"], "due": due,
                                 "inline": True}
                return False
            self._sleep_until(due)
            return True
        frame["wait"] = {"id": self.new_point(), "kind": "timer", "purpose": purpose,
                         "state": frame["at"], "due": due}
        self.emit(frame, "TimerScheduled", due=iso_timestamp(due), purpose=purpose)
        return False

    def _sleep_until(self, due: float) -> None:
        """Sleep on the clock until ``due``, or only until the execution's deadline (then time out)."""
        timeout_at = self.snapshot.get("timeoutAt")
        if timeout_at is not None and due >= timeout_at:
            self.clock.sleep(timeout_at - self.clock.now())
            raise ExecutionTimedOut()
        self.clock.sleep(due - self.clock.now())

    def wake_inline_waits(self) -> bool:
        """Sleep until the first inline wait is due and answer those due by then; False if none."""
        waits = [wait for _, wait in _open_waits(self.snapshot) if wait.get("inline")]
        if not waits:
            return False
        due = min(wait["due"] for wait in waits)
        self._sleep_until(due)
        woken = max(due, self.clock.now())
        for wait in waits:
            if wait["due"] <= woken:
                wait["answer"] = {"result": None}
        return True

    # -- tasks and suspension points --------------------------------------------

    def new_point(self) -> str:
        """A new suspension point id, unique within the execution."""
        self.snapshot["seq"] += 1
        return f"p{self.snapshot['seq']}"

    def token_for(self, point: str) -> str:
        token = self.issued_tokens.get(point)
        if token is None:
            token = self.issued_tokens[point] = self.token_factory(point)
        return token

    def task_context(self, resource: str, state_name: str, frame: dict, timeout=None, heartbeat=None,
                     waits_for_token: bool = False) -> TaskContext:
        """What a handler called for ``frame`` knows; its suspension point is made on first use."""
        def allocate_point() -> tuple[str, str]:
            point = frame.get("point") or frame.setdefault("point", self.new_point())
            return point, self.token_for(point)

        return TaskContext(
            resource=resource,
            state=state_name,
            execution=self.snapshot["context"]["Execution"],
            timeout_seconds=timeout,
            heartbeat_seconds=heartbeat,
            waits_for_token=waits_for_token,
            allocate_point=allocate_point,
            entered_event=frame.get("eid"),
        )

    def invoke(self, state, payload: Any, frame: dict, timeout, heartbeat) -> Any:
        resource = state.base_resource
        handler = self.resolver.resolve(resource)
        if handler is None:
            raise StatesError(errors.RUNTIME, f"No handler is configured for the resource '{resource}'.")
        context = self.task_context(resource, state.name, frame, timeout, heartbeat, state.waits_for_token)
        self.emit(frame, "TaskScheduled", resource=resource, parameters=payload)
        try:
            result = handler(payload, context)
        except Exception as exc:  # a handler's exception is a task failure, as in Lambda
            failure = task_failure(exc)
        else:
            failure = None
        self.check_deadline()  # the execution timed out while the task ran: its outcome is void
        if failure is not None:
            raise failure from None
        self.emit(frame, "TaskSucceeded", resource=resource)
        return result

    def suspend(self, frame: dict, kind: str, parameters: Any, timeout, heartbeat,
                merge: bool, detail: dict | None) -> None:
        point = frame.pop("point", None) or self.new_point()
        now = self.clock.now()
        wait = {"id": point, "kind": kind, "purpose": "task", "state": frame["at"],
                "parameters": parameters}
        if merge:
            wait["merge"] = True
        if timeout:
            wait["timeoutAt"] = now + timeout
        if heartbeat:
            wait["heartbeatAt"] = now + heartbeat
            wait["heartbeatSeconds"] = heartbeat
        if detail:
            wait["detail"] = detail
        frame["wait"] = wait
        self.emit(frame, "ExecutionSuspended", point=point, kind=kind, parameters=parameters)

    def take_answer(self, frame: dict) -> dict | None:
        """The answer to this frame's suspension point, if it has one (removes it)."""
        wait = frame.get("wait")
        if wait is None or "answer" not in wait:
            return None
        del frame["wait"]
        answer = wait["answer"]
        if wait.get("merge") and "error" not in answer:
            answer = dict(answer, merge=True)
        if not wait.get("inline"):  # an inline wait suspended nothing
            if "result" in answer:  # what the task was answered with, as AWS's TaskSucceeded output
                self.emit(frame, "ExecutionResumed", point=wait["id"], output=answer["result"])
            else:
                self.emit(frame, "ExecutionResumed", point=wait["id"])
        return answer

    # -- context object and events ----------------------------------------------

    def env(self, frame: dict, map_item: dict | None = None) -> Env:
        return Env(self, frame, map_item)

    def context_object(self, frame: dict, map_item: dict | None) -> dict:
        context = dict(self.snapshot["context"])
        retries = frame.get("retries")
        context["State"] = {
            "EnteredTime": iso_timestamp(frame.get("t", self.clock.now())),
            "Name": frame.get("at"),
            "RetryCount": sum(retries.values()) if retries else 0,
        }
        point = frame.get("point")
        if point:
            context["Task"] = {"Token": self.token_for(point)}
        if map_item is not None:
            context["Map"] = {"Item": map_item}
        return context

    def emit(self, frame: dict, event_type: str, /, **details: Any) -> None:
        self._emit(self.clock.now(), frame, event_type, details)

    def _emit(self, at: float, frame: dict, event_type: str, details: dict) -> None:
        self.snapshot["events"] += 1
        if self._log is not None:
            self._log((self.snapshot["events"], event_type, at, frame.get("at"), details))
        elif self.listener is not None:
            event = {"id": self.snapshot["events"], "type": event_type, "timestamp": iso_timestamp(at)}
            if frame.get("at") is not None:
                event["state"] = frame["at"]
            event.update(details)
            self.listener(event)


def fail_frame(frame: dict, error: str | None, cause: str | None) -> None:
    """End a frame as failed. It keeps where it stood (state, input, variables, and the branches or
    iterations of a Parallel or Map), which a redrive runs again; what it waited for is dropped."""
    for field in ("wait", "point", "retries"):
        frame.pop(field, None)
    frame["status"] = "failed"
    frame["error"] = error
    frame["cause"] = cause


def route_error(state: State, error: str | None, attempts: Callable[[int], int]) -> tuple[str, int]:
    """Where an error goes: ("retry", i) when Retrier i matches it first and has attempts left
    (``attempts(i)``: those made), else ("catch", i) when Catcher i is the first to match, else ("fail", -1)."""
    if error not in errors.UNCATCHABLE:
        for index, retrier in enumerate(state.retriers):
            if error_matches(retrier.error_equals, error):
                if attempts(index) < retrier.max_attempts:
                    return "retry", index
                break
        for index, catcher in enumerate(state.catchers):
            if error_matches(catcher.error_equals, error):
                return "catch", index
    return "fail", -1


def error_output(error: str | None, cause: str | None) -> dict:
    """What a Catcher places: ``{"Error": ..., "Cause": ...}`` (no Cause when there is none)."""
    details = {"Error": error}
    if cause is not None:
        details["Cause"] = cause
    return details


_MOVES = frozenset({"next", "end"})
_RETRY = Step("retry")
_FAILED = Step("failed")


# -- walking a snapshot's frames ------------------------------------------------

def iter_waits(snapshot: dict):
    """Yield (branch, wait) for every open suspension point, in branch order.

    Inline waits (see ``Runner.wait_until``) are not suspension points: the run ends them itself.
    """
    return frame_waits(snapshot.get("root") or {}, "", inline=False)


def _open_waits(snapshot: dict):
    """Yield (branch, wait) for every unanswered wait of the snapshot's frames, in branch order."""
    return frame_waits(snapshot.get("root") or {}, "")


def frame_waits(frame: dict, branch: str, inline: bool = True):
    """Yield (branch, wait) for every unanswered wait of ``frame`` (named ``branch``) and the frames
    inside it, in branch order; without the inline ones unless ``inline``."""
    stack = [(branch, frame)]
    while stack:
        branch, frame = stack.pop()
        wait = frame.get("wait")
        if wait is not None and "answer" not in wait and (inline or not wait.get("inline")):
            yield branch, wait
        group = frame.get("group")
        if not group:
            continue
        prefix = f"{branch}/" if branch else ""
        children = (
            [(i, f) for i, f in enumerate(group["frames"]) if f is not None]
            if "frames" in group else sorted(((int(k), f) for k, f in group["active"].items()), key=lambda kv: kv[0])
        )
        for index, child in reversed(children):
            stack.append((f"{prefix}{frame['at']}[{index}]", child))


def find_wait(snapshot: dict, point: str, frame: dict | None = None) -> dict:
    """The open suspension point ``point`` of the snapshot (or only of ``frame`` and the frames in it)."""
    waits = iter_waits(snapshot) if frame is None else frame_waits(frame, "", inline=False)
    for _, wait in waits:
        if wait["id"] == point:
            return wait
    raise UnknownSuspension(point)
