"""Workflow variables: Assign in both query languages, references, order, scopes, snapshots."""
from __future__ import annotations

import pytest

from chalicelib import proceed, resume
from chalicelib.asl import TaskFailed, VirtualClock, validate

from ..asl_helpers import START, chain, go, roundtrip

def show(*names: str) -> tuple[str, dict]:
    """A last JSONPath state whose output is the named variables."""
    return "Show", {"Type": "Pass", "Parameters": {f"{name}.$": f"${name}" for name in names}}


# -- Assign in JSONPath states --------------------------------------------------------------

def test_assign_constants_paths_intrinsics_and_context():
    definition = chain(("Set", {"Type": "Pass", "Assign": {
        "fixed": {"nested": [1, "$.not.a.path"]},
        "fromInput.$": "$.order.id",
        "label.$": "States.Format('order-{}', $.order.id)",
        "stateName.$": "$$.State.Name",
        "nothing": None,
    }}), show("fixed", "fromInput", "label", "stateName", "nothing"))
    result = go(definition, {"order": {"id": 31}})
    assert result["output"] == {"fixed": {"nested": [1, "$.not.a.path"]}, "fromInput": 31,
                                "label": "order-31", "stateName": "Set", "nothing": None}


def test_assign_does_not_change_the_state_output():
    definition = chain(("Set", {"Type": "Pass", "Assign": {"x": 1}}))
    assert go(definition, {"keep": True})["output"] == {"keep": True}


def test_in_a_pass_state_dollar_is_the_result_or_else_the_effective_input():
    with_result = chain(("P", {"Type": "Pass", "Result": {"r": "result"}, "ResultPath": "$.slot",
                               "Assign": {"v.$": "$.r"}}), show("v"))
    assert go(with_result, {"r": "input"})["output"] == {"v": "result"}
    with_parameters = chain(("P", {"Type": "Pass", "InputPath": "$.inner", "Parameters": {"r.$": "$.deep"},
                                   "Assign": {"v.$": "$.r"}}), show("v"))
    assert go(with_parameters, {"inner": {"deep": "shaped"}})["output"] == {"v": "shaped"}


def test_in_a_task_dollar_is_the_result_after_result_selector():
    definition = chain(("T", {"Type": "Task", "Resource": "test:price",
                              "ResultSelector": {"cents.$": "$.amount"}, "ResultPath": "$.price",
                              "Assign": {"cents.$": "$.cents", "whole.$": "$"}}),
                       show("cents", "whole"))
    result = go(definition, {"sku": "x"}, handlers={"test:price": lambda p, c: {"amount": 250, "currency": "EUR"}})
    assert result["output"] == {"cents": 250, "whole": {"cents": 250}}


def test_in_choice_and_wait_dollar_is_the_effective_input():
    definition = chain(
        ("C", {"Type": "Choice", "InputPath": "$.sub", "Assign": {"seen.$": "$.v"}, "Default": "W",
               "Choices": [{"Variable": "$.v", "NumericGreaterThan": 100, "Next": "W"}]}),
        ("W", {"Type": "Wait", "Seconds": 0, "InputPath": "$.v", "Assign": {"waited.$": "$"}}),
        show("seen", "waited"))
    assert go(definition, {"sub": {"v": 7}})["output"] == {"seen": 7, "waited": 7}


def test_a_string_without_the_dollar_suffix_is_a_literal():
    definition = chain(("Set", {"Type": "Pass", "Assign": {"name": "Ada"}}),
                       ("Use", {"Type": "Pass", "Parameters": {"literal": "$name", "value.$": "$name"}}))
    assert go(definition)["output"] == {"literal": "$name", "value": "Ada"}


# -- references in JSONPath fields --------------------------------------------------------------

