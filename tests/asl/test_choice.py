"""Choice Rules (JSONPath): operators, Path variants, types, nesting, errors."""
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from chalicelib.asl import errors
from chalicelib.asl.choice import ChoiceSyntaxError, compile_rule
from chalicelib.asl.errors import StatesError
from chalicelib.asl.timestamps import parse_timestamp, timestamp_nanos

ENV = SimpleNamespace(
    context={"Execution": {"Name": "run-7"}, "State": {"RetryCount": 2}},
    variables={"limit": 10, "owner": "ops", "cutoff": "2030-01-01T00:00:00Z"},
)


def check(field, operand, value, variable="$.v"):
    """Whether ``{Variable, field: operand}`` matches an input holding ``value``."""
    rule = compile_rule({"Variable": variable, field: operand, "Next": "Somewhere"})
    return rule.matches({"v": value}, ENV)


def check_path(field, left, right):
    """Whether ``{Variable: $.left, fieldPath: $.right}`` matches."""
    rule = compile_rule({"Variable": "$.left", field: "$.right", "Next": "Somewhere"})
    return rule.matches({"left": left, "right": right}, ENV)


# --- comparisons against constants ------------------------------------------

@pytest.mark.parametrize(
    "field, operand, value, expected",
    [
        ("StringEquals", "pear", "pear", True),
        ("StringEquals", "pear", "Pear", False),
        ("StringEquals", "pear", "pear ", False),
        ("StringEquals", "", "", True),
        ("StringLessThan", "m", "apple", True),
        ("StringLessThan", "m", "m", False),
        ("StringLessThan", "abc", "ab", True),
        ("StringGreaterThan", "m", "zebra", True),
        ("StringGreaterThan", "m", "m", False),
        ("StringGreaterThan", "B", "a", True),  # lowercase sorts after uppercase
        ("StringLessThanEquals", "m", "m", True),
        ("StringLessThanEquals", "m", "n", False),
        ("StringGreaterThanEquals", "m", "m", True),
        ("StringGreaterThanEquals", "m", "l", False),
    ],
)
def test_string_comparisons(field, operand, value, expected):
    assert check(field, operand, value) is expected


@pytest.mark.parametrize(
    "field, operand, value, expected",
    [
        ("NumericEquals", 7, 7, True),
        ("NumericEquals", 7, 7.0, True),
        ("NumericEquals", 7.5, 7.5, True),
        ("NumericEquals", 7, 8, False),
        ("NumericLessThan", 0, -3, True),
        ("NumericLessThan", 0, 0, False),
        ("NumericGreaterThan", 2.5, 3, True),
        ("NumericGreaterThan", 2.5, 2.5, False),
        ("NumericLessThanEquals", 4, 4.0, True),
        ("NumericLessThanEquals", 4, 4.01, False),
        ("NumericGreaterThanEquals", -1, -1, True),
        ("NumericGreaterThanEquals", -1, -2, False),
    ],
)
def test_numeric_comparisons(field, operand, value, expected):
    assert check(field, operand, value) is expected


@pytest.mark.parametrize(
    "field, operand, value, expected",
    [
        ("BooleanEquals", True, True, True),
        ("BooleanEquals", True, False, False),
        ("BooleanEquals", False, False, True),
        ("BooleanEquals", False, True, False),
    ],
)
def test_boolean_equals(field, operand, value, expected):
    assert check(field, operand, value) is expected


