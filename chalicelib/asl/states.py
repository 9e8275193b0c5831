"""Compiled states: a definition parsed once into objects that know how to run.

``compile_machine`` turns a definition (or a Parallel branch, or a Map's
ItemProcessor) into a :class:`Machine` of :class:`State` objects, with every
path, template, expression and rule already compiled. Each state's
``run(frame, runner)`` does one step for a frame positioned at that state and
returns a :class:`Step`: go to the next state, end the frame, or block
(suspended), with the variables the state assigns.

A state does its input and output processing through ``self.io``, the
processor of its query language (see ``processing``): the same state class
runs JSONPath and JSONata states.

Everything a state needs to remember between steps lives in the frame (a
plain JSON object inside the snapshot), never in these objects, which are
shared by every execution of the same definition.

It is long because it holds one small class per ASL state type, side by side, so
the state types can be compared; each class is short.
"""
from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from . import errors
from .errors import StatesError
from .processing import (
    JSONATA,
    JSONPATH,
    check_fields,
    note,
    processor,
    runtime_error,
    state_language,
)
from . import limits
from .limits import MAX_PAYLOAD_BYTES, NotJson, TooDeep, payload_size
from .tasks import Suspend, task_failure
from .distributed import DISTRIBUTED_MAP, DistributedConfig, refuse_on_inline, transform

#: The kinds of wait whose answer is deep-merged into the state's input (no ResultPath or Output).
MERGED_KINDS = frozenset({"suspend", "event"})
from .templates import compact_json
from .timestamps import parse_timestamp

if TYPE_CHECKING:
    from .engine import Runner

__all__ = ["BLOCK", "MAX_PAYLOAD_BYTES", "STATE_TYPES", "Machine", "State", "Step", "check_payload", "check_size",
           "compile_machine"]

def check_size(value: Any, frame: dict) -> Any:
    """``value``, if it fits a payload: else States.DataLimitExceeded (States.Runtime when it is not JSON)."""
    return check_payload(value, frame["at"])


def check_payload(value: Any, state: str | None, what: str = "returned a result",
                  sizes: "limits.SizeCache | None" = None) -> Any:
    """``value``, if it is JSON of at most ``MAX_PAYLOAD_BYTES`` nested at most ``MAX_DATA_DEPTH`` deep.

    The cause names the state ("The state/task 'Name' returned a result ..."),
    or with ``state`` None the execution input.
    """
    try:
        size = payload_size(value) if sizes is None else limits.cached_size(value, sizes)
    except TooDeep:
        raise StatesError(errors.DATA_LIMIT_EXCEEDED,
                          f"{_subject(state, what)} nested more than {limits.MAX_DATA_DEPTH} levels deep.") from None
    except NotJson as exc:
        raise StatesError(errors.RUNTIME, f"{_subject(state, what)} that is not JSON: {exc}") from None
    if size > MAX_PAYLOAD_BYTES:
        raise StatesError(errors.DATA_LIMIT_EXCEEDED, f"{_subject(state, what)} with a size exceeding "
                                                      "the maximum number of bytes service limit.")
    return value


def _subject(state: str | None, what: str) -> str:
    return "The execution input is a value" if state is None else f"The state/task '{state}' {what}"


class Step:
    """What a state's run produced. ``kind`` is 'next', 'end' or 'block'.

    ``assign`` holds the variables the state assigns (applied by the runner
    once the state is done), or None.
    """

    __slots__ = ("kind", "next", "output", "assign")

    def __init__(self, kind: str, next_state: str | None = None, output: Any = None,
                 assign: dict | None = None):
        self.kind = kind
        self.next = next_state
        self.output = output
        self.assign = assign


BLOCK = Step("block")


class Retrier:
    def __init__(self, spec: dict):
        self.error_equals = list(spec["ErrorEquals"])
        self.interval = spec.get("IntervalSeconds", 1)
        self.max_attempts = spec.get("MaxAttempts", 3)
        self.backoff_rate = spec.get("BackoffRate", 2.0)
        self.max_delay = spec.get("MaxDelaySeconds")
        self.jitter = spec.get("JitterStrategy", "NONE")

    def delay(self, attempt: int, random_fraction: float) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        seconds = self.interval * (self.backoff_rate ** attempt)
        if self.max_delay is not None:
            seconds = min(seconds, self.max_delay)
        if self.jitter == "FULL":
            seconds *= random_fraction
        return seconds