def test_variables_in_input_output_and_result_paths_and_templates():
    definition = chain(
        ("Set", {"Type": "Pass", "Assign": {"cfg": {"rate": 3, "tags": ["a", "b"]}, "picked": "b"}}),
        ("In", {"Type": "Pass", "InputPath": "$cfg", "ResultPath": "$.copy"}),
        ("Shape", {"Type": "Pass", "Parameters": {"rate.$": "$cfg.rate", "second.$": "$cfg.tags[1]",
                                                   "has.$": "States.ArrayContains($cfg.tags, $picked)"}}),
        ("Out", {"Type": "Pass", "OutputPath": "$"}))
    assert go(definition)["output"] == {"rate": 3, "second": "b", "has": True}


def test_variables_in_choice_rules_wait_fail_and_task_paths():
    definition = chain(
        ("Set", {"Type": "Pass", "Assign": {"limit": 10, "pause": 30, "code": "Over.Limit",
                                            "why": "too many", "timeout": 90}}),
        ("Check", {"Type": "Choice", "Default": "Ask", "Choices": [
            {"Variable": "$.n", "NumericGreaterThanPath": "$limit", "Next": "Refuse"}]}),
        ("Ask", {"Type": "Task", "Resource": "module:suspend", "TimeoutSecondsPath": "$timeout", "Next": "Pause"}),
        ("Pause", {"Type": "Wait", "SecondsPath": "$pause", "End": True}),
        ("Refuse", {"Type": "Fail", "ErrorPath": "$code", "CausePath": "$why"}))
    assert go(definition, {"n": 11}) == {"status": "FAILED", "error": "Over.Limit", "cause": "too many"}
    clock = VirtualClock(START)
    asked = go(definition, {"n": 3}, clock=clock)
    [point] = asked["suspensions"]
    assert point["timeoutAt"] == "2023-11-14T22:14:50.000Z"
    done = resume(definition, roundtrip(asked["snapshot"]), point["id"], {"ok": 1}, clock=clock)
    assert done["status"] == "SUCCEEDED" and clock.now() - START == 30


def test_variables_in_map_items_path_item_selector_and_max_concurrency_path():
    definition = chain(
        ("Set", {"Type": "Pass", "Assign": {"names": ["x", "y", "z"], "prefix": "item", "width": "2"}}),
        ("Each", {"Type": "Map", "ItemsPath": "$names", "MaxConcurrencyPath": "$width",
                  "ItemSelector": {"label.$": "States.Format('{}-{}', $prefix, $$.Map.Item.Value)"},
                  "ItemProcessor": {"StartAt": "Inner", "States": {
                      "Inner": {"Type": "Pass", "Parameters": {"label.$": "$.label", "from.$": "$prefix"},
                                "End": True}}}}))
    assert go(definition)["output"] == [{"label": f"item-{n}", "from": "item"} for n in "xyz"]


def test_a_missing_variable_is_a_missing_path():
    definition = chain(("Use", {"Type": "Pass", "Parameters": {"v.$": "$unknown"}}))
    result = go(definition, {"a": 1})
    assert result["error"] == "States.Runtime"
    assert "'$unknown'" in result["cause"] and "'v.$'" in result["cause"]
    choice = chain(("C", {"Type": "Choice", "Default": "D",
                          "Choices": [{"Variable": "$unknown", "IsPresent": True, "Next": "D"}]}),
                   ("D", {"Type": "Succeed"}))
    assert go(choice)["output"] == {}  # IsPresent asks exactly this


# -- order of evaluation and visibility ------------------------------------------------------------

def test_a_state_sees_the_variables_as_they_were_when_it_was_entered():
    second = {"Type": "Pass", "Assign": {"v": "new"}, "InputPath": "$v", "OutputPath": "$"}
    ends_there = chain(("First", {"Type": "Pass", "Assign": {"v": "old"}}), ("Second", second))
    assert go(ends_there)["output"] == "old"  # InputPath read the value from before the Assign
    goes_on = chain(("First", {"Type": "Pass", "Assign": {"v": "old"}}), ("Second", second), show("v"))
    assert go(goes_on)["output"] == {"v": "new"}  # the next state sees the new one
    outputs_old = chain(("First", {"Type": "Pass", "Assign": {"v": "old"}}),
                        ("Second", {"Type": "Pass", "Assign": {"v": "new"}, "OutputPath": "$v"}))
    assert go(outputs_old)["output"] == "old"  # so did OutputPath, the state's last step


