"""Regexes in definitions (JSONPath ``=~``, JSONata ``$match``/``$replace``/``$split``/``$contains``)
run on RE2: hostile patterns finish, ordinary ones mean what they meant on Python's ``re``,
and patterns RE2 cannot run are refused when the definition is checked.

Hostile cases run in a child process with a deadline (as in test_wildcards), so a
backtracking engine fails the test instead of hanging the suite.
"""
from __future__ import annotations

import re
import time

import pytest
from jsonata import Jsonata

from chalicelib import run
from chalicelib.asl import InvalidDefinition
from chalicelib.asl import regexes

from ..asl_helpers import run_in_child

HOSTILE = r"(a+)+$"


def jsonpath_filter(pattern: str) -> dict:
    return {"StartAt": "F", "States": {"F": {
        "Type": "Pass", "Parameters": {"kept.$": f"$.items[?(@.s =~ '{pattern}')].s"}, "End": True}}}


def jsonata(expression: str) -> dict:
    return {"QueryLanguage": "JSONata", "StartAt": "P", "States": {
        "P": {"Type": "Pass", "Output": "{% " + expression + " %}", "End": True}}}


def evaluated(expression: str, input: object = None) -> object:
    result = run(jsonata(expression), input or {})
    assert result["status"] == "SUCCEEDED", result
    return result["output"]


def problems(definition: dict) -> list[str]:
    with pytest.raises(InvalidDefinition) as refused:
        run(definition, {})
    return [problem.message for problem in refused.value.problems]


# -- hostile patterns finish, with the right answers -----------------------------------------

@pytest.mark.parametrize("size", [28, 5000])
def test_a_jsonpath_filter_with_nested_repetition_finishes(size):
    hostile = "a" * size + "!"
    items = [{"s": hostile}, {"s": "a" * size}, {"s": "b"}, {"s": "xaa"}]
    result = run_in_child(jsonpath_filter(HOSTILE), {"items": items})
    assert result["status"] == "SUCCEEDED", result
    assert result["output"] == {"kept": ["a" * size, "xaa"]}


@pytest.mark.parametrize("size", [28, 5000])
def test_jsonata_match_with_nested_repetition_finishes(size):
    hostile = "a" * size + "!"
    expression = ("{'hostile': $count($match($states.input.hostile, /(a+)+$/)), "
                  "'plain': $match($states.input.plain, /(a+)+$/), "
                  "'contains': $contains($states.input.hostile, /(a+)+$/), "
                  "'replaced': $replace($states.input.hostile, /(a+)+$/, 'x'), "
                  "'split': $count($split($states.input.hostile, /(a+)+$/))}")
    result = run_in_child(jsonata(expression), {"hostile": hostile, "plain": "bbaa"})
    assert result["status"] == "SUCCEEDED", result
    assert result["output"] == {
        "hostile": 0,
        "plain": {"match": "aa", "index": 2, "groups": ["aa"]},
        "contains": False,
        "replaced": hostile,
        "split": 1,
    }


@pytest.mark.parametrize("size", [28, 5000])
def test_a_jsonpath_sub_operator_with_nested_repetition_finishes(size):
    hostile = "a" * size + "!"
    definition = {"StartAt": "S", "States": {"S": {"Type": "Pass", "End": True, "Parameters": {
        "hostile.$": "$.hostile.`sub(/(a+)+$/, b)`", "plain.$": "$.plain.`sub(/(a+)+$/, b)`"}}}}
    result = run_in_child(definition, {"hostile": hostile, "plain": "xaa"})
    # jsonpath-ng's sub() finds nothing when nothing is replaced; a Parameters path that finds nothing fails
    assert result["status"] == "FAILED" and result["error"] == "States.Runtime", result
    assert "$.hostile" in result["cause"]
    definition["States"]["S"]["Parameters"] = {"plain.$": "$.plain.`sub(/(a+)+$/, b)`",
                                               "each.$": "$.plain.`sub(/a/, b)`"}
    assert run(definition, {"plain": "xaa"})["output"] == {"plain": "xb", "each": "xbb"}


