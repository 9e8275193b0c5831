"""The JSONata query language: fields, expressions, $states, AWS's functions, errors, suspension."""
from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid

import pytest

from chalicelib import resume
from chalicelib.asl import InvalidDefinition, TaskFailed, VirtualClock, expressions, validate

from ..asl_helpers import START, go, roundtrip
from ..asl_helpers import chain as plain_chain
from ..conftest import ROOT

QUERY_ERROR = "States.QueryEvaluationError"


def chain(*states: tuple[str, dict], language: str | None = "JSONata", **top) -> dict:
    """``asl_helpers.chain`` with a top-level QueryLanguage (JSONata unless told otherwise)."""
    definition = plain_chain(*states, **top)
    if language:
        definition["QueryLanguage"] = language
    return definition


def cause_tail(result: dict) -> str:
    """The cause without AWS's 'An error occurred while executing the state ...' prefix."""
    return re.sub(r"^An error occurred while executing the state '[^']+' \(entered at the event id #\d+\)\. ",
                  "", result["cause"])


# -- QueryLanguage --------------------------------------------------------------------------

def test_top_level_query_language_makes_every_state_jsonata():
    definition = chain(("Shape", {"Type": "Pass", "Output": {"total": "{% $states.input.a + $states.input.b %}"}}))
    assert go(definition, {"a": 2, "b": 5}) == {"status": "SUCCEEDED", "output": {"total": 7}}


def test_one_jsonata_state_in_a_jsonpath_machine_and_back():
    definition = chain(
        ("Old", {"Type": "Pass", "Parameters": {"n.$": "$.count"}}),
        ("New", {"Type": "Pass", "QueryLanguage": "JSONata", "Output": {"doubled": "{% $states.input.n * 2 %}"}}),
        ("OldAgain", {"Type": "Pass", "InputPath": "$.doubled"}),
        language=None)
    assert go(definition, {"count": 21})["output"] == 42


def test_a_jsonpath_state_in_a_jsonata_machine_is_refused_as_aws_does():
    definition = chain(("A", {"Type": "Pass", "QueryLanguage": "JSONPath"}))
    [problem] = validate(definition)
    assert "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine" in problem.message


def test_states_in_branches_take_the_state_machines_language_not_the_parallels():
    inner = {"StartAt": "In", "States": {"In": {"Type": "Pass", "InputPath": "$.v", "End": True}}}
    definition = chain(("P", {"Type": "Parallel", "QueryLanguage": "JSONata", "Branches": [inner],
                              "Output": "{% $states.result[0] %}"}), language=None)
    assert go(definition, {"v": "kept"})["output"] == "kept"


@pytest.mark.parametrize("field, value", [
    ("InputPath", "$.a"), ("OutputPath", "$.a"), ("Parameters", {"a": 1}), ("ResultPath", "$.r"),
    ("Result", {"a": 1}),
])
def test_jsonpath_fields_in_a_jsonata_state_get_aws_message(field, value):
    [problem] = validate(chain(("A", {"Type": "Pass", field: value})))
    assert problem.state == "A"
    assert problem.message.endswith(f"The QueryLanguage is set to 'JSONata', but field '{field}' "
                                    "is only supported for the 'JSONPath' QueryLanguage")


def test_jsonpath_only_fields_of_task_map_wait_fail_and_catch_are_refused():
    task = {"Type": "Task", "Resource": "module:increment", "TimeoutSecondsPath": "$.t"}
    assert "field 'TimeoutSecondsPath'" in validate(chain(("T", task)))[0].message
    wait = {"Type": "Wait", "SecondsPath": "$.s"}
    assert any("field 'SecondsPath'" in p.message for p in validate(chain(("W", wait))))
    fail = {"Type": "Fail", "ErrorPath": "$.e"}
    assert "field 'ErrorPath'" in validate(chain(("F", fail)))[0].message
    mapped = {"Type": "Map", "ItemsPath": "$.xs", "ItemProcessor": chain(("I", {"Type": "Pass"}), language=None)}
    assert "field 'ItemsPath'" in validate(chain(("M", mapped)))[0].message
    caught = {"Type": "Task", "Resource": "module:increment",
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "B"}]}
    definition = chain(("T", caught), ("B", {"Type": "Succeed"}))
    assert "field 'ResultPath'" in validate(definition)[0].message


