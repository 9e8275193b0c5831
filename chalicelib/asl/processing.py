"""Input and output processing, one class per query language.

A state compiles one *processor* for its query language and runs through it:

* :class:`PathIO` (JSONPath, the 2016 language): InputPath, Parameters,
  ResultSelector, ResultPath, OutputPath and ``.$`` templates;
* :class:`JsonataIO` (JSONata): Arguments, Output and ``{% %}`` expressions
  reading ``$states.input``, ``$states.result``, ``$states.errorOutput`` and
  ``$states.context``.

Both have the same methods, so a state class is one piece of code whatever
its language: ``effective_input`` gives what the state works on, ``finish``
turns its result into ``(output, assignments)``, and the compile-time helpers
(``field``, ``condition``, ``catcher``, ``items``, ``item_selector``,
``variant``) build the language's version of a field, a Choice rule, a
Catcher or a Map's items. ``Assign`` exists in both languages: its values are
computed with the output (both see the variables as they were when the state
was entered) and the runner applies them once the state is done.

It is long because the two processors have the same methods and are kept side by
side, so a field that one language gains is seen to be missing from the other.
"""
from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any, Callable

from . import errors
from .choice import OPERATORS, compile_rule
from .errors import StatesError
from .expressions import (
    JsonataTemplate,
    compile_expression,
    evaluation_bindings,
    is_expression,
)
from .intrinsics import compile_intrinsic, is_intrinsic
from .paths import PathNotFound, compile_path, compile_reference_path
from .templates import Template, compact_json

if TYPE_CHECKING:
    from .engine import Runner

JSONPATH = "JSONPath"
JSONATA = "JSONata"

#: What ``finish`` returns: the state's output and the variables it assigns (or None).
Outcome = tuple[Any, "dict | None"]

_UNSET = object()
_NAME = re.compile(r"^[^\W\d]\w*$")  # a JSONata/JSONPath variable name: letters, digits, underscores


class Trace:
    """What one frame's state made of its data at each I/O step, by AWS's names (``afterInputPath``,
    ``afterParameters``, ``result``, ``afterResultSelector``, ``afterResultPath``, ``afterArguments``, ...):
    TestState's ``inspectionData``. Set as ``runner.trace``; the processors note into it. They call
    :func:`note` only when a trace is set, so an execution pays one attribute check per step (a call
    each time cost a 1,000-state Pass chain 5%)."""

    __slots__ = ("frame", "data")

    def __init__(self, frame: dict):
        self.frame = frame
        self.data: dict[str, Any] = {}


def note(runner: "Runner", frame: dict, **steps: Any) -> None:
    """Note I/O steps of ``frame`` into the runner's trace, when it traces that frame."""
    trace = runner.trace
    if trace is not None and trace.frame is frame:
        trace.data.update(steps)


def runtime_error(frame: dict, message: str) -> StatesError:
    return errors.state_failure(errors.RUNTIME, frame["at"], frame["eid"], message)


def bracketed(text: str) -> str:
    """A path written as AWS's error messages do: ``$['a']['b']`` (``$name[...]`` for a variable)."""
    path = compile_path(text)
    if path.keys is None:
        return text
    out = "$$" if path.root == "context" else f"${path.variable}" if path.root == "variable" else "$"
    for key in path.keys:
        out += f"['{key}']" if isinstance(key, str) else f"[{key}]"
    return out


def invalid_path(frame: dict, text: str) -> StatesError:
    return runtime_error(frame, f"Invalid path '{text}' : No results for path: {bracketed(text)}")