class State:
    """Fields every state has; subclasses implement ``run``.

    ``machine_language`` is the state machine's query language; the state's
    own is its ``QueryLanguage`` field or that one.
    """

    type = ""
    #: JSONata: the state takes ``Arguments`` / its result is ``$states.result``.
    takes_arguments = False
    binds_result = False
    #: JSONPath: ``Parameters`` shape the state's input (not a Map's: those select items).
    takes_parameters = True

    def __init__(self, name: str, spec: dict, machine_language: str = JSONPATH):
        self.name = name
        self.spec = spec
        self.machine_language = machine_language
        self.language = state_language(spec, machine_language)
        check_fields(self.type, spec, self.language)
        self.next = spec.get("Next")
        self.end = bool(spec.get("End", False))
        self._final = self.end or self.next is None
        self.io = processor(spec, self.language, arguments=self.takes_arguments, result=self.binds_result,
                            parameters=self.takes_parameters)
        self.retriers = [Retrier(r) for r in spec.get("Retry", ())]
        self.catchers = [self.io.catcher(c, index) for index, c in enumerate(spec.get("Catch", ()))]

    def transition(self, output: Any, assign: dict | None = None) -> Step:
        if self._final:
            return Step("end", None, output, assign)
        return Step("next", self.next, output, assign)

    def run(self, frame: dict, runner: "Runner") -> Step:  # pragma: no cover - abstract
        raise NotImplementedError

    def children(self) -> list["Machine"]:
        return []


class Pass(State):
    type = "Pass"

    def __init__(self, name: str, spec: dict, machine_language: str = JSONPATH):
        super().__init__(name, spec, machine_language)
        self.has_result = "Result" in spec
        self.result = spec.get("Result")
        try:
            self.result_too_large = self.has_result and payload_size(self.result) > MAX_PAYLOAD_BYTES
        except ValueError:  # nested too deeply: check_size says so when the state runs
            self.result_too_large = True

    def run(self, frame: dict, runner: "Runner") -> Step:
        raw = frame["input"]
        value = self.io.effective_input(raw, frame, runner)
        if self.result_too_large:
            check_size(self.result, frame)
        output, assign = self.io.finish(raw, self.result if self.has_result else value, frame, runner)
        return self.transition(output, assign)


class Succeed(State):
    type = "Succeed"

    def run(self, frame: dict, runner: "Runner") -> Step:
        raw = frame["input"]
        output, _ = self.io.finish(raw, self.io.effective_input(raw, frame, runner), frame, runner)
        return Step("end", None, output)


def _fail_missing(field: str):
    def missing(frame: dict, path: str, data: Any) -> StatesError:
        return runtime_error(frame, f"The JSONPath '{path}' specified for the field '{field}' "
                                    f"could not be found in the input '{compact_json(data)}'")
    return missing


class Fail(State):
    type = "Fail"

    def __init__(self, name: str, spec: dict, machine_language: str = JSONPATH):
        super().__init__(name, spec, machine_language)
        self.error = self.io.field(spec, "Error", _fail_missing("ErrorPath"))
        self.cause = self.io.field(spec, "Cause", _fail_missing("CausePath"))

    @staticmethod
    def _text(reader, frame: dict, runner: "Runner") -> str | None:
        if reader is None:
            return None
        value = reader.read(frame, runner)
        return value if isinstance(value, str) else compact_json(value)

    def run(self, frame: dict, runner: "Runner") -> Step:
        raise StatesError(self._text(self.error, frame, runner), self._text(self.cause, frame, runner))


class Choice(State):
    type = "Choice"

    def __init__(self, name: str, spec: dict, machine_language: str = JSONPATH):
        super().__init__(name, spec, machine_language)
        # A matched rule uses its own Assign (and, in JSONata, Output); the Default the state's.
        self.rules = [
            (self.io.condition(rule, index), self.io.variant(rule, f"Choices[{index}]/"), rule["Next"])
            for index, rule in enumerate(spec.get("Choices", ()))
        ]
        self.default = spec.get("Default")

    def run(self, frame: dict, runner: "Runner") -> Step:
        raw = frame["input"]
        value = self.io.effective_input(raw, frame, runner)
        for condition, io, next_state in self.rules:
            if condition.matches(value, frame, runner):
                return Step("next", next_state, *io.finish(raw, value, frame, runner))
        if self.default is not None:
            return Step("next", self.default, *self.io.finish(raw, value, frame, runner))
        raise StatesError(errors.NO_CHOICE_MATCHED, "No Matches!")