def test_jsonpath_choice_rules_in_a_jsonata_state_are_refused():
    definition = chain(("C", {"Type": "Choice", "Default": "D",
                              "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "D"}]}),
                       ("D", {"Type": "Succeed"}))
    [problem] = validate(definition)
    assert "field 'Variable' is only supported for the 'JSONPath' QueryLanguage" in problem.message


def test_jsonata_fields_in_a_jsonpath_state_are_refused():
    [problem] = validate(chain(("A", {"Type": "Pass", "Output": {"x": 1}}), language=None))
    assert "The QueryLanguage is set to 'JSONPath', but field 'Output' is only supported for the 'JSONata'" \
        in problem.message


def test_unparsable_expression_and_top_level_field_reference_are_refused():
    [syntax] = validate(chain(("A", {"Type": "Pass", "Output": {"x": "{% 3 * %}"}})))
    assert "invalid JSONata expression '3 *'" in syntax.message
    [bare] = validate(chain(("A", {"Type": "Pass", "Output": "{% customer.name %}"})))
    assert "Reference to 'customer' at the top level is not supported" in bare.message
    with pytest.raises(InvalidDefinition):
        go(chain(("A", {"Type": "Pass", "Output": "{% $$ %}"})))


# -- {% %} templates ------------------------------------------------------------------------

def test_expressions_anywhere_in_nested_objects_and_arrays_other_strings_are_literal():
    definition = chain(("A", {"Type": "Pass", "Output": {
        "list": [1, "{% $states.input.k %}", {"deep": ["{% $uppercase($states.input.k) %}"]}],
        "literal": "$states.input.k",
        "almost": " {% $states.input.k %}",
        "jsonpath.$": "$.k",
        "number": 4.5,
        "none": None,
    }}))
    assert go(definition, {"k": "ab"})["output"] == {
        "list": [1, "ab", {"deep": ["AB"]}],
        "literal": "$states.input.k",
        "almost": " {% $states.input.k %}",
        "jsonpath.$": "$.k",
        "number": 4.5,
        "none": None,
    }


@pytest.mark.parametrize("output", [None, 0.25, [], "plain", {"nested": {}}])
def test_output_may_be_any_json_value(output):
    assert go(chain(("A", {"Type": "Pass", "Output": output})), {"ignored": True})["output"] == output


def test_json_null_from_an_expression_is_a_value():
    definition = chain(("A", {"Type": "Pass", "Output": {"v": "{% $states.input.gone %}",
                                                        "isNull": "{% $states.input.gone = null %}"}}))
    assert go(definition, {"gone": None})["output"] == {"v": None, "isNull": True}


def test_whole_numbers_come_out_as_integers():
    definition = chain(("A", {"Type": "Pass", "Output": "{% [$sum($states.input), 10 / 4, 2.0] %}"}))
    out = go(definition, [1.5, 2.5])["output"]
    assert out == [4, 2.5, 2] and type(out[0]) is int and type(out[2]) is int


# -- $states ----------------------------------------------------------------------------------

def test_states_input_result_and_context_in_a_task():
    seen = []

    def handler(payload, context):
        seen.append(payload)
        return {"sum": payload["a"] + payload["b"]}

    definition = chain(("Add", {
        "Type": "Task", "Resource": "test:add",
        "Arguments": {"a": "{% $states.input.x %}", "b": 10},
        "Output": {"was": "{% $states.input %}", "got": "{% $states.result.sum %}",
                   "state": "{% $states.context.State.Name %}",
                   "execution": "{% $states.context.Execution.Name %}"},
    }))
    result = go(definition, {"x": 5}, handlers={"test:add": handler}, name="run-7")
    assert seen == [{"a": 5, "b": 10}]
    assert result["output"] == {"was": {"x": 5}, "got": 15, "state": "Add", "execution": "run-7"}


def test_task_output_defaults_to_the_result_and_pass_output_to_the_input():
    definition = chain(("T", {"Type": "Task", "Resource": "test:x"}), ("P", {"Type": "Pass"}))
    assert go(definition, {"in": 1}, handlers={"test:x": lambda p, c: {"out": 2}})["output"] == {"out": 2}


def test_error_output_in_a_catcher_output_and_assign():
    def refuse(payload, context):
        raise TaskFailed("Stock.Empty", "nothing left")

    definition = chain(
        ("Order", {"Type": "Task", "Resource": "test:order", "Next": "Done",
                   "Catch": [{"ErrorEquals": ["Stock.Empty"], "Next": "Recover",
                              "Output": {"input": "{% $states.input %}", "why": "{% $states.errorOutput %}"},
                              "Assign": {"lastError": "{% $states.errorOutput.Error %}"}}]}),
        ("Recover", {"Type": "Pass", "Output": {"seen": "{% $states.input %}", "error": "{% $lastError %}"},
                     "End": True}),
        ("Done", {"Type": "Succeed"}))
    result = go(definition, {"sku": "p-1"}, handlers={"test:order": refuse})
    assert result["output"] == {
        "seen": {"input": {"sku": "p-1"}, "why": {"Error": "Stock.Empty", "Cause": "nothing left"}},
        "error": "Stock.Empty"}


def test_a_catcher_without_output_passes_the_error_output():
    def broken(payload, context):
        raise TaskFailed("Broken", "always")

    definition = chain(("F", {"Type": "Task", "Resource": "test:x", "Next": "End",
                              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "End"}]}),
                       ("End", {"Type": "Succeed"}))
    result = go(definition, {"a": 1}, handlers={"test:x": broken})
    assert result["output"] == {"Error": "Broken", "Cause": "always"}