def shown(value: Any) -> str:
    """A value as AWS quotes it in causes: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else compact_json(value)


def place_result(result_path, raw: Any, result: Any, frame: dict) -> Any:
    """ResultPath: the result put into a copy of the raw input (None keeps the input)."""
    if result_path is None:
        return raw
    try:
        return result_path.put(raw, result)
    except PathNotFound:
        raise errors.state_failure(
            errors.RESULT_PATH_MATCH_FAILURE, frame["at"], frame["eid"],
            f"Unable to apply step \"ResultPath\" to input '{compact_json(raw)}'",
        ) from None


def deep_merge(base: Any, extra: Any) -> Any:
    """Objects merge key by key, recursively; anything else is replaced."""
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(base)
        for key, value in extra.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return extra


def _variable_names(assign: Any, strip_suffix: bool) -> None:
    """Check the names an ``Assign`` object declares."""
    if not isinstance(assign, dict):
        raise ValueError("the field 'Assign' must be an object")
    for key in assign:
        name = key[:-2] if strip_suffix and key.endswith(".$") else key
        if not _NAME.match(name):
            raise ValueError(f"'{name}' in the field 'Assign' is not a valid variable name")
        if name == "states":
            raise ValueError("'states' in the field 'Assign' is reserved: $states is the state's own data")


# -- fields read at run time ------------------------------------------------------------------

class Literal:
    """A field given as a plain value."""

    __slots__ = ("field", "value")

    def __init__(self, field: str, value: Any):
        self.field = field
        self.value = value

    def read(self, frame: dict, runner: "Runner") -> Any:
        return self.value

    def invalid(self, frame: dict, value: Any, *, path_message: str, expected: str,
                expression_message: str | None = None) -> StatesError:
        return runtime_error(frame, f"The field '{self.field}' is {shown(value)}, which is not a valid {expected}.")


class PathField:
    """A field read through its ``...Path`` variant (a path or, for Fail, an intrinsic)."""

    __slots__ = ("field", "text", "source", "missing")

    def __init__(self, field: str, text: str, missing: Callable[[dict, str, Any], StatesError] | None = None):
        self.field = field
        self.text = text
        self.source = compile_intrinsic(text) if is_intrinsic(text) else compile_path(text)
        self.missing = missing

    def read(self, frame: dict, runner: "Runner") -> Any:
        data = frame["input"]
        try:
            if hasattr(self.source, "evaluate"):
                return self.source.evaluate(data, runner.env(frame))
            return self.source.get(data, runner.env(frame))
        except PathNotFound as exc:
            if self.missing is not None:
                raise self.missing(frame, exc.path, data) from None
            raise invalid_path(frame, self.text) from None

    def invalid(self, frame: dict, value: Any, *, path_message: str, expected: str,
                expression_message: str | None = None) -> StatesError:
        return runtime_error(frame, path_message.format(
            field=self.field, path=self.text, json=compact_json(value), shown=shown(value)))


class ExpressionField:
    """A field given as a JSONata expression."""

    __slots__ = ("field", "expression")

    def __init__(self, field: str, text: str):
        self.field = field
        self.expression = compile_expression(text)

    def read(self, frame: dict, runner: "Runner") -> Any:
        bindings = jsonata_bindings(frame, runner, self.expression.uses_context)
        return self.expression.evaluate(bindings, self.field, frame)

    def invalid(self, frame: dict, value: Any, *, path_message: str, expected: str,
                expression_message: str | None = None) -> StatesError:
        if expression_message is not None:
            return errors.state_failure(errors.QUERY_EVALUATION_ERROR, frame["at"], frame["eid"],
                                        expression_message.format(field=self.field, shown=shown(value)))
        return self.expression.wrong_type(self.field, frame, expected, value)


def jsonata_bindings(frame: dict, runner: "Runner", uses_context: bool, map_item: dict | None = None,
                     **states: Any) -> dict:
    """What an expression in this frame's current state sees: ``$states`` and the variables."""
    env = runner.env(frame, map_item)
    data = {"input": frame["input"], **states}
    if uses_context:
        data["context"] = env.context
    return evaluation_bindings(data, env.variables)


# -- JSONPath -----------------------------------------------------------------------------------