@pytest.mark.parametrize(
    "field, operand, value, expected",
    [
        ("TimestampEquals", "2021-06-01T08:00:00Z", "2021-06-01T08:00:00Z", True),
        # the same instant written with another offset
        ("TimestampEquals", "2021-06-01T08:00:00Z", "2021-06-01T10:00:00+02:00", True),
        ("TimestampEquals", "2021-06-01T08:00:00Z", "2021-06-01T08:00:00.000Z", True),
        ("TimestampEquals", "2021-06-01T08:00:00Z", "2021-06-01T08:00:01Z", False),
        ("TimestampLessThan", "2021-06-01T08:00:00Z", "2021-05-31T23:59:59Z", True),
        ("TimestampLessThan", "2021-06-01T08:00:00Z", "2021-06-01T08:00:00Z", False),
        # 09:30+02:00 is 07:30Z, earlier than 08:00Z although the clock reads later
        ("TimestampLessThan", "2021-06-01T08:00:00Z", "2021-06-01T09:30:00+02:00", True),
        ("TimestampGreaterThan", "2021-06-01T08:00:00Z", "2021-06-01T08:00:00.5Z", True),
        ("TimestampGreaterThan", "2021-06-01T08:00:00Z", "2021-06-01T08:00:00Z", False),
        ("TimestampLessThanEquals", "2021-06-01T08:00:00Z", "2021-06-01T08:00:00Z", True),
        ("TimestampLessThanEquals", "2021-06-01T08:00:00Z", "2021-06-02T00:00:00Z", False),
        ("TimestampGreaterThanEquals", "2021-06-01T08:00:00Z", "2021-06-01T08:00:00Z", True),
        ("TimestampGreaterThanEquals", "2021-06-01T08:00:00Z", "2020-12-31T23:00:00Z", False),
        # nanoseconds count: these differ only in the ninth fractional digit
        ("TimestampGreaterThan", "2021-06-01T08:00:00.000000001Z", "2021-06-01T08:00:00.000000002Z", True),
        ("TimestampEquals", "2021-06-01T08:00:00.000000001Z", "2021-06-01T08:00:00Z", False),
    ],
)
def test_timestamp_comparisons(field, operand, value, expected):
    assert check(field, operand, value) is expected


_OPERANDS = [
    ("StringEquals", "12"),
    ("StringLessThan", "zzz"),
    ("NumericEquals", 1),
    ("NumericGreaterThanEquals", 0),
    ("BooleanEquals", True),
    ("BooleanEquals", False),
    ("TimestampLessThan", "2999-01-01T00:00:00Z"),
    ("TimestampGreaterThan", "1999-01-01T00:00:00Z"),
]
_VALUES = [None, 12, 1.0, True, False, "12", "", [12], {"n": 12}]


def _same_type(field, value):
    if field.startswith("String"):
        return type(value) is str
    if field.startswith("Numeric"):
        return type(value) in (int, float)
    if field.startswith("Boolean"):
        return type(value) is bool
    return False  # none of the values is a timestamp


@pytest.mark.parametrize(
    "field, operand, value",
    [(f, o, v) for f, o in _OPERANDS for v in _VALUES if not _same_type(f, v)],
)
def test_a_value_of_another_type_never_matches(field, operand, value):
    assert check(field, operand, value) is False


def test_booleans_are_not_numbers():
    assert check("NumericEquals", 1, True) is False
    assert check("NumericEquals", 0, False) is False
    assert check("NumericLessThan", 5, False) is False


def test_numeric_strings_are_not_numbers():
    assert check("NumericEquals", 3, "3") is False


def test_strings_that_are_not_timestamps_never_match_timestamp_operators():
    for value in ["2021-06-01", "2021-06-01 08:00:00Z", "2021-06-01T08:00:00", "tomorrow", ""]:
        assert check("TimestampLessThan", "2999-01-01T00:00:00Z", value) is False
        assert check("TimestampGreaterThan", "1000-01-01T00:00:00Z", value) is False


# --- Path variants ------------------------------------------------------------