# -- Choice -----------------------------------------------------------------------------------

GRADE = chain(
    ("Grade", {"Type": "Choice", "Choices": [
        {"Condition": "{% $states.input.score >= 90 %}", "Next": "Top", "Output": {"grade": "A"},
         "Assign": {"how": "rule"}},
        {"Condition": "{% $states.input.score >= 50 %}", "Next": "Top"},
    ], "Default": "Top", "Output": {"grade": "F"}, "Assign": {"how": "default"}}),
    ("Top", {"Type": "Pass", "Output": {"seen": "{% $states.input %}", "how": "{% $exists($how) ? $how : 'none' %}"}}))


@pytest.mark.parametrize("score, expected", [
    (95, {"seen": {"grade": "A"}, "how": "rule"}),          # the matched rule's Output and Assign
    (60, {"seen": {"score": 60}, "how": "none"}),           # a rule without them: the input goes on
    (10, {"seen": {"grade": "F"}, "how": "default"}),       # Default: the state's Output and Assign
])
def test_choice_conditions_and_their_output_and_assign(score, expected):
    assert go(GRADE, {"score": score})["output"] == expected


def test_choice_condition_may_be_a_literal_boolean_and_no_match_fails():
    always = chain(("C", {"Type": "Choice", "Choices": [{"Condition": False, "Next": "N"},
                                                         {"Condition": True, "Next": "Y"}]}),
                   ("N", {"Type": "Fail", "Error": "No"}), ("Y", {"Type": "Succeed"}))
    assert go(always, {"k": 1}) == {"status": "SUCCEEDED", "output": {"k": 1}}
    never = chain(("C", {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.k > 5 %}", "Next": "Y"}]}),
                  ("Y", {"Type": "Succeed"}))
    assert go(never, {"k": 1})["error"] == "States.NoChoiceMatched"


def test_a_condition_that_is_not_a_boolean_fails_the_state():
    definition = chain(("C", {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.k %}", "Next": "Y"}]}),
                       ("Y", {"Type": "Succeed"}))
    result = go(definition, {"k": "yes"})
    assert result["error"] == QUERY_ERROR
    assert cause_tail(result) == ("The JSONata expression '$states.input.k' specified for the field "
                                  "'Choices[0]/Condition' returned an unexpected result type. "
                                  "Expected 'boolean', but was 'string' for value: \"yes\"")


# -- Map and Parallel -------------------------------------------------------------------------

def test_map_items_expression_item_selector_and_max_concurrency_expression():
    definition = chain(("Each", {
        "Type": "Map",
        "Items": "{% $states.input.orders[qty > 0] %}",
        "ItemSelector": {"sku": "{% $states.context.Map.Item.Value.sku %}",
                         "position": "{% $states.context.Map.Item.Index %}",
                         "shop": "{% $states.input.shop %}"},
        "MaxConcurrency": "{% $count($states.input.orders) - 2 %}",
        "ItemProcessor": chain(("Inner", {"Type": "Pass"}), language=None),
        "Output": {"picked": "{% $states.result.sku %}", "first": "{% $states.result[0] %}"},
    }))
    orders = [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 0}, {"sku": "c", "qty": 3}]
    assert go(definition, {"orders": orders, "shop": "north"})["output"] == {
        "picked": ["a", "c"], "first": {"sku": "a", "position": 0, "shop": "north"}}


def test_map_items_as_a_literal_array_with_expressions_and_input_as_default():
    literal = chain(("M", {"Type": "Map", "Items": ["x", "{% $states.input.y %}"],
                           "ItemProcessor": chain(("I", {"Type": "Pass"}), language=None)}))
    assert go(literal, {"y": "why"})["output"] == ["x", "why"]
    default = chain(("M", {"Type": "Map", "ItemProcessor": chain(("I", {"Type": "Pass"}), language=None)}))
    assert go(default, [3, 4])["output"] == [3, 4]
    not_a_list = go(default, {"a": 1})
    assert not_a_list["error"] == QUERY_ERROR
    assert cause_tail(not_a_list) == 'Map state input must be an array but was: {"a":1}'


def test_map_items_expression_must_give_an_array():
    definition = chain(("M", {"Type": "Map", "Items": "{% $states.input.n %}",
                              "ItemProcessor": chain(("I", {"Type": "Pass"}), language=None)}))
    result = go(definition, {"n": 7})
    assert result["error"] == QUERY_ERROR
    assert cause_tail(result) == ("The JSONata expression '$states.input.n' specified for the field 'Items' "
                                  "returned an unexpected result type. Expected 'array', but was 'number' for value: 7")


def test_expressions_without_blanks_inside_the_delimiters_run_as_aws_runs_them():
    """``{%$x%}`` is an expression wherever ``{% $x %}`` is: Map Items, string Arguments, Output, ..."""
    processor = chain(("Double", {"Type": "Pass", "Output": "{%$states.input*2%}"}), language=None)
    definition = chain(
        ("Each", {"Type": "Map", "Items": "{% $states.input.Items%}", "ItemProcessor": processor}),
        ("Call", {"Type": "Task", "Resource": "module:echo", "Arguments": "{%$sum($states.input)%}"}),
        ("Fork", {"Type": "Parallel", "Arguments": "{%$states.input+1%}",
                  "Branches": [chain(("Same", {"Type": "Pass"}), language=None)]}),
        ("Done", {"Type": "Pass", "Output": {"total": "{%$states.input[0]%}"}}))
    assert go(definition, {"Items": [1, 2, 3]}, handlers={"module:echo": lambda payload, context: payload},
              )["output"] == {"total": 13}
    assert not expressions.is_expression("{%}") and expressions.is_expression("{%1%}")


def test_map_tolerated_failures_from_expressions():
    processor = chain(("Check", {"Type": "Choice", "Choices": [{"Condition": "{% $states.input > 2 %}",
                                                                  "Next": "Bad"}], "Default": "Ok"}),
                      ("Bad", {"Type": "Fail", "Error": "TooBig"}), ("Ok", {"Type": "Pass"}), language=None)
    tolerant = chain(("M", {"Type": "Map", "ToleratedFailureCount": "{% $states.input.allowed %}",
                            "Items": "{% $states.input.values %}", "ItemProcessor": processor}))
    assert go(tolerant, {"values": [1, 3, 4], "allowed": 2})["status"] == "SUCCEEDED"
    assert go(tolerant, {"values": [1, 3, 4], "allowed": 1})["error"] == "States.ExceedToleratedFailureThreshold"
    by_share = chain(("M", {"Type": "Map", "ToleratedFailurePercentage": "{% 100 / 3 %}",
                            "ItemProcessor": processor}))
    assert go(by_share, [1, 2, 3])["status"] == "SUCCEEDED"


def test_parallel_arguments_are_each_branchs_input_and_result_is_the_list():
    def branch(name: str) -> dict:
        return chain((name, {"Type": "Pass", "Output": "{% $states.input.v * 10 %}"}), language=None)

    definition = chain(("P", {"Type": "Parallel", "Arguments": {"v": "{% $states.input.n + 1 %}"},
                              "Branches": [branch("B1"), branch("B2")], "Output": "{% $sum($states.result) %}"}))
    assert go(definition, {"n": 1})["output"] == 40


# -- Task, Wait and Fail fields as expressions -----------------------------------------------

def test_task_timeout_and_heartbeat_from_expressions_are_recorded_on_the_suspension():
    definition = chain(("Ask", {"Type": "Task", "Resource": "module:suspend",
                                "TimeoutSeconds": "{% $states.input.minutes * 60 %}",
                                "HeartbeatSeconds": "{% 30 %}"}))
    [point] = go(definition, {"minutes": 2})["suspensions"]
    assert point["timeoutAt"] == "2023-11-14T22:15:20.000Z"
    assert point["heartbeatAt"] == "2023-11-14T22:13:50.000Z"
    zero = go(definition, {"minutes": 0})
    assert zero["error"] == QUERY_ERROR and "'TimeoutSeconds'" in zero["cause"]


@pytest.mark.parametrize("spec, data, waited", [
    ({"Seconds": "{% $states.input.s %}"}, {"s": 12}, 12),
    ({"Seconds": 3}, {}, 3),
    ({"Timestamp": "{% $states.input.at %}"}, {"at": "2023-11-14T22:14:00Z"}, 40),
])
def test_wait_seconds_and_timestamp_expressions(spec, data, waited):
    clock = VirtualClock(START)
    result = go(chain(("W", {"Type": "Wait", **spec})), data, clock=clock)
    assert result["status"] == "SUCCEEDED" and clock.now() - START == waited


def test_wait_timestamp_that_does_not_parse():
    result = go(chain(("W", {"Type": "Wait", "Timestamp": "{% $states.input.at %}"})), {"at": "tomorrow"})
    assert result["error"] == QUERY_ERROR
    assert cause_tail(result) == ("The Timestamp field cannot be parsed as an ISO-8601 extended offset "
                                  "date-time format string: tomorrow")


def test_wait_seconds_must_be_a_whole_number():
    result = go(chain(("W", {"Type": "Wait", "Seconds": "{% $states.input.s %}"})), {"s": "soon"})
    assert result["error"] == QUERY_ERROR and "Expected 'integer'" in result["cause"]


def test_fail_error_and_cause_from_expressions():
    definition = chain(("F", {"Type": "Fail", "Error": "{% 'Order.' & $states.input.code %}",
                              "Cause": "{% 'order ' & $string($states.input.id) & ' refused' %}"}))
    assert go(definition, {"code": "Refused", "id": 12}) == {
        "status": "FAILED", "error": "Order.Refused", "cause": "order 12 refused"}


# -- QueryEvaluationError -----------------------------------------------------------------------

@pytest.mark.parametrize("spec, field, expression", [
    ({"Type": "Pass", "Output": "{% $states.input.nope %}"}, "Output", "$states.input.nope"),
    ({"Type": "Pass", "Output": {"a": {"b": ["{% $nothing %}"]}}}, "Output/a/b[0]", "$nothing"),
    ({"Type": "Pass", "Assign": {"v": "{% $states.input.nope %}"}}, "Assign/v", "$states.input.nope"),
    ({"Type": "Task", "Resource": "module:increment", "Arguments": {"value": "{% $states.input.nope %}"}},
     "Arguments/value", "$states.input.nope"),
])
def test_an_expression_that_returns_nothing_fails_naming_its_field(spec, field, expression):
    result = go(chain(("S", spec)), {"x": 1})
    assert result["status"] == "FAILED" and result["error"] == QUERY_ERROR
    assert result["cause"] == (
        "An error occurred while executing the state 'S' (entered at the event id #2). "
        f"The JSONata expression '{expression}' specified for the field '{field}' returned nothing (undefined).")


def test_an_expression_that_throws_and_one_that_returns_a_function():
    throws = go(chain(("S", {"Type": "Pass", "Output": "{% $states.input.a + 'x' %}"})), {"a": 1})
    assert throws["error"] == QUERY_ERROR
    assert cause_tail(throws).startswith(
        "The JSONata expression '$states.input.a + 'x'' specified for the field 'Output' "
        "threw an error during evaluation. T2002: ")
    function = go(chain(("S", {"Type": "Pass", "Output": "{% function($v){$v} %}"})), {})
    assert cause_tail(function) == ("The JSONata expression 'function($v){$v}' specified for the field "
                                    "'Output' returned an unsupported result type.")


def test_query_evaluation_error_can_be_retried_and_caught():
    calls = []

    def count(payload, context):
        calls.append(payload)
        return {"size": len(calls)}

    definition = chain(("S", {"Type": "Task", "Resource": "test:count", "Next": "Done",
                              "Output": "{% $states.result.missing %}",
                              "Retry": [{"ErrorEquals": ["States.QueryEvaluationError"], "MaxAttempts": 2}],
                              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]}),
                       ("Caught", {"Type": "Pass", "Output": "{% $states.input.Error %}", "End": True}),
                       ("Done", {"Type": "Succeed"}))
    assert go(definition, {}, handlers={"test:count": count})["output"] == QUERY_ERROR
    assert len(calls) == 3  # the task ran again for each retry


