"""Every single-state case of the AWS conformance set (../shared/conformance, beside the checkout) run as a
test of that one state (TestState): it gets what AWS got for the whole execution.

Run by ``make conformance`` (and so by ``.ci/run``), not by ``make test``: the cases live outside the
project, and a fresh clone has none (pytest.ini leaves this folder out of the default run).
"""
from __future__ import annotations

import json
import os

import pytest

from chalicelib.asl.one_state import run_one_state
from chalicelib.resources import default_handlers

from ..conftest import ROOT

CASES = os.path.join(ROOT, "..", "shared", "conformance", "cases.jsonl")


def single_state_cases() -> list:
    """The conformance cases whose definition is one state without Retry (what TestState runs once),
    that need no external service and whose expected result is exact (not volatile)."""
    if not os.path.exists(CASES):
        return [pytest.param(None, id="conformance-cases-missing")]
    found = []
    with open(CASES, encoding="utf-8") as lines:
        for line in lines:
            case = json.loads(line)
            states = case["definition"].get("States") or {}
            if case["needs"] or case.get("duplicate_of") or case.get("volatile") or len(states) != 1:
                continue
            if "Retry" in next(iter(states.values())):
                continue
            found.append(pytest.param(case, id=case["id"]))
    return found


@pytest.mark.parametrize("case", single_state_cases())
def test_the_state_alone_gives_what_aws_gave_for_the_execution(case):
    assert case is not None, f"the AWS-result cases are read from {CASES} (next to this checkout)"
    result = run_one_state(case["definition"], case["input"], handlers=default_handlers())
    expected = case["expected"]
    assert result["status"] == expected["status"]
    assert "nextState" not in result  # the one state ends the execution
    if expected["status"] == "SUCCEEDED":
        assert result["output"] == expected["output"]
    else:
        assert (result.get("error"), result.get("cause")) == (expected.get("error"), expected.get("cause"))


def test_the_conformance_set_has_cases_of_every_state_type_that_runs_alone():
    types = {next(iter(p.values[0]["definition"]["States"].values()))["Type"]
             for p in single_state_cases() if p.values[0] is not None}
    assert types == {"Pass", "Fail", "Wait", "Map", "Parallel"}
