"""Compiled states: a definition parsed once into objects that know how to run.

``compile_machine`` turns a definition (or a Parallel branch, or a Map's
ItemProcessor) into a :class:`Machine` of :class:`State` objects, with every
path, template and rule already compiled. Each state's ``run(frame, runner)``
does one step for a frame positioned at that state and returns a
:class:`Step`: go to the next state, end the frame, or block (suspended).

Everything a state needs to remember between steps lives in the frame (a
plain JSON object inside the snapshot), never in these objects, which are
shared by every execution of the same definition.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from . import errors
from .choice import compile_rule
from .errors import StatesError
from .intrinsics import compile_intrinsic, is_intrinsic
from .paths import PathNotFound, compile_path, compile_reference_path
from .tasks import Suspend
from .templates import Template, compact_json
from .timestamps import parse_timestamp

if TYPE_CHECKING:
    from .engine import Runner

_UNSET = object()

#: AWS's limit on a state's input, output and task results.
MAX_PAYLOAD_BYTES = 256 * 1024


def check_size(value: Any, frame: dict) -> Any:
    """Fail with States.DataLimitExceeded when ``value`` is over the payload limit."""
    if len(compact_json(value).encode()) > MAX_PAYLOAD_BYTES:
        raise StatesError(
            errors.DATA_LIMIT_EXCEEDED,
            f"The state/task '{frame['at']}' returned a result with a size exceeding "
            "the maximum number of bytes service limit.",
        )
    return value


class Step:
    """What a state's run produced. ``kind`` is 'next', 'end' or 'block'."""

    __slots__ = ("kind", "next", "output")

    def __init__(self, kind: str, next_state: str | None = None, output: Any = None):
        self.kind = kind
        self.next = next_state
        self.output = output


BLOCK = Step("block")


def _runtime(runner: "Runner", frame: dict, message: str) -> StatesError:
    return errors.state_failure(errors.RUNTIME, frame["at"], frame["eid"], message)


class PathIO:
    """InputPath / Parameters / ResultSelector / ResultPath / OutputPath.

    Missing fields mean the identity (``$``); an explicit ``null`` means the
    spec's special case (empty object for Input/OutputPath, keep the input
    for ResultPath).
    """

    def __init__(self, spec: dict, result_path_default: str | None = "$"):
        self.input_path = self._path(spec, "InputPath")
        self.output_path = self._path(spec, "OutputPath")
        self.parameters = Template(spec["Parameters"]) if "Parameters" in spec else None
        self.result_selector = (
            Template(spec["ResultSelector"]) if "ResultSelector" in spec else None
        )
        self.has_result_path = "ResultPath" in spec
        raw = spec.get("ResultPath", result_path_default)
        self.result_path = None if raw is None else compile_reference_path(raw)

    @staticmethod
    def _path(spec: dict, field: str):
        if field not in spec:
            return _UNSET
        if spec[field] is None:
            return None
        path = compile_path(spec[field])
        return _UNSET if path.root == "input" and path.keys == () else path

    def _select(self, path, value: Any, field: str, frame: dict, runner: "Runner") -> Any:
        if path is _UNSET:
            return value
        if path is None:
            return {}
        try:
            return path.get(value, runner.env(frame))
        except PathNotFound:
            raise _runtime(
                runner, frame, f"Invalid path '{path.text}' : No results for path: "
                + _bracketed(path.text)
            ) from None

    def effective_input(self, raw: Any, frame: dict, runner: "Runner") -> Any:
        """InputPath then Parameters."""
        value = self._select(self.input_path, raw, "InputPath", frame, runner)
        if self.parameters is not None:
            value = self.parameters.evaluate(value, runner.env(frame))
        return value

    def select_result(self, result: Any, frame: dict, runner: "Runner") -> Any:
        if self.result_selector is None:
            return result
        return self.result_selector.evaluate(result, runner.env(frame))

    def place_result(self, raw: Any, result: Any, frame: dict, runner: "Runner") -> Any:
        """ResultPath: put the result into the state's raw input."""
        if self.result_path is None:
            return raw
        try:
            return self.result_path.put(raw, result)
        except PathNotFound:
            raise errors.state_failure(
                errors.RESULT_PATH_MATCH_FAILURE, frame["at"], frame["eid"],
                f"Unable to apply step \"ResultPath\" to input '{compact_json(raw)}'",
            ) from None

    def output(self, value: Any, frame: dict, runner: "Runner") -> Any:
        return self._select(self.output_path, value, "OutputPath", frame, runner)

    def finish(self, raw: Any, result: Any, frame: dict, runner: "Runner") -> Any:
        """ResultSelector, ResultPath and OutputPath applied to a result."""
        result = self.select_result(result, frame, runner)
        return self.output(self.place_result(raw, result, frame, runner), frame, runner)


