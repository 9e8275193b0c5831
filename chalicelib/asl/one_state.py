"""One state run on its own, as AWS's ``TestState`` does: ``run_one_state``.

The state is compiled and run by the interpreter itself (the same ``State.run``, the same
input and output processing, the same routing of an error to a Retrier or Catcher), once:

* ``SUCCEEDED``: it ran; ``output``, and ``nextState`` unless it ends the execution;
* ``FAILED``: it failed and nothing handles the error; ``error`` and ``cause``;
* ``RETRIABLE``: a Retrier matches the error and has attempts left (``retrier_retry_count`` says
  how many were made); ``errorDetails`` names it and the back-off it would wait;
* ``CAUGHT_ERROR``: a Catcher took the error; ``output`` is what it placed, ``nextState`` its Next.

With ``inspection`` (DEBUG, TRACE) the result has ``inspectionData``: the data after each I/O step,
noted by the processors as they run (see ``processing.Trace``), only the steps AWS shows for the
state's type and query language, and the variables after the state.

A ``mock`` replaces what the state would call: a Task's resource (also one that waits for its token
or for a person, which otherwise cannot be tested), or a Parallel's branches or a Map's iterations,
whose input processing still runs. Wait states take no time (a virtual clock).
"""
from __future__ import annotations

from typing import Any

from . import errors
from .clock import VirtualClock
from .engine import BLOCK, Runner, route_error
from .errors import StatesError
from .interpreter import load, new_snapshot
from .processing import Trace
from .states import Map, Parallel, State, Task, check_payload
from .tasks import TaskFailed, as_resolver

__all__ = ["StateTestRefused", "run_one_state"]

#: The name a definition of one state runs under.
STATE_NAME = "TestState"

_PATH_INPUT = ("input", "afterInputPath")
_PATH_RESULT = ("result", "afterResultSelector", "afterResultPath")
_MAP_STEPS = ("afterItemsPath", "afterItemSelector", "maxConcurrency", "toleratedFailureCount",
              "toleratedFailurePercentage")
#: The I/O steps AWS's inspectionData shows, by query language and state type.
INSPECTED = {
    "JSONPath": {
        "Task": (*_PATH_INPUT, "afterParameters", *_PATH_RESULT),
        "Parallel": (*_PATH_INPUT, "afterParameters", *_PATH_RESULT),
        "Map": (*_PATH_INPUT, *_MAP_STEPS, *_PATH_RESULT),
        "Pass": (*_PATH_INPUT, "afterParameters", "result", "afterResultPath"),
        "Choice": _PATH_INPUT, "Wait": _PATH_INPUT, "Succeed": _PATH_INPUT, "Fail": ("input",),
    },
    "JSONata": {
        "Task": ("input", "afterArguments", "result"),
        "Parallel": ("input", "afterArguments", "result"),
        "Map": ("input", *_MAP_STEPS[1:], "result"),
        "Pass": ("input",), "Choice": ("input",), "Wait": ("input",), "Succeed": ("input",), "Fail": ("input",),
    },
}
INSPECTION_LEVELS = ("INFO", "DEBUG", "TRACE")


class StateTestRefused(ValueError):
    """The request cannot be tested as asked (AWS answers ``ValidationException``)."""


def run_one_state(definition: dict, input: Any = None, *, state_name: str | None = None,
                  inspection_level: str = "INFO", mock: dict | None = None, variables: dict | None = None,
                  context: dict | None = None, retrier_retry_count: int = 0, handlers: Any = None,
                  clock=None) -> dict:
    """Run one state once; see the module's docstring for the result.

    ``definition`` is one state, or (with ``state_name``) a state machine holding it, at any depth.
    ``mock`` is ``{"result": value}`` or ``{"errorOutput": {"error": ..., "cause": ...}}``;
    ``context`` (with a mock only) replaces parts of the context object. Raises
    :class:`~chalicelib.asl.InvalidDefinition` and :class:`StateTestRefused`.
    """
    if inspection_level not in INSPECTION_LEVELS:
        raise StateTestRefused(f"inspectionLevel must be one of {', '.join(INSPECTION_LEVELS)}.")
    if variables is not None and not isinstance(variables, dict):
        raise StateTestRefused("variables must be a JSON object.")
    if context is not None and (mock is None or not isinstance(context, dict)):
        raise StateTestRefused("A context object may be given only with a mock, as a JSON object.")
    machine_definition, name = _as_machine(definition, state_name)
    compiled = load(machine_definition)
    state = _find(compiled.machine.states, name)
    if state is None:
        raise StateTestRefused(f"The state '{name}' is not in the definition.")
    answer = _mock_answer(mock, state)
    clock = clock or VirtualClock()
    value = {} if input is None else input
    snapshot = new_snapshot(compiled, value, clock=clock)
    if context:
        snapshot["context"] = {**snapshot["context"], **{k: v for k, v in context.items() if k != "State"}}
    frame = snapshot["root"] = {"at": name, "input": value, "t": clock.now(), "eid": 2}
    if variables:
        frame["vars"] = dict(variables)
    resolver = as_resolver(handlers) if answer is None else _MockedResource(answer)
    runner = Runner(compiled.machine, snapshot, resolver=resolver, clock=clock, transition_limit=None)
    runner.trace = Trace(frame)
    result = _outcome(state, frame, runner, answer, retrier_retry_count)
    if inspection_level != "INFO":
        shown = INSPECTED[state.language][state.type]
        data = {"input": value, **{k: v for k, v in runner.trace.data.items() if k in shown}}
        if frame.get("vars"):
            data["variables"] = frame["vars"]
        if "errorDetails" in result:
            data["errorDetails"] = result["errorDetails"]
        result["inspectionData"] = data
    result.pop("errorDetails", None)
    return result