class PathIO:
    """InputPath / Parameters / ResultSelector / ResultPath / OutputPath, and Assign.

    Missing fields mean the identity (``$``); an explicit ``null`` means the
    spec's special case (empty object for Input/OutputPath, keep the input
    for ResultPath). In ``Assign``, ``$`` is the state's result (after
    ResultSelector), or its effective input for states without one.
    """

    language = JSONPATH

    def __init__(self, spec: dict, parameters: bool = True):
        self.input_path = self._path(spec, "InputPath")
        self.output_path = self._path(spec, "OutputPath")
        self.parameters = Template(spec["Parameters"]) if parameters and "Parameters" in spec else None
        self.result_selector = Template(spec["ResultSelector"]) if "ResultSelector" in spec else None
        self.has_result_path = "ResultPath" in spec
        raw = spec.get("ResultPath", "$")
        self.result_path = None if raw is None else compile_reference_path(raw)
        self.assign = self._assign(spec)
        self._refresh()

    def _refresh(self) -> None:
        # Fast paths for the common cases, where a step is the identity.
        self._plain_input = self.input_path is _UNSET and self.parameters is None
        self._plain_output = (self.result_selector is None and self.assign is None
                              and self.output_path is _UNSET
                              and self.result_path is not None and self.result_path.keys == ())

    @staticmethod
    def _assign(spec: dict) -> Template | None:
        if "Assign" not in spec:
            return None
        _variable_names(spec["Assign"], strip_suffix=True)
        return Template(spec["Assign"])

    @staticmethod
    def _path(spec: dict, field: str):
        if field not in spec:
            return _UNSET
        if spec[field] is None:
            return None
        path = compile_path(spec[field])
        return _UNSET if path.root == "input" and path.keys == () else path

    @property
    def merges_suspend(self) -> bool:
        """A ``module:suspend`` answer is deep-merged into the input when there is no ResultPath."""
        return not self.has_result_path

    def _select(self, path, value: Any, frame: dict, runner: "Runner") -> Any:
        if path is _UNSET:
            return value
        if path is None:
            return {}
        try:
            return path.get(value, runner.env(frame))
        except PathNotFound:
            raise invalid_path(frame, path.text) from None

    def effective_input(self, raw: Any, frame: dict, runner: "Runner") -> Any:
        """InputPath then Parameters."""
        if self._plain_input:
            if runner.trace is not None:
                note(runner, frame, afterInputPath=raw, afterParameters=raw)
            return raw
        value = self._select(self.input_path, raw, frame, runner)
        if runner.trace is not None:
            note(runner, frame, afterInputPath=value)
        if self.parameters is not None:
            value = self.parameters.evaluate(value, runner.env(frame))
        if runner.trace is not None:
            note(runner, frame, afterParameters=value)
        return value

    def finish(self, raw: Any, result: Any, frame: dict, runner: "Runner") -> Outcome:
        """ResultSelector, Assign, ResultPath and OutputPath applied to a result."""
        if self._plain_output:
            if runner.trace is not None:
                note(runner, frame, result=result, afterResultSelector=result, afterResultPath=result)
            return result, None
        if runner.trace is not None:
            note(runner, frame, result=result)
        if self.result_selector is not None:
            result = self.result_selector.evaluate(result, runner.env(frame))
        if runner.trace is not None:
            note(runner, frame, afterResultSelector=result)
        assign = None if self.assign is None else self.assign.evaluate(result, runner.env(frame))
        output = place_result(self.result_path, raw, result, frame)
        if runner.trace is not None:
            note(runner, frame, afterResultPath=output)
        if self.output_path is not _UNSET:
            output = self._select(self.output_path, output, frame, runner)
        return output, assign

    def merge(self, raw: Any, answer: Any, frame: dict, runner: "Runner") -> Outcome:
        """A ``module:suspend`` answer deep-merged into the state's input, then OutputPath."""
        assign = None if self.assign is None else self.assign.evaluate(answer, runner.env(frame))
        return self._select(self.output_path, deep_merge(raw, answer), frame, runner), assign

    # -- compile-time helpers -----------------------------------------------------------------

    def variant(self, spec: dict, prefix: str) -> "PathIO":
        """The same processing with the ``Assign`` of a Choice rule."""
        other = copy.copy(self)
        other.assign = self._assign(spec)
        other._refresh()
        return other

    def field(self, spec: dict, name: str, missing=None) -> Literal | PathField | None:
        """A field given as ``name`` (a value) or ``namePath`` (a path)."""
        if f"{name}Path" in spec:
            return PathField(f"{name}Path", spec[f"{name}Path"], missing)
        if name not in spec:
            return None
        if is_expression(spec[name]) and name not in ("Error", "Cause"):  # those two are any text
            raise ValueError(f"the field '{name}' holds a JSONata expression, "
                             "but the state's QueryLanguage is JSONPath")
        return Literal(name, spec[name])

    def condition(self, rule: dict, index: int) -> "PathCondition":
        return PathCondition(rule)

    def catcher(self, spec: dict, index: int) -> "PathCatcher":
        return PathCatcher(spec)

    def items(self, spec: dict) -> "PathItems":
        return PathItems(spec)

    def item_selector(self, spec: dict) -> "PathItemSelector | None":
        selector = spec.get("ItemSelector", spec.get("Parameters"))
        return None if selector is None else PathItemSelector(selector)


