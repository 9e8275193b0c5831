"""Validation: statelint's problems, the checks it lacks, and what AWS accepts."""
from __future__ import annotations

import json
import subprocess
import sys

from chalicelib.asl import validate

from ..conftest import ROOT


def machine(*states: tuple[str, dict], **top) -> dict:
    """A definition chaining the given states in order; the last one ends unless it says otherwise."""
    names = [name for name, _ in states]
    body = {}
    for index, (name, spec) in enumerate(states):
        spec = dict(spec)
        if spec.get("Type") not in ("Choice", "Succeed", "Fail") and "Next" not in spec and "End" not in spec:
            spec.update({"Next": names[index + 1]} if index + 1 < len(names) else {"End": True})
        body[name] = spec
    return {"StartAt": names[0], "States": body, **top}


def pass_state(**fields) -> dict:
    return machine(("Step", {"Type": "Pass", **fields}))


def test_a_valid_definition_has_no_problems():
    definition = machine(
        ("Shape", {"Type": "Pass", "InputPath": "$.order", "ResultPath": "$.shaped",
                   "Parameters": {"id.$": "$.id", "lines": [{"sku.$": "$.items[0].sku"}],
                                  "note.$": "States.Format('order {}', $.id)", "when.$": "$$.Execution.StartTime"}}),
        ("Ask", {"Type": "Task", "Resource": "module:suspend", "ResultPath": "$.answer",
                 "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Stop"}]}),
        ("Done", {"Type": "Succeed"}),
        ("Stop", {"Type": "Fail", "Error": "Refused"}))
    assert validate(definition) == []
    assert validate(json.dumps(definition)) == []


def test_missing_start_at():
    problems = validate({"States": {"Only": {"Type": "Succeed"}}})
    missing = [p for p in problems if p.field == "StartAt"]
    assert missing and missing[0].state is None and "StartAt" in missing[0].message


def test_next_naming_an_unknown_state():
    problems = validate(machine(("First", {"Type": "Pass", "Next": "Nowhere"})))
    unknown = [p for p in problems if "Nowhere" in p.message]
    assert unknown and (unknown[0].state, unknown[0].field) == ("First", "Next")


def test_default_naming_an_unknown_state():
    choice = {"Type": "Choice", "Default": "Lost", "Choices": [{"Variable": "$.n", "IsPresent": True, "Next": "End"}]}
    problems = validate(machine(("Pick", choice), ("End", {"Type": "Succeed"})))
    assert any(p.state == "Pick" and p.field == "Default" and "Lost" in p.message for p in problems)


def test_unknown_state_type():
    problems = validate(machine(("Odd", {"Type": "Teleport"})))
    assert any(p.state == "Odd" and p.field == "Type" and "Teleport" in p.message for p in problems)


def test_task_without_resource():
    [problem] = validate(machine(("Work", {"Type": "Task"})))
    assert (problem.state, problem.field) == ("Work", "Resource")
    assert "Work" in problem.message and "Resource" in problem.message


def test_bad_jsonpath_in_input_path():
    [problem] = validate(pass_state(InputPath="$.items[[["))
    assert (problem.state, problem.field) == ("Step", "InputPath")
    assert "Step" in problem.message and "InputPath" in problem.message and "$.items[[[" in problem.message


def test_output_path_and_items_path_must_compile():
    [output] = validate(pass_state(OutputPath="$..["))
    assert output.field == "OutputPath"
    processor = {"StartAt": "Each", "States": {"Each": {"Type": "Pass", "End": True}}}
    [items] = validate(machine(("Fan", {"Type": "Map", "ItemsPath": "$.rows[", "ItemProcessor": processor})))
    assert (items.state, items.field) == ("Fan", "ItemsPath")


def test_result_path_must_name_one_place():
    [problem] = validate(pass_state(ResultPath="$.all[*]"))
    assert (problem.state, problem.field) == ("Step", "ResultPath")
    assert validate(pass_state(ResultPath=None)) == []  # null: the output is the input


