"""Hostile StringMatches patterns finish in linear time.

Each hostile case runs in a child process with a deadline, so a backtracking
engine makes the test fail instead of hanging the suite.
"""
from __future__ import annotations

import pytest

from chalicelib import run
from chalicelib.asl.wildcards import wildcard_matcher

from ..asl_helpers import run_in_child

def choice(pattern: str) -> dict:
    return {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.s", "StringMatches": pattern, "Next": "Yes"}],
              "Default": "No"},
        "Yes": {"Type": "Pass", "Result": "yes", "End": True},
        "No": {"Type": "Pass", "Result": "no", "End": True}}}


def test_string_matches_with_many_stars_on_a_long_text_finishes():
    result = run_in_child(choice("*a*a*a*a*a*b"), {"s": "a" * 5000})
    assert result["status"] == "SUCCEEDED" and result["output"] == "no"


@pytest.mark.parametrize("pattern, text, expected", [
    ("*", "", True), ("*", "anything", True), ("", "", True), ("", "x", False),
    ("log-*.txt", "log-2024.txt", True), ("log-*.txt", "log-.txt", True), ("log-*.txt", "log-2024.txtx", False),
    ("a*a", "a", False), ("a*a", "aa", True), ("*a*b*c*", "xxaxxbxxc", True), ("*a*b*c*", "cba", False),
    (r"a\*b", "a*b", True), (r"a\*b", "axxb", False), (r"a\\*", "a\\anything", True), ("ab\\", "ab\\", True),
    ("**x", "yx", True), ("x**", "x", True),
])
def test_string_matches_semantics(pattern, text, expected):
    assert wildcard_matcher(pattern)(text) is expected
    assert run(choice(pattern), {"s": text})["output"] == ("yes" if expected else "no")