class PathCondition:
    """A JSONPath Choice Rule (Variable, comparisons, And/Or/Not)."""

    __slots__ = ("rule",)

    def __init__(self, rule: dict):
        self.rule = compile_rule(rule)

    def matches(self, value: Any, frame: dict, runner: "Runner") -> bool:
        try:
            return self.rule.matches(value, runner.env(frame))
        except StatesError as failure:  # the rule cannot name its state; add AWS's prefix
            raise errors.state_failure(failure.error, frame["at"], frame["eid"], failure.cause) from None


class Catcher:
    """ErrorEquals and Next; the subclasses make the output and assignments."""

    def __init__(self, spec: dict):
        self.error_equals = list(spec["ErrorEquals"])
        self.next = spec["Next"]

    def finish(self, raw: Any, error_output: dict, frame: dict, runner: "Runner") -> Outcome:
        raise NotImplementedError


class PathCatcher(Catcher):
    """ResultPath (default ``$``) places the error output; in Assign, ``$`` is the error output."""

    def __init__(self, spec: dict):
        super().__init__(spec)
        raw = spec.get("ResultPath", "$")
        self.result_path = None if raw is None else compile_reference_path(raw)
        self.assign = PathIO._assign(spec)

    def finish(self, raw: Any, error_output: dict, frame: dict, runner: "Runner") -> Outcome:
        assign = None if self.assign is None else self.assign.evaluate(error_output, runner.env(frame))
        return place_result(self.result_path, raw, error_output, frame), assign


class PathItems:
    """ItemsPath (default ``$``) over the Map's effective input."""

    def __init__(self, spec: dict):
        self.path = compile_path(spec.get("ItemsPath", "$"))

    def read(self, value: Any, frame: dict, runner: "Runner") -> list:
        try:
            items = self.path.get(value, runner.env(frame))
        except PathNotFound:
            raise invalid_path(frame, self.path.text) from None
        if not isinstance(items, list):
            raise runtime_error(frame, f"Map state input must be an array but was: {compact_json(items)}")
        return items


class PathItemSelector:
    """ItemSelector (or the older Parameters) of a Map, with ``$$.Map.Item``."""

    def __init__(self, selector: Any):
        self.template = Template(selector)

    def select(self, value: Any, index: int, item: Any, frame: dict, runner: "Runner") -> Any:
        env = runner.env(frame, map_item={"Index": index, "Value": item})
        return self.template.evaluate(value, env)


# -- JSONata ------------------------------------------------------------------------------------