def _bracketed(text: str) -> str:
    """``$.a.b`` written as AWS's error messages do: ``$['a']['b']``."""
    path = compile_path(text)
    if path.keys is None:
        return text
    out = "$"
    for key in path.keys:
        out += f"['{key}']" if isinstance(key, str) else f"[{key}]"
    return out


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


class Catcher:
    def __init__(self, spec: dict):
        self.error_equals = list(spec["ErrorEquals"])
        self.next = spec["Next"]
        self.result_path = (
            None if spec.get("ResultPath", "$") is None
            else compile_reference_path(spec.get("ResultPath", "$"))
        )


class State:
    """Fields every state has; subclasses implement ``run``."""

    type = ""

    def __init__(self, name: str, spec: dict):
        self.name = name
        self.spec = spec
        self.next = spec.get("Next")
        self.end = bool(spec.get("End", False))
        self.io = PathIO(spec)
        self.retriers = [Retrier(r) for r in spec.get("Retry", ())]
        self.catchers = [Catcher(c) for c in spec.get("Catch", ())]

    def transition(self, output: Any) -> Step:
        return Step("end", None, output) if self.end or self.next is None else Step("next", self.next, output)

    def run(self, frame: dict, runner: "Runner") -> Step:  # pragma: no cover - abstract
        raise NotImplementedError

    def children(self) -> list["Machine"]:
        return []


class Pass(State):
    type = "Pass"

    def __init__(self, name: str, spec: dict):
        super().__init__(name, spec)
        self.has_result = "Result" in spec
        self.result = spec.get("Result")
        self.result_too_large = self.has_result and (
            len(compact_json(self.result).encode()) > MAX_PAYLOAD_BYTES)

    def run(self, frame: dict, runner: "Runner") -> Step:
        raw = frame["input"]
        value = self.io.effective_input(raw, frame, runner)
        if self.result_too_large:
            check_size(self.result, frame)
        result = self.result if self.has_result else value
        output = self.io.output(self.io.place_result(raw, result, frame, runner), frame, runner)
        return self.transition(output)


class Succeed(State):
    type = "Succeed"

    def run(self, frame: dict, runner: "Runner") -> Step:
        value = self.io.effective_input(frame["input"], frame, runner)
        return Step("end", None, self.io.output(value, frame, runner))


class Fail(State):
    type = "Fail"

    def __init__(self, name: str, spec: dict):
        super().__init__(name, spec)
        self.error = self._source(spec, "Error")
        self.cause = self._source(spec, "Cause")

    @staticmethod
    def _source(spec: dict, field: str):
        if f"{field}Path" in spec:
            text = spec[f"{field}Path"]
            return (f"{field}Path", compile_intrinsic(text) if is_intrinsic(text) else compile_path(text))
        return (None, spec.get(field))

    def _value(self, source, frame: dict, runner: "Runner"):
        field, value = source
        if field is None:
            return value
        data = frame["input"]
        try:
            found = value.evaluate(data, runner.env(frame)) if hasattr(value, "evaluate") \
                else value.get(data, runner.env(frame))
        except PathNotFound as missing:
            raise _runtime(
                runner, frame, f"The JSONPath '{missing.path}' specified for the field "
                f"'{field}' could not be found in the input '{compact_json(data)}'"
            ) from None
        return found if isinstance(found, str) else compact_json(found)

    def run(self, frame: dict, runner: "Runner") -> Step:
        raise StatesError(self._value(self.error, frame, runner), self._value(self.cause, frame, runner))