# -- Step Functions' functions ------------------------------------------------------------------

@pytest.mark.parametrize("expression, expected", [
    ("$partition(['a', 'b', 'c', 'd', 'e'], 2)", [["a", "b"], ["c", "d"], ["e"]]),
    ("$partition([7, 8], 5)", [[7, 8]]),
    ("$range(2, 11, 4)", [2, 6, 10]),
    ("$range(5, 1, -2)", [5, 3, 1]),
    ("$range(3, 3, 1)", 3),
    ("$hash('step', 'SHA-256')", hashlib.sha256(b"step").hexdigest()),
    ("$hash('step', 'MD5')", hashlib.md5(b"step").hexdigest()),
    ("$parse('{\"k\": [1, null, true]}')", {"k": [1, None, True]}),
    ("$parse('\"text\"')", "text"),
])
def test_aws_jsonata_functions(expression, expected):
    assert go(chain(("F", {"Type": "Pass", "Output": "{% " + expression + " %}"})))["output"] == expected


@pytest.mark.parametrize("expression", ["$partition([], 2)", "$partition([1], 0)", "$range(1, 5)",
                                        "$range(1, 5, -1)", "$hash('x')"])
def test_aws_jsonata_functions_that_give_nothing(expression):
    result = go(chain(("F", {"Type": "Pass", "Output": "{% " + expression + " %}"})))
    assert result["error"] == QUERY_ERROR and result["cause"].endswith("returned nothing (undefined).")