class JsonataIO:
    """Arguments, Output and Assign, with ``{% %}`` expressions anywhere in them.

    ``arguments``: the state takes Arguments (Task, Parallel); ``result``: its
    result is ``$states.result`` (Task, Parallel, Map). Output defaults to the
    result (the state's input for states without one); ``prefix`` names where
    the fields sit for error causes (``Choices[1]/``, ``Catch[0]/``).
    """

    language = JSONATA

    def __init__(self, spec: dict, *, arguments: bool = False, result: bool = False, prefix: str = ""):
        self.arguments = (JsonataTemplate(spec["Arguments"], "Arguments")
                          if arguments and "Arguments" in spec else None)
        self.output = JsonataTemplate(spec["Output"], f"{prefix}Output") if "Output" in spec else None
        self.assign = self._assign(spec, prefix)
        self.binds_result = result
        self.uses_context = any(t is not None and t.uses_context for t in (self.output, self.assign))

    @staticmethod
    def _assign(spec: dict, prefix: str) -> JsonataTemplate | None:
        if "Assign" not in spec:
            return None
        _variable_names(spec["Assign"], strip_suffix=False)
        return JsonataTemplate(spec["Assign"], f"{prefix}Assign")

    @property
    def merges_suspend(self) -> bool:
        """A ``module:suspend`` answer is deep-merged into the input when there is no Output."""
        return self.output is None

    def effective_input(self, raw: Any, frame: dict, runner: "Runner") -> Any:
        """Arguments, or the state's input."""
        if self.arguments is None:
            value = raw
        elif self.arguments.constant:
            value = self.arguments.source
        else:
            value = self.arguments.evaluate(jsonata_bindings(frame, runner, self.arguments.uses_context), frame)
        if runner.trace is not None:
            note(runner, frame, afterArguments=value)
        return value

    def outcome(self, default: Any, frame: dict, runner: "Runner", **states: Any) -> Outcome:
        """Output (``default`` without one) and Assign, with ``states`` added to ``$states``."""
        if (self.output is None or self.output.constant) and self.assign is None:
            return default if self.output is None else self.output.source, None
        bindings = jsonata_bindings(frame, runner, self.uses_context, **states)
        output = default if self.output is None else self.output.evaluate(bindings, frame)
        assign = None if self.assign is None else self.assign.evaluate(bindings, frame)
        return output, assign

    def finish(self, raw: Any, result: Any, frame: dict, runner: "Runner") -> Outcome:
        """Output (default: the result) and Assign, with ``$states.result`` for states that have one."""
        if runner.trace is not None:
            note(runner, frame, result=result)
        if self.binds_result:
            return self.outcome(result, frame, runner, result=result)
        return self.outcome(result, frame, runner)

    def merge(self, raw: Any, answer: Any, frame: dict, runner: "Runner") -> Outcome:
        """A ``module:suspend`` answer deep-merged into the state's input (no Output)."""
        return self.outcome(deep_merge(raw, answer), frame, runner, result=answer)

    # -- compile-time helpers -----------------------------------------------------------------

    def variant(self, spec: dict, prefix: str) -> "JsonataIO":
        """A Choice rule's own Output and Assign."""
        return JsonataIO(spec, prefix=prefix)

    def field(self, spec: dict, name: str, missing=None) -> Literal | ExpressionField | None:
        if name not in spec:
            return None
        value = spec[name]
        return ExpressionField(name, value) if is_expression(value) else Literal(name, value)

    def condition(self, rule: dict, index: int) -> "JsonataCondition":
        return JsonataCondition(rule, index)

    def catcher(self, spec: dict, index: int) -> "JsonataCatcher":
        return JsonataCatcher(spec, index)

    def items(self, spec: dict) -> "JsonataItems":
        return JsonataItems(spec)

    def item_selector(self, spec: dict) -> "JsonataItemSelector | None":
        return JsonataItemSelector(spec["ItemSelector"]) if "ItemSelector" in spec else None