def _outcome(state: State, frame: dict, runner: Runner, answer: dict | None, retry_count: int) -> dict:
    try:
        try:
            step = _run(state, frame, runner, answer)
            check_payload(step.output, state.name)
            if step.assign:
                check_payload(step.assign, state.name, "assigned variables")
                runner.assign(frame, step.assign)
        except (StatesError, StateTestRefused):
            raise
        except Exception as bug:  # as the engine: a Python error is a States.Runtime failure
            raise StatesError(errors.RUNTIME, f"{type(bug).__name__}: {bug}") from None
    except StatesError as failure:
        return _failed(state, frame, runner, failure, retry_count)
    result = {"status": "SUCCEEDED", "output": step.output}
    if step.kind == "next":
        result["nextState"] = step.next
    return result


def _failed(state: State, frame: dict, runner: Runner, failure: StatesError, retry_count: int) -> dict:
    error, cause = failure.error, failure.cause
    result = {"status": "FAILED", "error": error, "cause": cause}
    route, index = route_error(state, error, lambda index: retry_count)
    if route == "retry":
        delay = state.retriers[index].delay(retry_count, runner.rng.random())
        result.update(status="RETRIABLE", errorDetails={"retryIndex": index,
                                                         "retryBackoffIntervalSeconds": int(delay)})
    elif route == "catch":
        catcher = state.catchers[index]
        try:
            output, _ = runner.caught(state, catcher, frame, error, cause)
        except StatesError as again:  # the Catcher's own Output or Assign failed
            return {"status": "FAILED", "error": again.error, "cause": again.cause}
        result.update(status="CAUGHT_ERROR", output=output, nextState=catcher.next,
                      errorDetails={"catchIndex": index})
    return {k: v for k, v in result.items() if v is not None}


def _run(state: State, frame: dict, runner: Runner, answer: dict | None):
    """One step of the state; a mock stands in for what it calls or waits for."""
    if answer is not None and isinstance(state, (Parallel, Map)):
        raw = frame["input"]
        if isinstance(state, Map):
            state.start(raw, frame, runner)
        else:
            state.io.effective_input(raw, frame, runner)
        if "error" in answer:
            raise StatesError(answer["error"], answer.get("cause"))
        return state.transition(*state.io.finish(raw, answer["result"], frame, runner))
    step = state.run(frame, runner)
    while step is BLOCK and runner.wake_inline_waits():  # branches or iterations waiting a short time
        step = state.run(frame, runner)
    if step is BLOCK:
        wait = frame.get("wait")
        if answer is None or wait is None:
            raise StateTestRefused(f"The state '{state.name}' waits for an answer (a task token, a person "
                                   "or an event): test it with a mock.")
        wait["answer"] = answer
        step = state.run(frame, runner)
    return step


class _MockedResource:
    """Every resource answers with the mock."""

    def __init__(self, answer: dict):
        self.answer = answer

    def resolve(self, resource: str):
        return self.call

    def call(self, payload: Any, context) -> Any:
        if "error" in self.answer:
            raise TaskFailed(self.answer["error"], self.answer.get("cause"))
        return self.answer["result"]


def _mock_answer(mock: dict | None, state: State) -> dict | None:
    """The mock as the answer a task gets: ``{"result": ...}`` or ``{"error": ..., "cause": ...}``."""
    if mock is None:
        return None
    if not isinstance(state, (Task, Parallel, Map)):
        raise StateTestRefused(f"A mock can be given only for a Task, Map or Parallel state, not a {state.type}.")
    if ("result" in mock) == ("errorOutput" in mock):
        raise StateTestRefused("A mock has either a result or an errorOutput.")
    if "result" in mock:
        return {"result": mock["result"]}
    failure = mock["errorOutput"]
    if not isinstance(failure, dict) or not isinstance(failure.get("error"), str):
        raise StateTestRefused("A mock's errorOutput needs an error.")
    return {"error": failure["error"], "cause": failure.get("cause")}


def _as_machine(definition: Any, state_name: str | None) -> tuple[Any, str]:
    """A state machine to compile, and the name of the state to test in it."""
    if not isinstance(definition, dict):
        raise StateTestRefused("The definition must be a JSON object.")
    if isinstance(definition.get("States"), dict):
        if state_name is None:
            if len(definition["States"]) != 1:
                raise StateTestRefused("Name the state to test (stateName): the definition has several.")
            state_name = next(iter(definition["States"]))
        return definition, state_name
    if state_name is not None:
        raise StateTestRefused("stateName needs a whole state machine as the definition.")
    states = {STATE_NAME: definition}
    for target in _targets(definition):  # where it may go: end states, so the machine validates
        if isinstance(target, str) and target not in states:
            states[target] = {"Type": "Succeed"}
    return {"StartAt": STATE_NAME, "States": states}, STATE_NAME


def _targets(spec: dict) -> list:
    targets = [spec.get("Next"), spec.get("Default")]
    for key in ("Choices", "Catch"):
        rules = spec.get(key)
        targets += [rule.get("Next") for rule in rules if isinstance(rule, dict)] if isinstance(rules, list) else []
    return targets


def _find(states: dict[str, State], name: str) -> State | None:
    """The compiled state ``name``, at the top or inside a Parallel branch or Map processor."""
    if name in states:
        return states[name]
    for state in states.values():
        for machine in state.children():
            found = _find(machine.states, name)
            if found is not None:
                return found
    return None