@pytest.mark.parametrize(
    "field, left, right, expected",
    [
        ("StringEqualsPath", "kiwi", "kiwi", True),
        ("StringEqualsPath", "kiwi", "lime", False),
        ("StringLessThanPath", "kiwi", "lime", True),
        ("StringGreaterThanPath", "lime", "kiwi", True),
        ("StringLessThanEqualsPath", "kiwi", "kiwi", True),
        ("StringGreaterThanEqualsPath", "kiwi", "lime", False),
        ("NumericEqualsPath", 3, 3.0, True),
        ("NumericLessThanPath", 2, 3, True),
        ("NumericGreaterThanPath", 2, 3, False),
        ("NumericLessThanEqualsPath", 3, 3, True),
        ("NumericGreaterThanEqualsPath", 4, 3, True),
        ("BooleanEqualsPath", False, False, True),
        ("BooleanEqualsPath", True, False, False),
        ("TimestampEqualsPath", "2022-03-01T12:00:00Z", "2022-03-01T13:00:00+01:00", True),
        ("TimestampLessThanPath", "2022-03-01T12:00:00Z", "2022-03-01T12:00:01Z", True),
        ("TimestampGreaterThanPath", "2022-03-01T12:00:00Z", "2022-03-01T12:00:01Z", False),
        ("TimestampLessThanEqualsPath", "2022-03-01T12:00:00Z", "2022-03-01T12:00:00Z", True),
        ("TimestampGreaterThanEqualsPath", "2022-03-02T00:00:00Z", "2022-03-01T12:00:00Z", True),
    ],
)
def test_path_variants_compare_with_the_value_at_the_path(field, left, right, expected):
    assert check_path(field, left, right) is expected


@pytest.mark.parametrize(
    "field, left, right",
    [
        ("NumericEqualsPath", 1, True),
        ("NumericEqualsPath", True, 1),
        ("NumericLessThanPath", 1, "2"),
        ("StringEqualsPath", "1", 1),
        ("StringLessThanPath", "a", None),
        ("BooleanEqualsPath", True, "true"),
        ("BooleanEqualsPath", 0, False),
        ("TimestampEqualsPath", "2022-03-01T12:00:00Z", "2022-03-01"),
        ("TimestampLessThanPath", "not a date", "2022-03-01T12:00:00Z"),
    ],
)
def test_path_variants_are_false_when_either_side_has_the_wrong_type(field, left, right):
    assert check_path(field, left, right) is False


def test_paths_can_read_variables_and_the_context_object():
    over_limit = compile_rule({"Variable": "$.count", "NumericGreaterThanPath": "$limit"})
    assert over_limit.matches({"count": 11}, ENV) is True
    assert over_limit.matches({"count": 10}, ENV) is False

    by_owner = compile_rule({"Variable": "$owner", "StringEquals": "ops"})
    assert by_owner.matches({}, ENV) is True

    named = compile_rule({"Variable": "$$.Execution.Name", "StringEqualsPath": "$.expected"})
    assert named.matches({"expected": "run-7"}, ENV) is True
    assert named.matches({"expected": "run-8"}, ENV) is False

    retried = compile_rule({"Variable": "$$.State.RetryCount", "NumericGreaterThanEquals": 2})
    assert retried.matches({}, ENV) is True

    before_cutoff = compile_rule({"Variable": "$.when", "TimestampLessThanPath": "$cutoff"})
    assert before_cutoff.matches({"when": "2029-12-31T23:59:59Z"}, ENV) is True


def test_variable_may_be_the_whole_input_or_use_brackets_and_indexes():
    assert compile_rule({"Variable": "$", "NumericEquals": 3}).matches(3, ENV) is True
    rule = compile_rule({"Variable": "$.rows[1]['first name']", "StringEquals": "Ada"})
    assert rule.matches({"rows": [{}, {"first name": "Ada"}]}, ENV) is True


# --- type tests ------------------------------------------------------------------