class Choice(State):
    type = "Choice"

    def __init__(self, name: str, spec: dict):
        super().__init__(name, spec)
        self.rules = [(compile_rule(rule), rule["Next"]) for rule in spec.get("Choices", ())]
        self.default = spec.get("Default")

    def run(self, frame: dict, runner: "Runner") -> Step:
        value = self.io.effective_input(frame["input"], frame, runner)
        env = runner.env(frame)
        for rule, next_state in self.rules:
            try:
                matched = rule.matches(value, env)
            except StatesError as failure:  # the rule cannot name its state; add AWS's prefix
                raise errors.state_failure(failure.error, frame["at"], frame["eid"], failure.cause) from None
            if matched:
                return Step("next", next_state, self.io.output(value, frame, runner))
        if self.default is not None:
            return Step("next", self.default, self.io.output(value, frame, runner))
        raise StatesError(errors.NO_CHOICE_MATCHED, "No Matches!")


class Wait(State):
    type = "Wait"

    def run(self, frame: dict, runner: "Runner") -> Step:
        waited = runner.take_answer(frame)
        if waited is None:
            due = self._due(frame, runner)
            if not runner.wait_until(frame, due, purpose="wait"):
                return BLOCK
        value = self.io.effective_input(frame["input"], frame, runner)
        return self.transition(self.io.output(value, frame, runner))

    def _due(self, frame: dict, runner: "Runner") -> float:
        spec = self.spec
        now = runner.clock.now()
        if "Seconds" in spec:
            return now + spec["Seconds"]
        if "Timestamp" in spec:
            return parse_timestamp(spec["Timestamp"]).timestamp()
        data = frame["input"]
        if "SecondsPath" in spec:
            path = spec["SecondsPath"]
            seconds = self._lookup(path, "SecondsPath", frame, runner)
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or (
                isinstance(seconds, float) and not seconds.is_integer()
            ):
                raise _runtime(runner, frame, f"The SecondsPath parameter cannot be parsed as a long value: {path} == {compact_json(seconds)}")
            if seconds < 0:
                raise _runtime(runner, frame, f"The SecondsPath parameter references a negative value: {path} == {compact_json(seconds)}")
            return now + seconds
        path = spec["TimestampPath"]
        text = self._lookup(path, "TimestampPath", frame, runner)
        moment = parse_timestamp(text) if isinstance(text, str) else None
        if moment is None:
            shown = text if isinstance(text, str) else compact_json(text)
            raise _runtime(runner, frame, "The TimestampPath parameter does not reference a valid "
                           f"ISO-8601 extended offset date-time format string: {path} == {shown}")
        del data
        return moment.timestamp()

    def _lookup(self, path: str, field: str, frame: dict, runner: "Runner") -> Any:
        try:
            return compile_path(path).get(frame["input"], runner.env(frame))
        except PathNotFound:
            raise _runtime(runner, frame, f"Invalid path '{path}' : No results for path: {_bracketed(path)}") from None


class Task(State):
    type = "Task"

    def __init__(self, name: str, spec: dict):
        super().__init__(name, spec)
        self.resource = spec["Resource"]
        self.waits_for_token = self.resource.endswith(".waitForTaskToken")
        self.base_resource = self.resource[: -len(".waitForTaskToken")] if self.waits_for_token else self.resource
        self.timeout = spec.get("TimeoutSeconds")
        self.timeout_path = compile_path(spec["TimeoutSecondsPath"]) if "TimeoutSecondsPath" in spec else None
        self.heartbeat = spec.get("HeartbeatSeconds")
        self.heartbeat_path = compile_path(spec["HeartbeatSecondsPath"]) if "HeartbeatSecondsPath" in spec else None

    def _seconds(self, fixed, path, field: str, frame: dict, runner: "Runner"):
        if path is None:
            return fixed
        try:
            value = path.get(frame["input"], runner.env(frame))
        except PathNotFound:
            raise _runtime(runner, frame, f"Invalid path '{path.text}' : No results for path: {_bracketed(path.text)}") from None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _runtime(runner, frame, f"The {field} field refers to value {compact_json(value)} "
                           f"which is not a valid positive integer: {path.text}")
        return value

    def run(self, frame: dict, runner: "Runner") -> Step:
        raw = frame["input"]
        answer = runner.take_answer(frame)
        if answer is not None:
            if "error" in answer:
                raise StatesError(answer["error"], answer.get("cause"))
            if answer.get("merge"):
                output = deep_merge(raw, answer.get("result"))
                return self.transition(self.io.output(output, frame, runner))
            return self.transition(self.io.finish(raw, answer.get("result"), frame, runner))
        timeout = self._seconds(self.timeout, self.timeout_path, "TimeoutSecondsPath", frame, runner)
        heartbeat = self._seconds(self.heartbeat, self.heartbeat_path, "HeartbeatSecondsPath", frame, runner)
        if self.waits_for_token:  # the point exists before the call: its token is $$.Task.Token
            frame["point"] = runner.new_point()
        payload = self.io.effective_input(raw, frame, runner)
        outcome = runner.invoke(self, payload, frame, timeout, heartbeat)
        if self.waits_for_token or isinstance(outcome, Suspend):
            kind = "task-token" if self.waits_for_token else outcome.kind
            runner.suspend(frame, kind, payload, timeout, heartbeat,
                           merge=(kind == "suspend" and not self.io.has_result_path),
                           detail=None if self.waits_for_token else outcome.detail)
            return BLOCK
        return self.transition(self.io.finish(raw, check_size(outcome, frame), frame, runner))