class Wait(State):
    type = "Wait"

    def __init__(self, name: str, spec: dict, machine_language: str = JSONPATH):
        super().__init__(name, spec, machine_language)
        self.seconds = self.io.field(spec, "Seconds")
        self.timestamp = self.io.field(spec, "Timestamp")
        if self.seconds is None and self.timestamp is None:
            raise ValueError("a Wait state needs Seconds or Timestamp (or, in JSONPath, SecondsPath or TimestampPath)")

    def run(self, frame: dict, runner: "Runner") -> Step:
        waited = runner.take_answer(frame)
        if waited is None:
            due = self._due(frame, runner)
            if not runner.wait_until(frame, due, purpose="wait"):
                return BLOCK
        raw = frame["input"]
        return self.transition(*self.io.finish(raw, self.io.effective_input(raw, frame, runner), frame, runner))

    def _due(self, frame: dict, runner: "Runner") -> float:
        if self.seconds is not None:
            seconds = self.seconds.read(frame, runner)
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or (
                isinstance(seconds, float) and not seconds.is_integer()
            ):
                raise self.seconds.invalid(
                    frame, seconds, expected="integer",
                    path_message="The SecondsPath parameter cannot be parsed as a long value: {path} == {json}")
            if seconds < 0:
                raise self.seconds.invalid(
                    frame, seconds, expected="non-negative integer",
                    path_message="The SecondsPath parameter references a negative value: {path} == {json}")
            return runner.clock.now() + seconds
        text = self.timestamp.read(frame, runner)
        moment = parse_timestamp(text) if isinstance(text, str) else None
        if moment is None:
            raise self.timestamp.invalid(
                frame, text, expected="timestamp",
                path_message="The TimestampPath parameter does not reference a valid ISO-8601 "
                             "extended offset date-time format string: {path} == {shown}",
                expression_message="The {field} field cannot be parsed as an ISO-8601 "
                                   "extended offset date-time format string: {shown}")
        return moment.timestamp()


class Task(State):
    type = "Task"
    takes_arguments = True
    binds_result = True

    def __init__(self, name: str, spec: dict, machine_language: str = JSONPATH):
        super().__init__(name, spec, machine_language)
        self.resource = spec["Resource"]
        self.waits_for_token = self.resource.endswith(".waitForTaskToken")
        self.base_resource = self.resource[: -len(".waitForTaskToken")] if self.waits_for_token else self.resource
        self.timeout = self.io.field(spec, "TimeoutSeconds")
        self.heartbeat = self.io.field(spec, "HeartbeatSeconds")

    @staticmethod
    def _seconds(reader, frame: dict, runner: "Runner") -> int | None:
        if reader is None:
            return None
        value = reader.read(frame, runner)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise reader.invalid(
                frame, value, expected="positive integer",
                path_message="The {field} field refers to value {json} which is not a valid positive integer: {path}")
        return value

    def run(self, frame: dict, runner: "Runner") -> Step:
        raw = frame["input"]
        answer = runner.take_answer(frame)
        if answer is not None:
            if "error" in answer:
                raise StatesError(answer["error"], answer.get("cause"))
            if answer.get("merge"):
                return self.transition(*self.io.merge(raw, answer.get("result"), frame, runner))
            return self.transition(*self.io.finish(raw, answer.get("result"), frame, runner))
        timeout = self._seconds(self.timeout, frame, runner)
        heartbeat = self._seconds(self.heartbeat, frame, runner)
        if self.waits_for_token:  # the point exists before the call: its token is $$.Task.Token
            frame["point"] = runner.new_point()
        payload = check_payload(self.io.effective_input(raw, frame, runner), self.name, "was given parameters")
        outcome = runner.invoke(self, payload, frame, timeout, heartbeat)
        if self.waits_for_token or isinstance(outcome, Suspend):
            kind = "task-token" if self.waits_for_token else outcome.kind
            runner.suspend(frame, kind, payload, timeout, heartbeat,
                           merge=(kind in MERGED_KINDS and self.io.merges_suspend),
                           detail=None if self.waits_for_token else outcome.detail)
            return BLOCK
        return self.transition(*self.io.finish(raw, check_size(outcome, frame), frame, runner))