def test_random_uuid_and_no_eval():
    definition = chain(("F", {"Type": "Pass", "Output": {
        "r": "{% $random() %}", "same": "{% $random(42) = $random(42) %}", "id": "{% $uuid() %}"}}))
    out = go(definition)["output"]
    assert 0 <= out["r"] < 1 and out["same"] is True
    assert uuid.UUID(out["id"]).version == 4
    evaluated = go(chain(("F", {"Type": "Pass", "Output": "{% $eval('1 + 1') %}"})))
    assert evaluated["error"] == QUERY_ERROR and "T1006" in evaluated["cause"]


# -- compiled once; threads ---------------------------------------------------------------------

def test_expressions_are_parsed_when_the_definition_is_compiled_not_when_states_run(monkeypatch):
    parsed = []
    parse = expressions.Jsonata.__init__

    def counting(self, text, *args, **kwargs):
        parsed.append(text)
        parse(self, text, *args, **kwargs)

    monkeypatch.setattr(expressions.Jsonata, "__init__", counting)
    marker = uuid.uuid4().hex  # text no other test has compiled
    definition = {"QueryLanguage": "JSONata", "StartAt": "Loop", "States": {
        "Loop": {"Type": "Pass", "Assign": {"i": "{% ($exists($i) ? $i : 0) + 1 %}"},
                 "Output": {"tag": f"{{% '{marker}' %}}"}, "Next": "Again"},
        "Again": {"Type": "Choice", "Choices": [{"Condition": "{% $i >= 25 %}", "Next": "Done"}],
                  "Default": "Loop"},
        "Done": {"Type": "Pass", "Output": {"count": "{% $i %}"}, "End": True}}}
    assert go(definition)["output"] == {"count": 25}
    assert go(definition)["output"] == {"count": 25}
    assert sum(marker in text for text in parsed) == 1