@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("IsNull", None, True),
        ("IsNull", 0, False),
        ("IsNull", "", False),
        ("IsNull", [], False),
        ("IsNumeric", 0, True),
        ("IsNumeric", -2.75, True),
        ("IsNumeric", "5", False),
        ("IsNumeric", True, False),
        ("IsNumeric", None, False),
        ("IsString", "", True),
        ("IsString", "2021-06-01T08:00:00Z", True),
        ("IsString", 5, False),
        ("IsString", ["a"], False),
        ("IsBoolean", False, True),
        ("IsBoolean", True, True),
        ("IsBoolean", 0, False),
        ("IsBoolean", "true", False),
        ("IsTimestamp", "2021-06-01T08:00:00Z", True),
        ("IsTimestamp", "2021-06-01T08:00:00.123-05:30", True),
        ("IsTimestamp", "2021-06-01", False),
        ("IsTimestamp", "2021-06-01T08:00:00", False),
        ("IsTimestamp", 1622534400, False),
        ("IsTimestamp", None, False),
    ],
)
def test_type_tests(field, value, expected):
    assert check(field, True, value) is expected
    assert check(field, False, value) is (not expected)


def test_is_present():
    present = compile_rule({"Variable": "$.a.b", "IsPresent": True})
    absent = compile_rule({"Variable": "$.a.b", "IsPresent": False})
    for data, found in [
        ({"a": {"b": None}}, True),
        ({"a": {"b": 0}}, True),
        ({"a": {}}, False),
        ({}, False),
        ({"a": "text"}, False),
        ([], False),
    ]:
        assert present.matches(data, ENV) is found
        assert absent.matches(data, ENV) is (not found)


def test_is_present_on_an_unset_variable_or_missing_context_field():
    assert compile_rule({"Variable": "$unset", "IsPresent": True}).matches({}, ENV) is False
    assert compile_rule({"Variable": "$$.Map.Item", "IsPresent": False}).matches({}, ENV) is True


# --- StringMatches -----------------------------------------------------------------

@pytest.mark.parametrize(
    "pattern, value, expected",
    [
        ("report-*.csv", "report-2021.csv", True),
        ("report-*.csv", "report-.csv", True),
        ("report-*.csv", "report-2021.csvx", False),
        ("report-*.csv", "xreport-2021.csv", False),
        ("*", "", True),
        ("*", "anything at all", True),
        ("*middle*", "in the middle of", True),
        ("a*b*c", "aXXbYYc", True),
        ("a*b*c", "aXXcYYb", False),
        ("exact", "exact", True),
        ("exact", "Exact", False),
        # regex metacharacters are plain characters
        ("v1.2(beta)?", "v1.2(beta)?", True),
        ("v1.2", "v1x2", False),
        ("[ab]", "a", False),
        # \* is a literal star, \\ a literal backslash
        ("5 \\* 3", "5 * 3", True),
        ("5 \\* 3", "5 x 3", False),
        ("C:\\\\temp\\\\*", "C:\\temp\\file.txt", True),
        ("C:\\\\temp\\\\*", "C:/temp/file.txt", False),
        ("\\\\*", "\\anything", True),
        ("\\\\\\*", "\\*", True),
        ("\\\\\\*", "\\x", False),
        # a wildcard spans line breaks
        ("first*last", "first\nsecond\nlast", True),
    ],
)
def test_string_matches(pattern, value, expected):
    assert check("StringMatches", pattern, value) is expected


def test_string_matches_is_false_for_non_strings():
    for value in [None, 5, True, ["x"], {"x": 1}]:
        assert check("StringMatches", "*", value) is False


# --- And / Or / Not -----------------------------------------------------------------