class Parallel(State):
    type = "Parallel"
    takes_arguments = True
    binds_result = True

    def __init__(self, name: str, spec: dict, machine_language: str = JSONPATH):
        super().__init__(name, spec, machine_language)
        self.branches = [compile_machine(branch, machine_language) for branch in spec.get("Branches", ())]

    def children(self) -> list["Machine"]:
        return self.branches

    def run(self, frame: dict, runner: "Runner") -> Step:
        raw = frame["input"]
        group = frame.get("group")
        if group is None:
            runner.start_branches(len(self.branches))
            value = check_payload(self.io.effective_input(raw, frame, runner), self.name, "was given parameters")
            group = frame["group"] = {
                "frames": [runner.new_frame(branch.start_at, value) for branch in self.branches],
                "results": [None] * len(self.branches),
            }
            runner.emit(frame, "ParallelStateStarted")
        scopes = runner.inner_scopes(frame)
        blocked = False
        for index, branch in enumerate(self.branches):
            child = group["frames"][index]
            if child is None:
                continue
            outcome = runner.run_frame(child, branch, f"{self.name}[{index}]", scopes)
            if outcome == "blocked":
                blocked = True
                continue
            if outcome == "failed":  # the group stays, for a redrive (see Runner.redrive)
                raise StatesError(child.get("error"), child.get("cause"))
            group["results"][index] = child["output"]
            group["frames"][index] = None
        if blocked:
            return BLOCK
        results = frame.pop("group")["results"]
        runner.emit(frame, "ParallelStateSucceeded")
        return self.transition(*self.io.finish(raw, check_size(results, frame), frame, runner))


_INTEGER_TEXT = re.compile(r"^[+-]?\d+$")


def _as_number(value: Any, kind: str) -> int | float | None:
    """A Map setting as a number: numbers and numeric strings (AWS parses those), else None."""
    if isinstance(value, str):
        text = value.strip()
        if kind == "integer":
            return int(text) if _INTEGER_TEXT.match(text) else None
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if kind == "integer":
        return int(value) if float(value).is_integer() else None
    return float(value)