def test_bad_intrinsic_syntax_in_parameters():
    [missing_comma] = validate(pass_state(Parameters={"text.$": "States.Format('{}' $.name)"}))
    assert (missing_comma.state, missing_comma.field) == ("Step", "Parameters")
    assert "text.$" in missing_comma.message
    [unknown] = validate(pass_state(Parameters={"text.$": "States.Shout($.name)"}))
    assert unknown.state == "Step" and "text.$" in unknown.message


def test_dynamic_values_are_checked_in_nested_objects_and_arrays():
    template = {"outer": {"rows": [1, {"bad.$": "$.a[["}]}}
    for field, state in [("Parameters", {"Type": "Pass"}),
                         ("ResultSelector", {"Type": "Task", "Resource": "module:echo"})]:
        [problem] = validate(machine(("Deep", {**state, field: template})))
        assert (problem.state, problem.field) == ("Deep", field) and "bad.$" in problem.message
        assert problem.location == "State Machine.States.Deep.outer.rows[1]"


def test_a_problem_inside_a_parallel_branch_names_the_inner_state():
    branch = machine(("Inner", {"Type": "Pass", "InputPath": "$.x[["}))
    [problem] = validate(machine(("Both", {"Type": "Parallel", "Branches": [branch]})))
    assert problem.state == "Inner" and problem.field == "InputPath"
    assert problem.location.startswith("State Machine.States.Both.Branches[0].States.Inner")


def test_a_problem_inside_a_map_processor_names_the_inner_state():
    processor = machine(("Item", {"Type": "Pass", "Next": "Missing"}))
    problems = validate(machine(("Each", {"Type": "Map", "ItemProcessor": processor})))
    assert any(p.state == "Item" and p.field == "Next" for p in problems)


def test_state_names_with_dots_and_spaces_are_found():
    [problem] = validate(machine(("Step 1.a", {"Type": "Pass", "Parameters": {"x.$": "$.y[["}})))
    assert problem.state == "Step 1.a"


def test_states_unreachable_from_start_are_reported():
    definition = machine(("Start", {"Type": "Succeed"}))
    # Orphan is never reached; Target is only reached from Orphan, so it is unreachable too.
    definition["States"].update({"Orphan": {"Type": "Pass", "Next": "Target"}, "Target": {"Type": "Succeed"}})
    assert {p.state for p in validate(definition)} == {"Orphan", "Target"}


def test_text_that_is_not_json():
    [problem] = validate('{"StartAt": ')
    assert problem.state is None and "JSON" in problem.message


def test_json_that_is_not_an_object():
    [problem] = validate("[1, 2]")
    assert problem.state is None and "object" in problem.message
    assert len(validate(7)) == 1


def test_variables_and_jsonata_are_accepted():
    definition = machine(
        ("Count", {"Type": "Pass", "Assign": {"total": "{% $states.input.n * 2 %}"}}),
        ("Pause", {"Type": "Wait", "Seconds": "{% $total > 5 ? 1 : 2 %}"}),
        ("Check", {"Type": "Choice", "Default": "Done",
                   "Choices": [{"Condition": "{% $total > 10 %}", "Assign": {"big": True}, "Next": "Done"}]}),
        ("Done", {"Type": "Pass", "Output": {"total": "{% $total %}"}}),
        QueryLanguage="JSONata")
    assert validate(definition) == []


def test_variables_in_jsonpath_are_accepted():
    processor = machine(("Each", {"Type": "Pass", "Parameters": {"item.$": "$", "unit.$": "$unit"}}))
    definition = machine(
        ("Remember", {"Type": "Pass", "Assign": {"unit": "kg", "rows.$": "$.rows"}}),
        ("Loop", {"Type": "Map", "ItemsPath": "$rows", "ItemProcessor": processor,
                  "Retry": [{"ErrorEquals": ["States.ALL"], "BackoffRate": 2}]}))
    assert validate(definition) == []