@pytest.mark.parametrize("size", [50, 5000])
def test_a_date_time_picture_with_many_unbounded_parts_finishes(size):
    """``$toMillis`` makes a regex of its picture: five ``[f]`` are five ``[0-9]+`` in a row."""
    expression = ("{'hostile': $toMillis($states.input.digits, '[f][f][f][f][f]'), "
                  "'plain': $toMillis('2018-02-01', '[Y0001]-[M01]-[D01]')}")
    result = run_in_child(jsonata(expression), {"digits": "1" * size + "x"})
    assert result["status"] == "SUCCEEDED", result
    assert result["output"] == {"plain": 1517443200000}  # no match: undefined, left out


def test_a_date_time_picture_re2_cannot_run_fails_the_state_naming_the_pattern():
    """A picture may come from data, so its pattern is checked when it runs."""
    result = run(jsonata("$toMillis('aa1', $states.input.picture)"), {"picture": "(a)\\1[Y]"})
    assert result["status"] == "FAILED" and result["error"] == "States.QueryEvaluationError", result
    assert "'^((a)\\1)([0-9]{2,4})$'" in result["cause"] and "backreference" in result["cause"], result["cause"]


@pytest.mark.parametrize("timestamp, picture", [
    ("2018-02-01", "[Y0001]-[M01]-[D01]"), ("1st February 2018", "[D1o] [MNn] [Y]"),
    ("Thursday, 1st February 2018", "[FNn], [D1o] [MNn] [Y]"), ("9:42 pm", "[h]:[m01] [P]"),
    ("2018-02-01T09:42:13+01:00", "[Y0001]-[M01]-[D01]T[H01]:[m01]:[s01][Z]"), ("2018-032", "[Y]-[d]"),
    ("12/25/2019 10:30:00 AM", "[M]/[D]/[Y] [h]:[m]:[s] [P]"), ("MMXVIII", "[YI]"), ("2018-02-01 x", "[Y]-[M]-[D] y"),
])
def test_date_time_pictures_parse_as_on_pythons_engine(timestamp, picture, monkeypatch):
    from jsonata import datetimeutils

    expression = f"$toMillis('{timestamp}', '{picture}')"
    after = Jsonata(expression).evaluate(None)
    monkeypatch.setattr(datetimeutils, "re", re)  # jsonata-python as it comes: Python's re
    assert after == Jsonata(expression).evaluate(None)


# -- ordinary patterns mean what they did ----------------------------------------------------

def test_flags_groups_and_replacement_references():
    assert evaluated("$match('Ab-aB-x', /ab/i)") == [
        {"match": "Ab", "index": 0, "groups": []}, {"match": "aB", "index": 3, "groups": []}]
    assert evaluated("$match('k1=v1,k2=v2', /(\\w+)=(\\w+)/)") == [
        {"match": "k1=v1", "index": 0, "groups": ["k1", "v1"]},
        {"match": "k2=v2", "index": 6, "groups": ["k2", "v2"]}]
    assert evaluated("$replace('John Smith', /(\\w+)\\s(\\w+)/, '$2, $1')") == "Smith, John"
    assert evaluated("$replace('abcabc', /b/, 'B', 1)") == "aBcabc"
    assert evaluated("$replace('price: 10', /(\\d+)/, '$$$1')") == "price: $10"
    assert evaluated("$split('a1b22c333', /[0-9]+/)") == ["a", "b", "c", ""]
    assert evaluated("$split('a1b22c333', /[0-9]+/, 2)") == ["a", "b"]
    assert evaluated("$contains('line one\\nline two', /^line two$/m)") is True
    assert evaluated("$contains('line one\\nline two', /^line two$/)") is False
    assert evaluated("$replace('naïve café', /é|ï/, '€')") == "na€ve caf€"
    assert evaluated("$match('日本語テキスト', /テ(キ)/)") == {"match": "テキ", "index": 3, "groups": ["キ"]}
    assert evaluated("$replace('abc', /(b)/, function($m) { $uppercase($m.groups[0]) & '!' })") == "aB!c"


CORPUS = [
    ("/b/", "abcb"), ("/(b)(c)?/", "abcb"), ("/x*/", "abxd"), ("/^/m", "a\nb\nc"), ("/$/m", "a\nb"),
    ("/[aeiou]+/i", "BEAUTIFUL day"), ("/(\\d+)-(\\d+)?/", "1-2 3- 45-6"), ("/\\s+/", " a  b\tc "),
    ("/(é)(x)?/", "café éx"), ("/a|b|c/", "cab"), ("/(?:ab)+/", "ababab ab"), ("/./", "a😀b"),
]
REPLACEMENTS = ["-", "[$0]", "<$1>", "$2$1", "$12", "$$", "é€😀", "\\\\n", "$"]