def test_concurrent_evaluation_in_threads_keeps_each_executions_values():
    """The same parsed expression, evaluated by several threads at once, sees only its own variables."""
    peek = "{% $string($sum([1..300].($ * $n))) & '/' & ($exists($secret) ? $secret : 'none') %}"
    with_secret = chain(("A", {"Type": "Pass", "Assign": {"n": "{% $states.input.n %}", "secret": "{% $states.input.s %}"}}),
                        ("B", {"Type": "Pass", "Output": peek}))
    without = chain(("A", {"Type": "Pass", "Assign": {"n": "{% $states.input.n %}"}}),
                    ("B", {"Type": "Pass", "Output": peek}))
    wrong: list = []

    def work(n: int) -> None:
        definition, expected = ((with_secret, f"{n * 45150}/s{n}") if n % 2 else (without, f"{n * 45150}/none"))
        for _ in range(25):
            result = go(definition, {"n": n, "s": f"s{n}"})
            if result != {"status": "SUCCEEDED", "output": expected}:
                wrong.append((n, result))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


# -- suspend and resume -------------------------------------------------------------------------

def test_suspend_without_output_merges_the_answer_into_the_input():
    definition = chain(("Ask", {"Type": "Task", "Resource": "module:suspend",
                                "Arguments": {"question": "{% 'Ship ' & $states.input.parcel & '?' %}"}}),
                       ("After", {"Type": "Pass"}))
    first = go(definition, {"parcel": "p9", "meta": {"a": 1}})
    [point] = first["suspensions"]
    assert point["parameters"] == {"question": "Ship p9?"}
    done = resume(definition, roundtrip(first["snapshot"]), point["id"], {"meta": {"b": 2}, "ok": True},
                  clock=VirtualClock(START))
    assert done["output"] == {"parcel": "p9", "meta": {"a": 1, "b": 2}, "ok": True}