def test_and_or_not():
    in_range = compile_rule({
        "And": [
            {"Variable": "$.n", "NumericGreaterThanEquals": 10},
            {"Variable": "$.n", "NumericLessThan": 20},
        ],
        "Next": "InRange",
    })
    assert [in_range.matches({"n": n}, ENV) for n in (9, 10, 19.5, 20)] == [False, True, True, False]

    either = compile_rule({
        "Or": [
            {"Variable": "$.kind", "StringEquals": "cat"},
            {"Variable": "$.kind", "StringEquals": "dog"},
        ],
        "Next": "Pet",
    })
    assert [either.matches({"kind": k}, ENV) for k in ("cat", "dog", "cow")] == [True, True, False]

    not_private = compile_rule({"Not": {"Variable": "$.scope", "StringEquals": "private"}, "Next": "X"})
    assert not_private.matches({"scope": "public"}, ENV) is True
    assert not_private.matches({"scope": "private"}, ENV) is False


def test_single_element_and_or():
    only = {"Variable": "$.ok", "BooleanEquals": True}
    for field in ("And", "Or"):
        rule = compile_rule({field: [only], "Next": "X"})
        assert rule.matches({"ok": True}, ENV) is True
        assert rule.matches({"ok": False}, ENV) is False


def test_deep_nesting():
    # (x is a string matching "id-*" and not "id-0") or (x is a number and 100 <= x)
    rule = compile_rule({
        "Or": [
            {"And": [
                {"Variable": "$.x", "IsString": True},
                {"And": [
                    {"Variable": "$.x", "StringMatches": "id-*"},
                    {"Not": {"Not": {"Not": {"Variable": "$.x", "StringEquals": "id-0"}}}},
                ]},
            ]},
            {"And": [
                {"Variable": "$.x", "IsNumeric": True},
                {"Not": {"Variable": "$.x", "NumericLessThan": 100}},
            ]},
        ],
        "Next": "Match",
    })
    cases = {"id-7": True, "id-0": False, "xid-7": False, 100: True, 99: False, True: False, None: False}
    for value, expected in cases.items():
        assert rule.matches({"x": value}, ENV) is expected, value


def test_a_compiled_rule_is_reusable():
    rule = compile_rule({"Variable": "$.i", "NumericLessThan": 10000})
    counted = 0
    data = {"i": 0}
    while rule.matches(data, ENV):
        data = {"i": data["i"] + 1}
        counted += 1
    assert counted == 10000


# --- runtime errors -------------------------------------------------------------------

def test_missing_variable_is_a_runtime_error_naming_the_path():
    rule = compile_rule({"Variable": "$.order.total", "NumericGreaterThan": 0})
    with pytest.raises(StatesError) as leaf:
        rule.matches({"order": {}}, ENV)
    assert leaf.value.error == errors.RUNTIME
    assert leaf.value.cause == "Invalid path '$.order.total' : No results for path: $['order']['total']"

    with pytest.raises(StatesError) as middle:
        rule.matches({"customer": {}}, ENV)
    assert middle.value.error == errors.RUNTIME
    assert middle.value.cause == "Invalid path '$.order.total' : Missing property in path $['order']"


def test_missing_index_is_a_runtime_error():
    rule = compile_rule({"Variable": "$.rows[2]", "IsNull": True})
    with pytest.raises(StatesError) as raised:
        rule.matches({"rows": [1, 2]}, ENV)
    assert raised.value.error == errors.RUNTIME
    assert raised.value.cause == "Invalid path '$.rows[2]' : No results for path: $['rows'][2]"


@pytest.mark.parametrize(
    "field, operand",
    [("IsNull", True), ("IsString", False), ("StringMatches", "*"), ("BooleanEquals", True),
     ("TimestampEquals", "2021-06-01T08:00:00Z")],
)
def test_every_operator_but_is_present_needs_the_variable(field, operand):
    rule = compile_rule({"Variable": "$.gone", field: operand})
    with pytest.raises(StatesError) as raised:
        rule.matches({}, ENV)
    assert raised.value.error == errors.RUNTIME
    assert "$.gone" in raised.value.cause


def test_missing_path_operand_is_a_runtime_error():
    rule = compile_rule({"Variable": "$.a", "NumericEqualsPath": "$.b"})
    with pytest.raises(StatesError) as raised:
        rule.matches({"a": 1}, ENV)
    assert raised.value.error == errors.RUNTIME
    assert raised.value.cause == "Invalid path '$.b' : No results for path: $['b']"