def test_values_in_one_assign_do_not_see_each_other():
    definition = chain(("Init", {"Type": "Pass", "Assign": {"a": 1, "b": 2}}),
                       ("Swap", {"Type": "Pass", "Assign": {"a.$": "$b", "b.$": "$a"}}),
                       show("a", "b"))
    assert go(definition)["output"] == {"a": 2, "b": 1}


def test_jsonata_output_and_assign_both_see_the_old_values():
    definition = chain(
        ("Init", {"Type": "Pass", "Assign": {"count": 1}}),
        ("Bump", {"Type": "Pass", "QueryLanguage": "JSONata", "Assign": {"count": "{% $count + 1 %}"},
                  "Output": {"before": "{% $count %}"}}),
        ("After", {"Type": "Pass", "QueryLanguage": "JSONata",
                   "Output": {"before": "{% $states.input.before %}", "now": "{% $count %}"}}))
    assert go(definition)["output"] == {"before": 1, "now": 2}


def test_variables_last_across_states_until_assigned_again():
    definition = chain(
        ("A", {"Type": "Pass", "Assign": {"who": "ann", "n": 1}}),
        ("B", {"Type": "Pass", "Result": "noise"}),
        ("C", {"Type": "Pass", "Assign": {"n": 2}}),
        show("who", "n"))
    assert go(definition)["output"] == {"who": "ann", "n": 2}


def test_jsonpath_assigns_and_jsonata_reads_and_back():
    definition = chain(
        ("Path", {"Type": "Pass", "Assign": {"base.$": "$.base"}}),
        ("Nata", {"Type": "Pass", "QueryLanguage": "JSONata", "Assign": {"scaled": "{% $base * 3 %}"}}),
        ("PathAgain", {"Type": "Pass", "Parameters": {"base.$": "$base", "scaled.$": "$scaled"}}))
    assert go(definition, {"base": 4})["output"] == {"base": 4, "scaled": 12}


# -- Choice and Catch ---------------------------------------------------------------------------

ROUTE = chain(
    ("Route", {"Type": "Choice", "Assign": {"path": "default"}, "Default": "End", "Choices": [
        {"Variable": "$.kind", "StringEquals": "rush", "Next": "End", "Assign": {"path": "rush"}},
        {"Variable": "$.kind", "StringEquals": "slow", "Next": "End"}]}),
    ("End", {"Type": "Pass", "Parameters": {"path.$": "States.ArrayGetItem(States.Array($path), 0)"}}))


def test_a_matched_rule_assigns_its_own_variables_and_default_those_of_the_state():
    assert go(ROUTE, {"kind": "rush"})["output"] == {"path": "rush"}
    assert go(ROUTE, {"kind": "other"})["output"] == {"path": "default"}
    unassigned = go(ROUTE, {"kind": "slow"})  # the rule has no Assign, the state's is not used
    assert unassigned["error"] == "States.Runtime" and "$path" in unassigned["cause"]


def test_catch_assigns_from_the_error_output_and_the_failed_state_assigns_nothing():
    def refuse(payload, context):
        raise TaskFailed("Card.Declined", "insufficient funds")

    definition = chain(
        ("Pay", {"Type": "Task", "Resource": "test:pay", "Assign": {"paid": True}, "Next": "Done",
                 "Catch": [{"ErrorEquals": ["Card.Declined"], "ResultPath": None, "Next": "Report",
                            "Assign": {"reason.$": "$.Cause", "error.$": "$.Error"}}]}),
        ("Report", {"Type": "Pass", "QueryLanguage": "JSONata", "End": True, "Output": {
            "paid": "{% $exists($paid) %}", "reason": "{% $reason %}", "error": "{% $error %}",
            "input": "{% $states.input %}"}}),
        ("Done", {"Type": "Succeed"}))
    result = go(definition, {"amount": 9}, handlers={"test:pay": refuse})
    assert result["output"] == {"paid": False, "reason": "insufficient funds", "error": "Card.Declined",
                                "input": {"amount": 9}}


