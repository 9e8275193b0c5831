"""Validation: statelint's problems, the checks it lacks, and what AWS accepts."""
from __future__ import annotations

import json
import subprocess
import sys

from chalicelib.asl import validate

from .conftest import ROOT


def one_pass(**fields) -> dict:
    return {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True, **fields}}}


def test_valid_definition_has_no_problems():
    assert validate(one_pass(Parameters={"x.$": "$.a", "y.$": "States.Format('{}', $.b)"})) == []


def test_missing_start_state_names_the_problem():
    problems = validate({"StartAt": "Nope", "States": {"A": {"Type": "Pass", "End": True}}})
    assert any("Nope" in p.message for p in problems)
    assert any(p.state == "A" for p in problems)  # unreachable


def test_unknown_next_unknown_type_and_missing_resource():
    ghost = validate({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Ghost"}}})
    assert any("Ghost" in p.message and p.state == "A" for p in ghost)
    teleport = validate({"StartAt": "B", "States": {"B": {"Type": "Teleport", "End": True}}})
    assert any("Teleport" in p.message and p.state == "B" for p in teleport)
    [missing] = validate({"StartAt": "C", "States": {"C": {"Type": "Task", "End": True}}})
    assert (missing.state, missing.field) == ("C", "Resource") and "missing" in missing.message


def test_bad_paths_and_intrinsics_are_reported_with_their_state():
    [bad_path] = validate(one_pass(InputPath="$.a[[["))
    assert bad_path.state == "A" and "JSONPath" in bad_path.message
    [bad_call] = validate(one_pass(Parameters={"v.$": "States.NoSuchThing(1)"}))
    assert bad_call.state == "A" and "NoSuchThing" in bad_call.message


def test_problem_inside_a_parallel_branch_names_the_inner_state():
    definition = {"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "Inner", "States": {"Inner": {"Type": "Pass", "ResultPath": "$.a[*]", "End": True}}}]}}}
    problems = validate(definition)
    assert problems and problems[0].state == "Inner"
    assert problems[0].to_json()["location"].endswith("Branches[0].States.Inner")


def test_text_that_is_not_json_or_not_an_object():
    assert "not valid JSON" in validate("{oops")[0].message
    assert "object" in validate("[1, 2]")[0].message


def test_variables_and_jsonata_fields_that_aws_accepts_are_not_problems():
    assert validate(one_pass(Assign={"total.$": "$.n"})) == []
    assert validate({"StartAt": "W", "States": {"W": {
        "Type": "Wait", "Seconds": "{% $states.input.s %}", "End": True}}, "QueryLanguage": "JSONata"}) == []
    retry = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "module:increment", "End": True,
                                              "Retry": [{"ErrorEquals": ["States.ALL"], "BackoffRate": 2}]}}}
    assert validate(retry) == []


def test_cli_validate_exit_status():
    ok = subprocess.run([sys.executable, "-m", "chalicelib", "validate", "state_machines/incsquare.json"],
                        cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and "no problems" in ok.stdout
    broken = subprocess.run([sys.executable, "-m", "chalicelib", "validate", "/dev/stdin"], cwd=ROOT,
                            input=json.dumps({"StartAt": "X", "States": {}}), capture_output=True, text=True)
    assert broken.returncode == 1 and broken.stdout.strip()