def test_a_dot_before_a_filter_is_a_valid_path_as_in_aws():
    assert validate(pass_state(InputPath="$.[?(@.OU > 0)]", OutputPath="$.[0]")) == []
    assert validate(pass_state(Parameters={"ous.$": "$.accounts.[?(@.OU > 0)].id"})) == []
    [problem] = validate(pass_state(InputPath="$.[?(@.OU > ]"))
    assert problem.field == "InputPath"


JSONATA_WITHOUT_BLANKS = "{%$states.input.Items%}"


def test_jsonata_without_blanks_inside_the_delimiters_is_valid_in_every_field():
    """``{%$x%}`` is an expression for AWS wherever ``{% $x %}`` is (statelint wants the blanks)."""
    processor = machine(("Each", {"Type": "Pass"}))
    branch = machine(("Branch", {"Type": "Pass"}))
    for expression in (JSONATA_WITHOUT_BLANKS, "{% $states.input.Items%}", "{%$states.input.Items %}"):
        definition = machine(
            ("Loop", {"Type": "Map", "Items": expression, "ItemProcessor": processor,
                      "MaxConcurrency": "{%1%}"}),
            ("Call", {"Type": "Task", "Resource": "module:echo", "Arguments": expression,
                      "TimeoutSeconds": "{%5%}"}),
            ("Fork", {"Type": "Parallel", "Branches": [branch], "Arguments": expression}),
            ("Pause", {"Type": "Wait", "Seconds": "{%0%}"}),
            ("Done", {"Type": "Pass", "Output": "{%$states.input%}"}),
            QueryLanguage="JSONata")
        assert validate(definition) == [], expression


def test_a_string_that_is_not_a_jsonata_expression_is_still_refused_where_one_is_required():
    processor = machine(("Each", {"Type": "Pass"}))
    for text in ("$states.input.Items", "{% $states.input.Items", "%}"):
        [problem] = validate(machine(("Loop", {"Type": "Map", "Items": text, "ItemProcessor": processor}),
                                     QueryLanguage="JSONata"))
        assert (problem.state, problem.field) == ("Loop", "Items")
        assert problem.message.endswith("but should be a JSONata")
    [broken] = validate(machine(("Loop", {"Type": "Map", "Items": "{%$states.input.Items +%}",
                                           "ItemProcessor": processor}), QueryLanguage="JSONata"))
    assert broken.state == "Loop" and "invalid JSONata expression" in broken.message


def test_state_names_longer_than_80_characters_are_refused_at_every_level():
    longest, too_long = "S" * 80, "L" * 81
    assert validate(machine((longest, {"Type": "Pass"}))) == []
    [top] = validate(machine((too_long, {"Type": "Pass"})))
    assert top.state == too_long and "exceeds the 80-character limit" in top.message
    inner = machine((too_long, {"Type": "Pass"}))
    for outer in ({"Type": "Parallel", "Branches": [inner]}, {"Type": "Map", "ItemProcessor": inner},
                  {"Type": "Map", "Iterator": inner}):
        [problem] = validate(machine(("Outer", outer)))
        assert problem.state == too_long and "exceeds the 80-character limit" in problem.message
        assert problem.location.startswith("State Machine.States.Outer.")
    named = machine(("First", {"Type": "Pass", "Next": "é" * 81}), ("é" * 81, {"Type": "Pass"}))
    assert [p.state for p in validate(named)] == ["é" * 81]


def test_problems_carry_state_and_field():
    [problem] = validate(machine(("Greet", {"Type": "Pass", "OutputPath": "$.a[["})))
    assert problem.to_json() == {"state": "Greet", "field": "OutputPath", "location": problem.location,
                                 "message": problem.message}
    assert problem.location == "State Machine.States.Greet.OutputPath"


def test_cli_validate_exit_status():
    ok = subprocess.run([sys.executable, "-m", "chalicelib", "validate", "state_machines/incsquare.json"],
                        cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and "no problems" in ok.stdout
    broken = subprocess.run([sys.executable, "-m", "chalicelib", "validate", "/dev/stdin"], cwd=ROOT,
                            input=json.dumps({"StartAt": "X", "States": {}}), capture_output=True, text=True)
    assert broken.returncode == 1 and broken.stdout.strip()