def test_missing_path_inside_a_combinator_is_still_an_error():
    rule = compile_rule({"Not": {"Variable": "$.missing", "StringEquals": "x"}})
    with pytest.raises(StatesError):
        rule.matches({}, ENV)


# --- syntax errors ----------------------------------------------------------------------

@pytest.mark.parametrize(
    "rule, named",
    [
        ({"Variable": "$.a", "Next": "X"}, "comparison operator"),
        ({"Next": "X"}, "comparison operator"),
        ({"Variable": "$.a", "StringEquals": "x", "StringMatches": "x*"}, "StringMatches"),
        ({"Variable": "$.a", "NumericEquals": 1, "NumericEqualsPath": "$.b"}, "NumericEqualsPath"),
        ({"Variable": "$.a", "NumericEquals": "1"}, "NumericEquals"),
        ({"Variable": "$.a", "NumericLessThan": True}, "NumericLessThan"),
        ({"Variable": "$.a", "NumericGreaterThan": None}, "NumericGreaterThan"),
        ({"Variable": "$.a", "StringEquals": 5}, "StringEquals"),
        ({"Variable": "$.a", "StringLessThan": ["a"]}, "StringLessThan"),
        ({"Variable": "$.a", "BooleanEquals": "true"}, "BooleanEquals"),
        ({"Variable": "$.a", "BooleanEquals": 1}, "BooleanEquals"),
        ({"Variable": "$.a", "TimestampEquals": "2021-06-01"}, "TimestampEquals"),
        ({"Variable": "$.a", "TimestampLessThan": "2021-06-01 08:00:00Z"}, "TimestampLessThan"),
        ({"Variable": "$.a", "TimestampGreaterThan": 1622534400}, "TimestampGreaterThan"),
        ({"Variable": "$.a", "IsNull": "yes"}, "IsNull"),
        ({"Variable": "$.a", "IsPresent": 1}, "IsPresent"),
        ({"Variable": "$.a", "IsTimestamp": None}, "IsTimestamp"),
        ({"Variable": "$.a", "StringMatches": 3}, "StringMatches"),
        ({"Variable": "$.a", "StringEqualsPath": "b"}, "StringEqualsPath"),
        ({"Variable": "$.a", "NumericEqualsPath": 4}, "NumericEqualsPath"),
        ({"Variable": "a.b", "StringEquals": "x"}, "Variable"),
        ({"Variable": 7, "StringEquals": "x"}, "Variable"),
        ({"Variable": "$.a[", "StringEquals": "x"}, "Variable"),
        ({"StringEquals": "x", "Next": "X"}, "Variable"),
        ({"And": [], "Next": "X"}, "And"),
        ({"Or": {"Variable": "$.a", "IsNull": True}}, "Or"),
        ({"Not": [{"Variable": "$.a", "IsNull": True}]}, "Not"),
        ({"And": [{"Variable": "$.a", "IsNull": True}], "Variable": "$.a"}, "Variable"),
        ({"And": [{"Variable": "$.a", "IsNull": True}], "Or": [{"Variable": "$.a", "IsNull": True}]}, "Or"),
        ({"And": [{"Variable": "$.a", "IsNull": True, "Next": "X"}]}, "Next"),
        ({"And": [{"Variable": "$.a"}]}, "comparison operator"),
        ({"Not": {"Variable": "$.a", "NumericEquals": "zero"}}, "NumericEquals"),
        ({"Variable": "$.a", "StringEqual": "x"}, "StringEqual"),
        ({"Variable": "$.a", "IsNull": True, "Default": "Y"}, "Default"),
    ],
)
def test_malformed_rules_raise_a_syntax_error_naming_the_field(rule, named):
    with pytest.raises(ChoiceSyntaxError) as raised:
        compile_rule(rule)
    assert named in str(raised.value)