def deep_merge(base: Any, extra: Any) -> Any:
    """Objects merge key by key, recursively; anything else is replaced."""
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(base)
        for key, value in extra.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return extra


class Parallel(State):
    type = "Parallel"

    def __init__(self, name: str, spec: dict):
        super().__init__(name, spec)
        self.branches = [compile_machine(branch) for branch in spec.get("Branches", ())]

    def children(self) -> list["Machine"]:
        return self.branches

    def run(self, frame: dict, runner: "Runner") -> Step:
        raw = frame["input"]
        group = frame.get("group")
        if group is None:
            value = self.io.effective_input(raw, frame, runner)
            group = frame["group"] = {
                "frames": [runner.new_frame(branch.start_at, value) for branch in self.branches],
                "results": [None] * len(self.branches),
            }
            runner.emit(frame, "ParallelStateStarted")
        blocked = False
        for index, branch in enumerate(self.branches):
            child = group["frames"][index]
            if child is None:
                continue
            outcome = runner.run_frame(child, branch, f"{self.name}[{index}]")
            if outcome == "blocked":
                blocked = True
                continue
            if outcome == "failed":
                del frame["group"]
                raise StatesError(child.get("error"), child.get("cause"))
            group["results"][index] = child["output"]
            group["frames"][index] = None
        if blocked:
            return BLOCK
        results = frame.pop("group")["results"]
        runner.emit(frame, "ParallelStateSucceeded")
        return self.transition(self.io.finish(raw, check_size(results, frame), frame, runner))