def test_suspend_with_output_sees_the_answer_as_states_result():
    definition = chain(("Ask", {"Type": "Task", "Resource": "module:suspend",
                                "Output": {"parcel": "{% $states.input.parcel %}",
                                           "approved": "{% $states.result.ok %}"}}))
    first = go(definition, {"parcel": "p9"})
    done = resume(definition, roundtrip(first["snapshot"]), first["suspensions"][0]["id"], {"ok": False},
                  clock=VirtualClock(START))
    assert done["output"] == {"parcel": "p9", "approved": False}


def test_resume_after_a_json_round_trip_keeps_evaluating_with_the_state_input_and_variables():
    definition = chain(
        ("Keep", {"Type": "Pass", "Assign": {"owner": "{% $states.input.owner %}"}, "Output": {"step": 1}}),
        ("Ask", {"Type": "Task", "Resource": "module:suspend", "Arguments": {"to": "{% $owner %}"},
                 "Output": {"owner": "{% $owner %}", "before": "{% $states.input %}", "answer": "{% $states.result %}"}}))
    first = go(definition, {"owner": "kim"})
    assert first["suspensions"][0]["parameters"] == {"to": "kim"}
    snapshot = roundtrip(first["snapshot"])
    done = resume(definition, snapshot, first["suspensions"][0]["id"], "yes", clock=VirtualClock(START))
    assert done["output"] == {"owner": "kim", "before": {"step": 1}, "answer": "yes"}