def test_a_retried_attempt_assigns_only_when_it_succeeds():
    calls = []

    def flaky(payload, context):
        calls.append(1)
        if len(calls) < 3:
            raise TaskFailed("Busy", f"attempt {len(calls)}")
        return {"attempt": len(calls)}

    definition = chain(("T", {"Type": "Task", "Resource": "test:flaky", "Assign": {"attempt.$": "$.attempt"},
                              "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 1}]}),
                       show("attempt"))
    assert go(definition, handlers={"test:flaky": flaky})["output"] == {"attempt": 3}


# -- scopes: Parallel and Map -------------------------------------------------------------------

def branch(*states: tuple[str, dict]) -> dict:
    return chain(*states)


def test_parallel_branches_read_outer_variables_and_keep_their_own():
    definition = chain(
        ("Set", {"Type": "Pass", "Assign": {"region": "eu"}}),
        ("Both", {"Type": "Parallel", "Branches": [
            branch(("L1", {"Type": "Pass", "Assign": {"mine": "left"}}),
                   ("L2", {"Type": "Pass", "Parameters": {"region.$": "$region", "mine.$": "$mine"}})),
            branch(("R1", {"Type": "Pass", "Assign": {"mine": "right"}}),
                   ("R2", {"Type": "Pass", "Parameters": {"region.$": "$region", "mine.$": "$mine"}})),
        ], "Assign": {"results.$": "$"}}),
        ("After", {"Type": "Pass", "QueryLanguage": "JSONata",
                   "Output": {"results": "{% $results %}", "leaked": "{% $exists($mine) %}"}}))
    assert go(definition)["output"] == {
        "results": [{"region": "eu", "mine": "left"}, {"region": "eu", "mine": "right"}], "leaked": False}


def test_a_branch_cannot_assign_a_variable_of_an_outer_scope():
    definition = chain(
        ("Set", {"Type": "Pass", "Assign": {"total": 0}}),
        ("Both", {"Type": "Parallel", "Branches": [branch(("Add", {"Type": "Pass", "Assign": {"total": 5}}))],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]}),
        ("Caught", {"Type": "Succeed"}))
    result = go(definition)
    assert result["status"] == "FAILED" and result["error"] == "States.Runtime"  # not catchable
    assert result["cause"].startswith("An error occurred while executing the state 'Add'")
    assert "'total'" in result["cause"] and "outer scope" in result["cause"]


def test_map_iterations_read_outer_variables_and_each_has_its_own_scope():
    processor = {"StartAt": "Peek", "States": {
        "Peek": {"Type": "Pass", "Next": "Keep", "Output": {
            "item": "{% $states.input %}",
            "earlier": "{% $exists($kept) ? $kept : 'none' %}"}},
        "Keep": {"Type": "Pass", "Assign": {"kept": "{% $states.input.item %}"}, "End": True,
                 "Output": {"scaled": "{% $states.input.item * $factor %}",
                            "earlier": "{% $states.input.earlier %}"}}}}
    definition = chain(
        ("Set", {"Type": "Pass", "Assign": {"factor": 10}}),
        ("Each", {"Type": "Map", "MaxConcurrency": 1, "ItemProcessor": processor}), QueryLanguage="JSONata")
    # One at a time, yet the second iteration does not see what the first one kept.
    assert go(definition, [1, 2])["output"] == [{"scaled": 10, "earlier": "none"}, {"scaled": 20, "earlier": "none"}]


def test_nested_map_reads_variables_of_every_enclosing_scope():
    inner = {"StartAt": "Sum", "States": {"Sum": {
        "Type": "Pass", "End": True,
        "Parameters": {"sum.$": "States.MathAdd(States.MathAdd($.v, $row), $offset)"}}}}
    outer = {"StartAt": "Row", "States": {
        "Row": {"Type": "Pass", "Assign": {"row.$": "$.row"}, "Next": "Cells"},
        "Cells": {"Type": "Map", "ItemsPath": "$.cells", "ItemSelector": {"v.$": "$$.Map.Item.Value"},
                  "ItemProcessor": inner, "End": True}}}
    definition = chain(("Set", {"Type": "Pass", "Assign": {"offset": 100}}),
                       ("Rows", {"Type": "Map", "ItemProcessor": outer}))
    rows = [{"row": 1, "cells": [1, 2]}, {"row": 2, "cells": [3]}]
    assert go(definition, rows)["output"] == [[{"sum": 102}, {"sum": 103}], [{"sum": 105}]]


def test_a_distributed_map_cannot_read_outer_variables():
    definition = chain(
        ("Set", {"Type": "Pass", "Assign": {"secret": "s"}}),
        ("Each", {"Type": "Map", "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Use", "States": {"Use": {"Type": "Pass", "Parameters": {"v.$": "$secret"}, "End": True}}}}))
    result = go(definition, [1])
    assert result["error"] == "States.Runtime" and "$secret" in result["cause"]