def test_syntax_error_is_a_value_error():
    with pytest.raises(ValueError):
        compile_rule("not a rule")


def test_top_level_fields_of_the_choice_state_are_ignored():
    rule = compile_rule({
        "Variable": "$.a", "IsNull": True, "Next": "X", "Assign": {"seen": True},
        "Comment": "null check", "Output": {"x": 1},
    })
    assert rule.matches({"a": None}, ENV) is True


# --- parse_timestamp ---------------------------------------------------------------

@pytest.mark.parametrize(
    "text, expected",
    [
        ("2019-07-04T16:20:00Z", datetime(2019, 7, 4, 16, 20, tzinfo=timezone.utc)),
        ("2019-07-04T16:20:00.25Z", datetime(2019, 7, 4, 16, 20, 0, 250000, tzinfo=timezone.utc)),
        # nine fractional digits: kept to the microsecond in a datetime
        ("2019-07-04T16:20:00.123456789Z", datetime(2019, 7, 4, 16, 20, 0, 123456, tzinfo=timezone.utc)),
        ("2019-07-04T16:20:00+05:30",
         datetime(2019, 7, 4, 16, 20, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
        ("2019-07-04T16:20:00-08:00", datetime(2019, 7, 5, 0, 20, tzinfo=timezone.utc)),
        ("2019-07-04T16:20:00-00:00", datetime(2019, 7, 4, 16, 20, tzinfo=timezone.utc)),
        ("2019-07-04T16:20Z", datetime(2019, 7, 4, 16, 20, tzinfo=timezone.utc)),
        ("2020-02-29T00:00:00Z", datetime(2020, 2, 29, tzinfo=timezone.utc)),
        ("2019-12-31T23:59:59.999999999+18:00",
         datetime(2019, 12, 31, 5, 59, 59, 999999, tzinfo=timezone.utc)),
    ],
)
def test_parse_timestamp_accepts_iso_offset_date_times(text, expected):
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize(
    "text",
    [
        "2019-07-04T16:20:00",          # no offset
        "2019-07-04 16:20:00Z",         # space instead of T
        "2019-07-04",                   # date only
        "16:20:00Z",                    # time only
        "04-07-2019T16:20:00Z",         # day first
        "2019-7-4T16:20:00Z",           # missing zero padding
        "2019-07-04T24:00:00Z",         # hour 24
        "2019-07-04T16:60:00Z",         # minute 60
        "2019-07-04T23:59:60Z",         # leap second
        "2019-02-29T00:00:00Z",         # not a leap year
        "2019-13-01T00:00:00Z",         # month 13
        "2019-07-04T16:20:00.1234567891Z",  # ten fractional digits
        "2019-07-04T16:20:00+1:00",     # one-digit offset hour
        "2019-07-04T16:20:00+19:00",    # offset beyond 18 hours
        "2019-07-04T16:20:00+05:60",    # offset minute 60
        "2019-07-04T16:20:00Z ",        # trailing text
        " 2019-07-04T16:20:00Z",        # leading text
        "2019-07-04T16:20:00UTC",
        "",
        "now",
    ],
)
def test_parse_timestamp_rejects_other_strings(text):
    assert parse_timestamp(text) is None
    assert timestamp_nanos(text) is None


def test_parse_timestamp_rejects_non_strings():
    assert parse_timestamp(1562257200) is None
    assert parse_timestamp(None) is None


def test_timestamp_nanos_is_exact():
    assert timestamp_nanos("1970-01-01T00:00:00Z") == 0
    assert timestamp_nanos("1970-01-01T00:00:01.000000001Z") == 1_000_000_001
    assert timestamp_nanos("1970-01-01T01:00:00+01:00") == 0
    assert timestamp_nanos("1969-12-31T23:59:59.5Z") == -500_000_000