@pytest.mark.parametrize("pattern, text", CORPUS)
def test_results_are_those_of_pythons_engine(pattern, text):
    """Each function on RE2 gives what jsonata-python gave on Python's ``re``."""
    quoted = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    expressions = [f"$match('{quoted}', {pattern})", f"$split('{quoted}', {pattern})",
                   f"$contains('{quoted}', {pattern})", f"$match('{quoted}', {pattern}, 1)"]
    expressions += [f"$replace('{quoted}', {pattern}, '{replacement}')" for replacement in REPLACEMENTS]
    expressions += [f"$replace('{quoted}', {pattern}, '{replacement}', 1)" for replacement in REPLACEMENTS[:3]]
    for expression in expressions:
        before = Jsonata(expression).evaluate(None)  # jsonata-python's default engine: Python's re
        after = Jsonata(expression, regexes.jsonata_engine).evaluate(None)
        assert after == before, expression


def outcome(work):
    """What ``work()`` returns, or the kind and message of what it raises (without Python's position)."""
    try:
        return "returned", work()
    except Exception as exc:
        return type(exc).__name__, str(exc).split(" at position")[0]


@pytest.mark.parametrize("template", [
    "x", "\\g<1>", "\\1", "\\1a", "\\12", "\\g<0>\\g<1>", "\\n\\t\\\\", "\\.", "\\0", "\\012", "\\101", "é😀",
    "\\g<2>", "\\2", "\\q", "\\", "\\g<x>", "\\g<name>", "\\g<1", "\\g1", "\\400",
])
def test_replacement_templates_read_as_pythons_do(template):
    """Python's template rules, its errors included (jsonata-python reads 'invalid group reference N')."""
    for pattern in [r"(b)", r"(b)(c)?(d)?(e)?(f)?(g)?(h)?(i)?(j)?(k)?(l)?(m)?", r"(?P<name>b)"]:
        assert outcome(lambda: regexes.compile_pattern(pattern).sub(template, "abcb")) == \
            outcome(lambda: re.sub(pattern, template, "abcb")), (pattern, template)


def test_a_lone_surrogate_in_the_text_is_matched_around():
    pattern = regexes.compile_pattern("b+")
    assert pattern.sub("-", "a\ud800bbc") == "a\ud800-c"
    assert pattern.search("\ud800b").span() == (1, 2)


def test_all_matches_stop_at_the_deadline():
    pattern = regexes.compile_pattern("a")
    previous = regexes.set_deadline(time.monotonic() - 1)
    try:
        with pytest.raises(regexes.RegexTimeout, match="'a'"):
            pattern.sub("b", "aaaa")
        assert pattern.search("xa").start() == 1  # one search is linear: never stopped
    finally:
        regexes.set_deadline(previous)


# -- what RE2 cannot run ---------------------------------------------------------------------

@pytest.mark.parametrize("pattern, reason", [
    (r"(a)\1", "backreference"), ("a(?=b)", "lookaround"), ("a(?!b)", "lookaround"),
    ("(?<=a)b", "lookaround"), ("(?<!a)b", "lookaround"), ("a{1001}", "repetition"), ("a**", "repetition operator"),
])
def test_patterns_re2_cannot_run_are_refused_with_the_definition(pattern, reason):
    literal = pattern.replace("\\", "\\\\")
    [jsonata_problem] = problems(jsonata(f"$match('ab', /{pattern}/)"))
    assert f"'{pattern}'" in jsonata_problem and reason in jsonata_problem
    definitions = [jsonpath_filter(literal), {"StartAt": "F", "States": {"F": {
        "Type": "Pass", "End": True, "InputPath": f"$.items[?(@.s =~ '{literal}')]"}}}]
    if python_compiles(pattern):  # jsonpath-ng compiles sub()'s pattern with re first
        definitions.append({"StartAt": "F", "States": {"F": {"Type": "Pass", "End": True,
                                                             "InputPath": f"$.s.`sub(/{literal}/, x)`"}}})
    for definition in definitions:
        [jsonpath_problem] = problems(definition)
        assert f"'{pattern}'" in jsonpath_problem and reason in jsonpath_problem, jsonpath_problem


def python_compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True