def test_resume_with_failure_reaches_a_jsonata_catcher():
    definition = chain(("Ask", {"Type": "Task", "Resource": "module:suspend", "Next": "Ok",
                                "Catch": [{"ErrorEquals": ["Declined"], "Next": "No",
                                           "Output": "{% $states.errorOutput.Cause %}"}]}),
                       ("Ok", {"Type": "Succeed"}), ("No", {"Type": "Pass", "End": True}))
    first = go(definition, {})
    done = resume(definition, first["snapshot"], first["suspensions"][0]["id"], error="Declined", cause="too late")
    assert done["output"] == "too late"


# -- the JSONata approval flow ------------------------------------------------------------------

def load_approval(name: str) -> dict:
    with open(f"{ROOT}/state_machines/{name}", encoding="utf-8") as handle:
        return json.load(handle)


APPROVAL = load_approval("approval-jsonata.json")
REQUEST = {"item": "monitor", "requester": "lea", "reason": "second screen"}


def ask(input: dict) -> tuple[dict, dict]:
    first = go(APPROVAL, input)
    assert first["status"] == "SUSPENDED"
    [point] = first["suspensions"]
    return point, roundtrip(first["snapshot"])


def test_approval_jsonata_validates():
    assert validate(APPROVAL) == []


def test_approval_jsonata_asks_a_question_with_a_seven_day_timeout():
    point, _ = ask(REQUEST)
    assert point["kind"] == "suspend" and point["state"] == "AskForDecision"
    question = point["parameters"]
    assert question["Title"] == "Approve monitor for lea?"
    assert question["Description"] == "second screen"
    assert question["Choices"] == ["approve", "reject"]
    assert question["Data"]["Approver"] == "approver@example.com"
    assert point["timeoutAt"] == "2023-11-21T22:13:20.000Z"
    other, _ = ask({**REQUEST, "approver": "boss@example.com"})
    assert other["parameters"]["Data"]["Approver"] == "boss@example.com"


@pytest.mark.parametrize("answer, outcome", [
    ({"decision": "approve"}, "approved"),
    ({"decision": "reject", "comment": "not this year"}, "rejected"),
    ({"comment": "no decision given"}, "rejected"),
])
def test_approval_jsonata_decisions(answer, outcome):
    point, snapshot = ask(REQUEST)
    done = resume(APPROVAL, snapshot, point["id"], answer, clock=VirtualClock(START + 3600))
    assert done == {"status": "SUCCEEDED", "output": {"outcome": outcome, "request": REQUEST, "answer": answer}}


def test_approval_jsonata_without_an_answer_in_time():
    point, snapshot = ask(REQUEST)
    done = resume(APPROVAL, snapshot, point["id"], error="States.Timeout", clock=VirtualClock(START + 7 * 86400))
    assert done == {"status": "SUCCEEDED", "output": {
        "outcome": "rejected", "reason": "no decision in time", "request": REQUEST}}


def test_approval_jsonata_ends_like_approval_json():
    """Both flows give the same outcome for the same request and answer."""
    jsonpath = load_approval("approval.json")
    email = {"arn:aws:states:::email:send": lambda payload, context: {"sent": True}}
    for answer in ({"decision": "approve"}, {"decision": "reject", "comment": "later"}):
        first = go(jsonpath, REQUEST, handlers=email)
        old = resume(jsonpath, first["snapshot"], first["suspensions"][0]["id"], answer,
                     handlers=email, clock=VirtualClock(START))
        point, snapshot = ask(REQUEST)
        new = resume(APPROVAL, snapshot, point["id"], answer, clock=VirtualClock(START))
        assert new == old