class JsonataCondition:
    """A JSONata Choice Rule: its ``Condition``, a boolean or an expression giving one."""

    __slots__ = ("field", "value", "expression")

    def __init__(self, rule: dict, index: int):
        if "Condition" not in rule:
            raise ValueError(f"Choices[{index}] has no field 'Condition'")
        self.field = f"Choices[{index}]/Condition"
        self.value = rule["Condition"]
        self.expression = compile_expression(self.value) if is_expression(self.value) else None
        if self.expression is None and type(self.value) is not bool:
            raise ValueError(f"the field '{self.field}' must be a boolean or a JSONata expression")

    def matches(self, value: Any, frame: dict, runner: "Runner") -> bool:
        if self.expression is None:
            return self.value
        bindings = jsonata_bindings(frame, runner, self.expression.uses_context)
        result = self.expression.evaluate(bindings, self.field, frame)
        if type(result) is not bool:
            raise self.expression.wrong_type(self.field, frame, "boolean", result)
        return result


class JsonataCatcher(Catcher):
    """Output (default: the error output) and Assign, with ``$states.errorOutput``."""

    def __init__(self, spec: dict, index: int):
        super().__init__(spec)
        self.io = JsonataIO(spec, prefix=f"Catch[{index}]/")

    def finish(self, raw: Any, error_output: dict, frame: dict, runner: "Runner") -> Outcome:
        return self.io.outcome(error_output, frame, runner, errorOutput=error_output)


class JsonataItems:
    """``Items`` (an array or an expression giving one), or the state's input."""

    def __init__(self, spec: dict):
        items = spec.get("Items")
        if items is not None and not isinstance(items, list) and not is_expression(items):
            raise ValueError("the field 'Items' must be an array or a JSONata expression")
        self.template = None if items is None else JsonataTemplate(items, "Items")

    def read(self, value: Any, frame: dict, runner: "Runner") -> list:
        if self.template is None:
            if not isinstance(value, list):
                raise errors.state_failure(errors.QUERY_EVALUATION_ERROR, frame["at"], frame["eid"],
                                           f"Map state input must be an array but was: {compact_json(value)}")
            return value
        bindings = jsonata_bindings(frame, runner, self.template.uses_context)
        items = self.template.evaluate(bindings, frame)
        if not isinstance(items, list):  # only an expression can give something else
            raise self.template.expression.wrong_type("Items", frame, "array", items)
        return items


class JsonataItemSelector:
    """ItemSelector, with ``$states.context.Map.Item`` and ``$states.input`` the Map's input."""

    def __init__(self, selector: Any):
        self.template = JsonataTemplate(selector, "ItemSelector")

    def select(self, value: Any, index: int, item: Any, frame: dict, runner: "Runner") -> Any:
        if self.template.constant:
            return self.template.source
        bindings = jsonata_bindings(frame, runner, self.template.uses_context,
                                    map_item={"Index": index, "Value": item})
        return self.template.evaluate(bindings, frame)


# -- which language, and which fields it allows -------------------------------------------------

#: Fields of one query language only -> the state types that have them.
JSONPATH_FIELDS: dict[str, frozenset[str]] = {
    "InputPath": frozenset({"Pass", "Task", "Choice", "Wait", "Succeed", "Parallel", "Map"}),
    "OutputPath": frozenset({"Pass", "Task", "Choice", "Wait", "Succeed", "Parallel", "Map"}),
    "Parameters": frozenset({"Pass", "Task", "Parallel", "Map"}),
    "ResultSelector": frozenset({"Task", "Parallel", "Map"}),
    "ResultPath": frozenset({"Pass", "Task", "Parallel", "Map"}),
    "Result": frozenset({"Pass"}),
    "ItemsPath": frozenset({"Map"}),
    "MaxConcurrencyPath": frozenset({"Map"}),
    "ToleratedFailureCountPath": frozenset({"Map"}),
    "ToleratedFailurePercentagePath": frozenset({"Map"}),
    "TimeoutSecondsPath": frozenset({"Task"}),
    "HeartbeatSecondsPath": frozenset({"Task"}),
    "SecondsPath": frozenset({"Wait"}),
    "TimestampPath": frozenset({"Wait"}),
    "ErrorPath": frozenset({"Fail"}),
    "CausePath": frozenset({"Fail"}),
}
JSONATA_FIELDS: dict[str, frozenset[str]] = {
    "Arguments": frozenset({"Task", "Parallel"}),
    "Output": frozenset({"Pass", "Task", "Choice", "Wait", "Succeed", "Parallel", "Map"}),
    "Items": frozenset({"Map"}),
}
#: Fields of Choice Rules and Catchers that belong to one language.
JSONPATH_RULE_FIELDS = frozenset({"Variable", "And", "Or", "Not"})
JSONATA_RULE_FIELDS = frozenset({"Condition", "Output"})
JSONPATH_CATCH_FIELDS = frozenset({"ResultPath"})
JSONATA_CATCH_FIELDS = frozenset({"Output"})
#: States that may assign variables.
ASSIGNING_STATES = frozenset({"Pass", "Task", "Choice", "Wait", "Parallel", "Map"})