def test_map_and_parallel_assign_in_the_outer_scope_from_their_results():
    definition = chain(
        ("Each", {"Type": "Map", "ItemProcessor": branch(("Inc", {"Type": "Pass"})),
                  "ResultSelector": {"count.$": "States.ArrayLength($)"}, "Assign": {"count.$": "$.count"}}),
        show("count"))
    assert go(definition, ["a", "b", "c"])["output"] == {"count": 3}


# -- JSONata references ---------------------------------------------------------------------------

def test_jsonata_reads_a_missing_variable_as_a_query_evaluation_error():
    definition = chain(("Use", {"Type": "Pass", "QueryLanguage": "JSONata", "Output": {"v": "{% $ghost %}"}}))
    result = go(definition)
    assert result["error"] == "States.QueryEvaluationError"
    assert "'$ghost' specified for the field 'Output/v' returned nothing (undefined)." in result["cause"]


def test_variables_hold_any_json_value():
    values = {"obj": {"a": [1, {"b": None}]}, "list": [], "text": "t", "num": 2.5, "flag": False, "nil": None}
    definition = chain(("Set", {"Type": "Pass", "Assign": values}),
                       ("Use", {"Type": "Pass", "QueryLanguage": "JSONata",
                                "Output": {name: f"{{% ${name} %}}" for name in values}}))
    assert go(definition)["output"] == values


# -- validation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("state, message", [
    ({"Type": "Pass", "Assign": {"two words": 1}, "End": True}, "not a valid variable name"),
    ({"Type": "Pass", "Assign": {"9lives": 1}, "End": True}, "not a valid variable name"),
    ({"Type": "Pass", "Assign": {"states": 1}, "End": True}, "reserved"),
    ({"Type": "Succeed", "Assign": {"x": 1}}, "Field 'Assign' is not supported by Succeed states"),
    ({"Type": "Fail", "Assign": {"x": 1}}, "Field 'Assign' is not supported by Fail states"),
])
def test_assign_problems_are_reported(state, message):
    problems = validate({"StartAt": "S", "States": {"S": state}})
    assert problems and message in problems[0].message and problems[0].state == "S"


# -- snapshots: suspend and resume -------------------------------------------------------------

def test_variables_are_in_the_snapshot_and_survive_a_json_round_trip():
    definition = chain(
        ("Set", {"Type": "Pass", "Assign": {"owner.$": "$.owner", "limits": {"max": 3}}}),
        ("Ask", {"Type": "Task", "Resource": "module:suspend", "Parameters": {"to.$": "$owner"}}),
        ("Use", {"Type": "Pass", "Parameters": {"owner.$": "$owner", "max.$": "$limits.max",
                                                 "answer.$": "$.answer"}}))
    first = go(definition, {"owner": "ivo"})
    snapshot = roundtrip(first["snapshot"])
    assert snapshot["root"]["vars"] == {"owner": "ivo", "limits": {"max": 3}}
    assert first["suspensions"][0]["parameters"] == {"to": "ivo"}
    done = resume(definition, snapshot, first["suspensions"][0]["id"], {"answer": "yes"})
    assert done["output"] == {"owner": "ivo", "max": 3, "answer": "yes"}