class Map(State):
    type = "Map"

    def __init__(self, name: str, spec: dict):
        super().__init__(name, spec)
        processor = spec.get("ItemProcessor") or spec.get("Iterator") or {}
        self.processor = compile_machine(processor)
        self.items_path = compile_path(spec.get("ItemsPath", "$"))
        selector = spec.get("ItemSelector", spec.get("Parameters") if "Parameters" in spec else None)
        self.item_selector = Template(selector) if selector is not None else None
        # Map's own Parameters are the legacy ItemSelector, not the state input.
        self.io.parameters = None
        self.max_concurrency = spec.get("MaxConcurrency", 0)
        self.max_concurrency_path = spec.get("MaxConcurrencyPath")
        self.tolerated_count = spec.get("ToleratedFailureCount")
        self.tolerated_count_path = spec.get("ToleratedFailureCountPath")
        self.tolerated_percentage = spec.get("ToleratedFailurePercentage")
        self.tolerated_percentage_path = spec.get("ToleratedFailurePercentagePath")

    def children(self) -> list["Machine"]:
        return [self.processor]

    def _number(self, path_text: str, field: str, kind: str, frame: dict, runner: "Runner"):
        try:
            value = compile_path(path_text).get(frame["input"], runner.env(frame))
        except PathNotFound:
            raise _runtime(runner, frame, f"Invalid path '{path_text}' : No results for path: {_bracketed(path_text)}") from None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind == "integer":
            ok = ok and float(value).is_integer()
        if not ok:
            shown = value if isinstance(value, str) else compact_json(value)
            raise _runtime(runner, frame, f"The {field} field refers to value \"{shown}\" "
                           f"which is not a valid {kind}: {path_text}")
        return int(value) if kind == "integer" else float(value)

    def _start(self, raw: Any, frame: dict, runner: "Runner") -> dict:
        value = self.io.effective_input(raw, frame, runner)
        try:
            items = self.items_path.get(value, runner.env(frame))
        except PathNotFound:
            raise _runtime(runner, frame, f"Invalid path '{self.items_path.text}' : No results for path: {_bracketed(self.items_path.text)}") from None
        if not isinstance(items, list):
            raise _runtime(runner, frame, f"Map state input must be an array but was: {compact_json(items)}")
        concurrency = self.max_concurrency
        if self.max_concurrency_path:
            concurrency = self._number(self.max_concurrency_path, "MaxConcurrencyPath", "integer", frame, runner)
        tolerated = None
        if self.tolerated_count_path or self.tolerated_count is not None:
            count = (self._number(self.tolerated_count_path, "ToleratedFailureCountPath", "integer", frame, runner)
                     if self.tolerated_count_path else self.tolerated_count)
            if count < 0:
                raise _runtime(runner, frame, "ToleratedFailureCount cannot be negative.")
            tolerated = count
        if self.tolerated_percentage_path or self.tolerated_percentage is not None:
            pct = (self._number(self.tolerated_percentage_path, "ToleratedFailurePercentagePath", "float", frame, runner)
                   if self.tolerated_percentage_path else self.tolerated_percentage)
            if not 0 <= pct <= 100:
                raise _runtime(runner, frame, "ToleratedFailurePercentage must be between 0 and 100.")
            by_pct = math.floor(len(items) * pct / 100)
            tolerated = by_pct if tolerated is None else max(tolerated, by_pct)
        runner.emit(frame, "MapStateStarted", length=len(items))
        return {
            "items": items,
            "selector_input": value,
            "next": 0,
            "active": {},
            "results": [None] * len(items),
            "failed": 0,
            "tolerated": tolerated,
            "concurrency": concurrency or 0,
        }

    def run(self, frame: dict, runner: "Runner") -> Step:
        raw = frame["input"]
        group = frame.get("group")
        if group is None:
            group = frame["group"] = self._start(raw, frame, runner)
        items, active = group["items"], group["active"]
        for key in list(active):
            self._advance(int(key), active[key], frame, group, runner)
        while group["next"] < len(items) and (
            not group["concurrency"] or len(active) < group["concurrency"]
        ):
            index = group["next"]
            group["next"] = index + 1
            item_input = items[index]
            if self.item_selector is not None:
                env = runner.env(frame, map_item={"Index": index, "Value": items[index]})
                item_input = self.item_selector.evaluate(group["selector_input"], env)
            child = runner.new_frame(self.processor.start_at, item_input)
            active[str(index)] = child
            self._advance(index, child, frame, group, runner)
        if active:
            return BLOCK
        frame.pop("group")
        runner.emit(frame, "MapStateSucceeded")
        return self.transition(self.io.finish(raw, check_size(group["results"], frame), frame, runner))

    def _advance(self, index: int, child: dict, frame: dict, group: dict, runner: "Runner") -> None:
        outcome = runner.run_frame(child, self.processor, f"{self.name}[{index}]")
        if outcome == "blocked":
            return
        del group["active"][str(index)]
        if outcome == "succeeded":
            group["results"][index] = child["output"]
            return
        group["failed"] += 1
        tolerated = group["tolerated"]
        if tolerated is None:
            frame.pop("group")
            raise StatesError(child.get("error"), child.get("cause"))
        if group["failed"] > tolerated:
            frame.pop("group")
            raise StatesError(errors.EXCEED_TOLERATED_FAILURE_THRESHOLD,
                              "The specified tolerated failure threshold for the Map Run has been exceeded.")
        group["results"][index] = {"Error": child.get("error"), "Cause": child.get("cause")}


STATE_TYPES: dict[str, type[State]] = {
    cls.type: cls for cls in (Pass, Succeed, Fail, Choice, Wait, Task, Parallel, Map)
}


class Machine:
    """A compiled list of states with its StartAt: a definition, branch or processor."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.start_at = spec.get("StartAt")
        self.timeout_seconds = spec.get("TimeoutSeconds")
        self.states: dict[str, State] = {}
        for name, state_spec in (spec.get("States") or {}).items():
            cls = STATE_TYPES.get(state_spec.get("Type"))
            if cls is None:
                raise ValueError(f"state {name!r} has an unknown Type {state_spec.get('Type')!r}")
            self.states[name] = cls(name, state_spec)


def compile_machine(spec: dict) -> Machine:
    return Machine(spec)