def _wrong_language(field: str, language: str) -> ValueError:
    other = JSONATA if language == JSONPATH else JSONPATH
    return ValueError(f"The QueryLanguage is set to '{language}', but field '{field}' "
                      f"is only supported for the '{other}' QueryLanguage")


def state_language(spec: dict, machine_language: str) -> str:
    """A state's query language: its own ``QueryLanguage`` or the state machine's.

    A state machine in JSONata cannot have JSONPath states (AWS refuses the
    definition); the other way round is allowed.
    """
    own = spec.get("QueryLanguage")
    if own is None:
        return machine_language
    if own not in (JSONPATH, JSONATA):
        raise ValueError(f"'QueryLanguage' must be 'JSONPath' or 'JSONata', not {own!r}")
    if own == JSONPATH and machine_language == JSONATA:
        raise ValueError("'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine")
    return own


def check_fields(state_type: str, spec: dict, language: str) -> None:
    """Refuse fields of the other query language, and Assign where no state has it."""
    own, other = (JSONPATH_FIELDS, JSONATA_FIELDS) if language == JSONPATH else (JSONATA_FIELDS, JSONPATH_FIELDS)
    for field in spec:
        if field in other:
            if state_type in other[field]:
                raise _wrong_language(field, language)
            raise ValueError(f"Field '{field}' is not supported by {state_type} states")
        if field in own and state_type not in own[field]:
            raise ValueError(f"Field '{field}' is not supported by {state_type} states")
    if "Assign" in spec and state_type not in ASSIGNING_STATES:
        raise ValueError(f"Field 'Assign' is not supported by {state_type} states")
    rule_fields, catch_fields = ((JSONATA_RULE_FIELDS, JSONATA_CATCH_FIELDS) if language == JSONPATH
                                 else (JSONPATH_RULE_FIELDS, JSONPATH_CATCH_FIELDS))
    for rule in spec.get("Choices") or ():
        _check_nested(rule, rule_fields, language, nested_key=("And", "Or", "Not") if language == JSONPATH else ())
    for catcher in spec.get("Catch") or ():
        if isinstance(catcher, dict):
            for field in catcher:
                if field in catch_fields:
                    raise _wrong_language(field, language)


def _check_nested(rule: Any, fields: frozenset, language: str, nested_key: tuple) -> None:
    if not isinstance(rule, dict):
        return
    for field in rule:
        if field in fields or (language == JSONATA and _is_comparison(field)):
            raise _wrong_language(field, language)
    for key in nested_key:
        children = rule.get(key)
        for child in (children if isinstance(children, list) else [children] if children else []):
            _check_nested(child, fields, language, nested_key)


def _is_comparison(field: str) -> bool:
    return field in OPERATORS


def processor(spec: dict, language: str, *, arguments: bool = False, result: bool = False,
              parameters: bool = True) -> PathIO | JsonataIO:
    """The processor of a state in ``language`` (see ``State`` for the flags)."""
    if language == JSONATA:
        return JsonataIO(spec, arguments=arguments, result=result)
    return PathIO(spec, parameters=parameters)


__all__ = [
    "JSONATA",
    "JSONPATH",
    "Catcher",
    "Trace",
    "JsonataIO",
    "PathIO",
    "check_fields",
    "deep_merge",
    "processor",
    "state_language",
]