def test_branch_variables_survive_suspension_inside_a_parallel():
    definition = chain(
        ("Set", {"Type": "Pass", "Assign": {"shared": "S"}}),
        ("Both", {"Type": "Parallel", "Branches": [
            # In Assign, $ is the Pass state's result: its Parameters, not its input.
            branch(("Note", {"Type": "Pass", "Assign": {"local.$": "$.who"}, "Parameters": {"who": "a"}}),
                   ("AskA", {"Type": "Task", "Resource": "module:suspend", "Parameters": {"to.$": "$local"}}),
                   ("DoneA", {"Type": "Pass", "Parameters": {"local.$": "$local", "shared.$": "$shared"}})),
            branch(("NoteB", {"Type": "Pass", "Assign": {"local": "b"}}),
                   ("AskB", {"Type": "Task", "Resource": "module:suspend", "Parameters": {"to.$": "$local"}}),
                   ("DoneB", {"Type": "Pass", "Parameters": {"local.$": "$local", "shared.$": "$shared"}})),
        ]}))
    first = go(definition, {"who": "input"})
    points = {s["parameters"]["to"]: s["id"] for s in first["suspensions"]}
    assert set(points) == {"a", "b"}
    snapshot = roundtrip(first["snapshot"])
    assert [frame["vars"] for frame in snapshot["root"]["group"]["frames"]] == [{"local": "a"}, {"local": "b"}]
    second = resume(definition, snapshot, points["b"], {})
    done = resume(definition, roundtrip(second["snapshot"]), points["a"], {})
    assert done["output"] == [{"local": "a", "shared": "S"}, {"local": "b", "shared": "S"}]


def test_iteration_variables_survive_suspension_inside_a_map():
    definition = chain(
        ("Set", {"Type": "Pass", "Assign": {"unit": "kg"}}),
        ("Each", {"Type": "Map", "ItemProcessor": branch(
            ("Remember", {"Type": "Pass", "Assign": {"weight.$": "$.w"}}),
            ("Ask", {"Type": "Task", "Resource": "module:suspend", "ResultPath": "$.answer"}),
            ("Report", {"Type": "Pass", "Parameters": {"line.$": "States.Format('{} {}: {}', $weight, $unit, $.answer)"}}))}))
    first = go(definition, [{"w": 5}, {"w": 8}])
    ids = [s["id"] for s in first["suspensions"]]
    snapshot = roundtrip(first["snapshot"])
    assert snapshot["root"]["group"]["active"]["1"]["vars"] == {"weight": 8}
    second = resume(definition, snapshot, ids[1], "heavy")
    done = resume(definition, roundtrip(second["snapshot"]), ids[0], "light")
    assert done["output"] == [{"line": "5 kg: light"}, {"line": "8 kg: heavy"}]


def test_jsonata_variables_survive_a_budget_checkpoint():
    states = [(f"S{i}", {"Type": "Pass", "QueryLanguage": "JSONata",
                         "Assign": {"total": "{% ($exists($total) ? $total : 0) + " + str(i) + " %}"}})
              for i in range(1, 6)]
    definition = chain(*states, ("Sum", {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $total %}"}))
    partial = go(definition, {}, max_transitions=2)
    assert partial["status"] == "RUNNING"
    assert partial["snapshot"]["root"]["vars"] == {"total": 3}
    done = proceed(definition, roundtrip(partial["snapshot"]), clock=VirtualClock(START))
    assert done == {"status": "SUCCEEDED", "output": 15}


def test_state_exited_events_list_the_assigned_variables():
    events = []
    definition = chain(("Set", {"Type": "Pass", "Assign": {"a": 1, "b.$": "$.b"}}), ("Plain", {"Type": "Pass"}))
    go(definition, {"b": [2]}, listener=events.append)
    exited = [e for e in events if e["type"] == "PassStateExited"]
    assert exited[0]["assignedVariables"] == {"a": 1, "b": [2]}
    assert "assignedVariables" not in exited[1]