class Map(State):
    type = "Map"
    binds_result = True
    takes_parameters = False

    def __init__(self, name: str, spec: dict, machine_language: str = JSONPATH):
        super().__init__(name, spec, machine_language)
        processor_spec = spec.get("ItemProcessor") or spec.get("Iterator") or {}
        self.processor = compile_machine(processor_spec, machine_language)
        # A distributed Map's iterations are child executions: they cannot read the Map's variables.
        self.distributed = (processor_spec.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED"
        #: A Distributed Map's ItemReader, ItemBatcher, ResultWriter, Label and execution type.
        self.dist = DistributedConfig(spec, processor_spec, self.io, self.language) if self.distributed else None
        if not self.distributed:
            refuse_on_inline(spec)
        #: The child executions' definition (a Distributed Map's ItemProcessor as a state machine).
        self.child_definition = {key: value for key, value in processor_spec.items() if key != "ProcessorConfig"}
        if machine_language != JSONPATH:
            self.child_definition["QueryLanguage"] = machine_language
        #: How many iterations run at once when MaxConcurrency is unset or 0 (AWS's numbers).
        self.default_concurrency = (limits.MAX_DISTRIBUTED_MAP_CONCURRENCY if self.distributed
                                    else limits.MAX_INLINE_MAP_CONCURRENCY)
        self.items = None if self.dist and self.dist.reader else self.io.items(spec)
        self.item_selector = self.io.item_selector(spec)
        self.max_concurrency = self.io.field(spec, "MaxConcurrency")
        self.tolerated_count = self.io.field(spec, "ToleratedFailureCount")
        self.tolerated_percentage = self.io.field(spec, "ToleratedFailurePercentage")

    def children(self) -> list["Machine"]:
        return [self.processor]

    @staticmethod
    def _number(reader, kind: str, frame: dict, runner: "Runner") -> int | float:
        value = reader.read(frame, runner)
        number = _as_number(value, kind)
        if number is None:
            raise reader.invalid(
                frame, value, expected=kind,
                path_message='The {field} field refers to value "{shown}" which is not a valid ' + kind + ": {path}")
        return number

    def _select(self, group: dict, index: int, item: Any, frame: dict, runner: "Runner") -> Any:
        if self.item_selector is None:
            return item
        return check_payload(self.item_selector.select(group["selector_input"], index, item, frame, runner),
                             self.name, "selected an item")

    def item_input(self, group: dict, index: int, frame: dict, runner: "Runner") -> Any:
        """The input of iteration ``index``: its item, through the ItemSelector unless already selected."""
        items = group["items"]
        return items[index] if group.get("selected") else self._select(group, index, items[index], frame, runner)

    def start(self, raw: Any, frame: dict, runner: "Runner") -> dict:
        """The group of a Map that starts: its items, concurrency and tolerated failures, nothing run yet."""
        value = self.io.effective_input(raw, frame, runner)
        if self.items is None:
            items = self.dist.read(value, frame, runner)
        else:
            items = check_payload(self.items.read(value, frame, runner), self.name, "was given items")
        concurrency = 0
        if self.max_concurrency is not None:
            concurrency = self._number(self.max_concurrency, "integer", frame, runner)
        count = percentage = None
        if self.tolerated_count is not None:
            count = self._number(self.tolerated_count, "integer", frame, runner)
            if count < 0:
                raise runtime_error(frame, "ToleratedFailureCount cannot be negative.")
        if self.tolerated_percentage is not None:
            percentage = self._number(self.tolerated_percentage, "float", frame, runner)
            if not 0 <= percentage <= 100:
                raise runtime_error(frame, "ToleratedFailurePercentage must be between 0 and 100.")
        group = {"selector_input": value, "next": 0, "active": {}, "failed": 0, "concurrency": concurrency or 0}
        if self.dist is not None:  # selected, then batched, before the children start
            items = [self._select(group, index, item, frame, runner) for index, item in enumerate(items)]
            if self.dist.batcher is not None:
                items = self.dist.batcher.batches(items, value, frame, runner)
            group["selected"] = True
        tolerated = count
        if percentage is not None:
            by_pct = math.floor(len(items) * percentage / 100)
            tolerated = by_pct if tolerated is None else max(tolerated, by_pct)
        group.update(items=items, results=[None] * len(items), tolerated=tolerated,
                     toleratedCount=count, toleratedPercentage=percentage)
        runner.emit(frame, "MapStateStarted", length=len(items))
        if runner.trace is not None:  # TestState's inspection data
            note(runner, frame, afterItemsPath=items,
                 afterItemSelector=[self.item_input(group, index, frame, runner) for index in range(len(items))],
                 **({"maxConcurrency": concurrency} if self.max_concurrency is not None else {}),
                 **({"toleratedFailureCount": count} if count is not None else {}),
                 **({"toleratedFailurePercentage": percentage} if percentage is not None else {}))
        return group

    def run(self, frame: dict, runner: "Runner") -> Step:
        raw = frame["input"]
        group = frame.get("group")
        if self.distributed and group is None:
            answer = runner.take_answer(frame)
            if answer is not None:  # the map run has ended
                if "error" in answer:
                    raise StatesError(answer["error"], answer.get("cause"))
                runner.emit(frame, "MapStateSucceeded")
                return self.transition(*self.io.finish(raw, check_size(answer.get("result"), frame), frame, runner))
            handler = runner.resolver.resolve(DISTRIBUTED_MAP)
            if handler is not None:
                return self._start_map_run(handler, raw, frame, runner)
        if group is None:
            group = frame["group"] = self.start(raw, frame, runner)
            if self.dist is not None and self.dist.writer is not None and self.dist.writer.resource:
                frame.pop("group")
                raise StatesError(errors.RUNTIME, f"No handler is configured for the resource "
                                                  f"'{self.dist.writer.resource}'.")
        scopes = () if self.distributed else runner.inner_scopes(frame)
        items, active = group["items"], group["active"]
        concurrency = group["concurrency"] or self.default_concurrency
        for key in list(active):
            self._advance(int(key), active[key], frame, group, runner, scopes)
        while group["next"] < len(items) and len(active) < concurrency:
            runner.start_branches(1)
            index = group["next"]
            group["next"] = index + 1
            child = runner.new_frame(self.processor.start_at, self.item_input(group, index, frame, runner))
            active[str(index)] = child
            self._advance(index, child, frame, group, runner, scopes)
        if active:
            return BLOCK
        frame.pop("group")
        runner.emit(frame, "MapStateSucceeded")
        results = group["results"]
        if self.dist is not None and self.dist.writer is not None:
            results = transform([_record(item, result) for item, result in zip(items, results)],
                                self.dist.writer.transformation)
        return self.transition(*self.io.finish(raw, check_size(results, frame), frame, runner))

    def _start_map_run(self, handler, raw: Any, frame: dict, runner: "Runner") -> Step:
        """Hand the children to the map-run handler, which answers when the last one has ended."""
        group = self.start(raw, frame, runner)
        writer = self.dist.writer
        payload = {
            "state": self.name, "label": self.dist.label, "executionType": self.dist.execution_type,
            "definition": self.child_definition, "children": group["items"],
            "maxConcurrency": group["concurrency"], "toleratedFailureCount": group["toleratedCount"],
            "toleratedFailurePercentage": group["toleratedPercentage"],
            "resultWriter": None if writer is None else writer.request(group["selector_input"], frame, runner),
            "batched": self.dist.batcher is not None,
        }
        context = runner.task_context(DISTRIBUTED_MAP, self.name, frame)
        try:
            outcome = handler(payload, context)
        except Exception as exc:  # noqa: BLE001 - the map run could not start: the Map fails
            raise task_failure(exc) from None
        if isinstance(outcome, Suspend):
            runner.suspend(frame, outcome.kind, {"items": len(group["items"])}, None, None, merge=False,
                           detail=outcome.detail)
            return BLOCK
        runner.emit(frame, "MapStateSucceeded")
        return self.transition(*self.io.finish(raw, check_size(outcome, frame), frame, runner))

    def _advance(self, index: int, child: dict, frame: dict, group: dict, runner: "Runner",
                 scopes: tuple) -> None:
        outcome = runner.run_frame(child, self.processor, f"{self.name}[{index}]", scopes)
        if outcome == "blocked":
            return
        tolerated = group["tolerated"]
        if outcome == "failed" and tolerated is None:  # the group stays, for a redrive (see Runner.redrive)
            raise StatesError(child.get("error"), child.get("cause"))
        del group["active"][str(index)]
        if outcome == "succeeded":
            group["results"][index] = child["output"]
            return
        group["failed"] += 1
        group.setdefault("failedIndexes", []).append(index)
        if group["failed"] > tolerated:
            raise StatesError(errors.EXCEED_TOLERATED_FAILURE_THRESHOLD,
                              "The specified tolerated failure threshold for the Map Run has been exceeded.")
        group["results"][index] = {"Error": child.get("error"), "Cause": child.get("cause")}


def _record(item: Any, result: Any) -> dict:
    """An inline iteration as a result-file entry (what ``WriterConfig`` transforms)."""
    failed = isinstance(result, dict) and set(result) == {"Error", "Cause"}
    record = {"Input": compact_json(item), "InputDetails": {"Included": True},
              "Status": "FAILED" if failed else "SUCCEEDED"}
    if failed:
        record.update(result)
    else:
        record.update(Output=compact_json(result), OutputDetails={"Included": True})
    return record


STATE_TYPES: dict[str, type[State]] = {
    cls.type: cls for cls in (Pass, Succeed, Fail, Choice, Wait, Task, Parallel, Map)
}


class Machine:
    """A compiled list of states with its StartAt: a definition, branch or processor.

    ``language`` is the state machine's query language; a definition's comes
    from its ``QueryLanguage`` (default JSONPath), and its branches and
    processors inherit it (not the enclosing state's).
    """

    def __init__(self, spec: dict, language: str | None = None):
        self.spec = spec
        if language is None:
            language = spec.get("QueryLanguage", JSONPATH)
            if language not in (JSONPATH, JSONATA):
                raise ValueError(f"'QueryLanguage' must be 'JSONPath' or 'JSONata', not {language!r}")
        elif "QueryLanguage" in spec:
            raise ValueError("Field 'QueryLanguage' is not supported in a branch or an ItemProcessor")
        self.language = language
        self.start_at = spec.get("StartAt")
        self.timeout_seconds = spec.get("TimeoutSeconds")
        self.states: dict[str, State] = {}
        for name, state_spec in (spec.get("States") or {}).items():
            cls = STATE_TYPES.get(state_spec.get("Type"))
            if cls is None:
                raise ValueError(f"state {name!r} has an unknown Type {state_spec.get('Type')!r}")
            self.states[name] = cls(name, state_spec, language)


def compile_machine(spec: dict, language: str | None = None) -> Machine:
    """Compile a definition (``language`` None) or a branch/processor of a ``language`` machine."""
    return Machine(spec, language)
