"""Intrinsic functions: parsing, every function, escaping, bounds and errors."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from chalicelib.asl import errors
from chalicelib.asl.errors import StatesError
from chalicelib.asl.intrinsics import (
    IntrinsicSyntaxError,
    compile_intrinsic,
    is_intrinsic,
)
from chalicelib.asl.paths import PathNotFound


def env(context=None, **variables):
    return SimpleNamespace(context=context or {}, variables=variables)


def run(text, data=None, environment=None):
    return compile_intrinsic(text).evaluate(data, environment or env())


def failure(text, data=None, environment=None) -> StatesError:
    with pytest.raises(StatesError) as caught:
        run(text, data, environment)
    assert caught.value.error == errors.INTRINSIC_FAILURE
    return caught.value


def syntax_error(text) -> str:
    with pytest.raises(IntrinsicSyntaxError) as caught:
        compile_intrinsic(text)
    return str(caught.value)


# --- recognising and compiling ------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["States.UUID()", "States.Format('{}', $.a)", "States.Array( )  "],
)
def test_is_intrinsic_accepts_calls(text):
    assert is_intrinsic(text)


@pytest.mark.parametrize(
    "text",
    ["$.States", "States.Format", "states.Array()", "plain text", "", None, 42],
)
def test_is_intrinsic_rejects_other_values(text):
    assert not is_intrinsic(text)


def test_compiled_calls_are_cached():
    assert compile_intrinsic("States.ArrayLength($.x)") is compile_intrinsic("States.ArrayLength($.x)")


def test_syntax_error_is_a_value_error():
    assert issubclass(IntrinsicSyntaxError, ValueError)


# --- arguments ------------------------------------------------------------------


def test_literal_arguments_of_every_kind():
    assert run("States.Array('txt', 7, -3, 2.25, 1e2, true, false, null)") == [
        "txt", 7, -3, 2.25, 100.0, True, False, None,
    ]


def test_integer_literal_stays_an_integer():
    (value,) = run("States.Array(12)")
    assert type(value) is int


def test_empty_array_and_spaces_between_arguments():
    assert run("States.Array()") == []
    assert run("States.Array(  1 ,2  ,   3 )") == [1, 2, 3]


def test_path_arguments_read_input_context_and_variables():
    data = {"order": {"items": ["pen", "ink"]}}
    context = {"Execution": {"Name": "run-17"}}
    result = run(
        "States.Array($.order.items[1], $$.Execution.Name, $limit, $)",
        data,
        env(context, limit=5),
    )
    assert result == ["ink", "run-17", 5, data]


def test_path_with_quoted_key_containing_comma_and_parenthesis():
    data = {"a,b)": "odd key"}
    assert run("States.Array($['a,b)'], 'x')", data) == ["odd key", "x"]


def test_path_with_filter_expression():
    data = {"books": [{"id": 1, "tag": "x"}, {"id": 2, "tag": "y"}]}
    assert run("States.Array($.books[?(@.tag == 'y')].id)", data) == [[2]]


def test_missing_path_raises_path_not_found():
    with pytest.raises(PathNotFound) as caught:
        run("States.ArrayLength($.nothing.here)", {"other": 1})
    assert caught.value.path == "$.nothing.here"


def test_missing_variable_raises_path_not_found():
    with pytest.raises(PathNotFound):
        run("States.Format('{}', $unknown)", {}, env())


# --- escaping -------------------------------------------------------------------


def test_escaped_quote_brace_and_backslash():
    assert run(r"States.Array('it\'s', '\{x\}', 'a\\b')") == ["it's", "{x}", "a\\b"]


def test_unescaped_braces_are_kept_outside_format():
    assert run("States.StringToJson('{\"k\": [1]}')") == {"k": [1]}


def test_escaped_braces_are_not_a_placeholder():
    assert run(r"States.Format('\{} and {}', 'v')") == "{} and v"


def test_characters_of_the_syntax_inside_literals():
    assert run("States.Array('a, b', '(x)', '$.p')") == ["a, b", "(x)", "$.p"]


@pytest.mark.parametrize("text", [r"States.Array('a\nb')", r"States.Array('end\')"])
def test_invalid_or_open_escape_is_a_syntax_error(text):
    message = syntax_error(text)
    assert "escape" in message or "unterminated" in message


# --- States.Format ---------------------------------------------------------------


def test_format_literal_template():
    data = {"who": "Ada", "n": 3}
    assert run("States.Format('{} has {} cats', $.who, $.n)", data) == "Ada has 3 cats"


def test_format_renders_values_like_aws():
    data = {"obj": {"k": "v", "n": [1, "two"]}, "list": [True, None], "f": 0.5}
    result = run("States.Format('{}|{}|{}|{}|{}', $.obj, $.list, $.f, null, false)", data)
    assert result == "{k=v, n=[1, two]}|[true, null]|0.5|null|false"


def test_format_template_from_a_path():
    data = {"template": "Dear {}, it's {}", "a": "Bo", "b": "late"}
    assert run("States.Format($.template, $.a, $.b)", data) == "Dear Bo, it's late"


def test_format_template_from_a_variable():
    assert run("States.Format($greeting, 'Kim')", {}, env(greeting="Hi {}!")) == "Hi Kim!"


def test_format_without_placeholders():
    assert run("States.Format('constant')") == "constant"


def test_format_literal_placeholder_count_mismatch_is_a_syntax_error():
    assert "placeholders" in syntax_error("States.Format('{} {}', 'only one')")


def test_format_path_template_placeholder_count_mismatch_fails_at_run_time():
    error = failure("States.Format($.t, 'x')", {"t": "no placeholder"})
    assert "States.Format" in error.cause


def test_format_template_must_be_a_string():
    assert "string" in syntax_error("States.Format(5, 'x')")
    error = failure("States.Format($.t)", {"t": ["{}"]})
    assert "string" in error.cause


# --- JSON functions --------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"a": {"b": [1, 2.5]}}', {"a": {"b": [1, 2.5]}}),
        ("[true, null]", [True, None]),
        ("42", 42),
        ('"quoted"', "quoted"),
        ("", None),
        ("   ", None),
    ],
)
def test_string_to_json(text, expected):
    assert run("States.StringToJson($.s)", {"s": text}) == expected


@pytest.mark.parametrize("text", ["{bad", "[1,]", "NaN", "1 2"])
def test_string_to_json_rejects_invalid_json(text):
    failure("States.StringToJson($.s)", {"s": text})


def test_string_to_json_needs_a_string():
    failure("States.StringToJson($.s)", {"s": {"already": "json"}})


def test_string_to_json_of_absurdly_deep_json_fails_cleanly():
    deep = "[" * 100_000 + "]" * 100_000
    failure("States.StringToJson($.s)", {"s": deep})


def test_json_to_string_is_compact_and_keeps_unicode():
    data = {"v": {"name": "Zoë", "tags": ["a", "b"], "n": None}}
    assert run("States.JsonToString($.v)", data) == '{"name":"Zoë","tags":["a","b"],"n":null}'


@pytest.mark.parametrize(
    "value, text", [(None, "null"), (7, "7"), (0.25, "0.25"), (False, "false"), ("s", '"s"')]
)
def test_json_to_string_of_scalars(value, text):
    assert run("States.JsonToString($.v)", {"v": value}) == text


def test_json_merge_is_shallow_and_second_wins():
    data = {"x": {"keep": 1, "deep": {"p": 1}}, "y": {"deep": {"q": 2}, "new": True}}
    assert run("States.JsonMerge($.x, $.y, false)", data) == {"keep": 1, "deep": {"q": 2}, "new": True}


def test_json_merge_does_not_change_its_inputs():
    data = {"x": {"a": 1}, "y": {"a": 2}}
    run("States.JsonMerge($.x, $.y, false)", data)
    assert data == {"x": {"a": 1}, "y": {"a": 2}}


def test_json_merge_rejects_deep_merging():
    error = failure("States.JsonMerge($.x, $.y, true)", {"x": {}, "y": {}})
    assert "shallow" in error.cause


@pytest.mark.parametrize("data", [{"x": [], "y": {}}, {"x": {}, "y": "s"}])
def test_json_merge_needs_objects(data):
    failure("States.JsonMerge($.x, $.y, false)", data)


def test_json_merge_flag_must_be_boolean():
    failure("States.JsonMerge($.x, $.y, 0)", {"x": {}, "y": {}})


# --- arrays ------------------------------------------------------------------------


def test_array_keeps_values_of_any_type():
    data = {"o": {"k": [1]}}
    assert run("States.Array($.o, States.Array(1, 2))", data) == [{"k": [1]}, [1, 2]]


@pytest.mark.parametrize(
    "items, size, chunks",
    [
        ([1, 2, 3, 4, 5], 2, [[1, 2], [3, 4], [5]]),
        (["a", "b"], 5, [["a", "b"]]),
        ([], 3, []),
        ([1, 2, 3], 1, [[1], [2], [3]]),
    ],
)
def test_array_partition(items, size, chunks):
    assert run("States.ArrayPartition($.a, $.n)", {"a": items, "n": size}) == chunks


@pytest.mark.parametrize("size", [0, -2, "2", None])
def test_array_partition_needs_a_positive_integer_chunk(size):
    failure("States.ArrayPartition($.a, $.n)", {"a": [1, 2], "n": size})


def test_array_partition_needs_an_array():
    failure("States.ArrayPartition($.a, 2)", {"a": "abc"})


def test_array_contains_uses_json_equality():
    data = {"a": [1, "x", {"p": 1, "q": [2]}, None, False]}
    assert run("States.ArrayContains($.a, $.v)", dict(data, v={"q": [2], "p": 1})) is True
    assert run("States.ArrayContains($.a, 1.0)", data) is True
    assert run("States.ArrayContains($.a, null)", data) is True
    assert run("States.ArrayContains($.a, 'y')", data) is False
    assert run("States.ArrayContains($.a, true)", data) is False


def test_array_contains_does_not_mistake_booleans_for_numbers():
    assert run("States.ArrayContains($.a, true)", {"a": [1, 0]}) is False
    assert run("States.ArrayContains($.a, 0)", {"a": [False]}) is False


def test_array_contains_needs_an_array():
    failure("States.ArrayContains($.a, 1)", {"a": {"1": 1}})


@pytest.mark.parametrize(
    "args, expected",
    [
        ("2, 8, 3", [2, 5, 8]),
        ("2, 9, 3", [2, 5, 8]),
        ("5, 1, -2", [5, 3, 1]),
        ("4, 4, 1", [4]),
        ("3, 1, 1", []),
    ],
)
def test_array_range(args, expected):
    assert run(f"States.ArrayRange({args})") == expected


def test_array_range_allows_exactly_the_limit():
    assert len(run("States.ArrayRange(1, 1000, 1)")) == 1000


def test_array_range_refuses_more_than_1000_items():
    error = failure("States.ArrayRange(0, 1000, 1)")
    assert "1000" in error.cause


def test_array_range_refuses_huge_ranges_without_building_them():
    failure("States.ArrayRange(0, 9000000000000, 1)")


def test_array_range_refuses_zero_step():
    failure("States.ArrayRange(1, 5, 0)")


def test_array_range_needs_numbers():
    failure("States.ArrayRange($.a, 5, 1)", {"a": "1"})


def test_array_get_item():
    assert run("States.ArrayGetItem($.a, 0)", {"a": ["first", "second"]}) == "first"
    assert run("States.ArrayGetItem($.a, $.i)", {"a": [10, 20, 30], "i": 2}) == 30


@pytest.mark.parametrize("index", [3, -1, 1.5, "1", True])
def test_array_get_item_rejects_bad_index(index):
    failure("States.ArrayGetItem($.a, $.i)", {"a": [1, 2, 3], "i": index})


def test_array_get_item_out_of_range_names_the_index():
    error = failure("States.ArrayGetItem($.a, 7)", {"a": [1]})
    assert "7" in error.cause and "States.ArrayGetItem" in error.cause


def test_array_length():
    length = run("States.ArrayLength($.a)", {"a": [None, [], {}]})
    assert length == 3 and type(length) is int
    assert run("States.ArrayLength($.a)", {"a": []}) == 0


def test_array_length_needs_an_array():
    failure("States.ArrayLength($.a)", {"a": "four"})


def test_array_unique_keeps_first_occurrences_in_order():
    data = {"a": [3, "3", 3, {"x": 1, "y": 2}, {"y": 2, "x": 1}, [1], [1], True, 1, True, None, None]}
    assert run("States.ArrayUnique($.a)", data) == [3, "3", {"x": 1, "y": 2}, [1], True, 1, None]


def test_array_unique_needs_an_array():
    failure("States.ArrayUnique($.a)", {"a": 5})


# --- encoding and hashing --------------------------------------------------------------


def test_base64_encode_and_decode():
    assert run("States.Base64Encode('hello')") == "aGVsbG8="
    assert run("States.Base64Decode('aGVsbG8=')") == "hello"
    assert run("States.Base64Encode('')") == ""


def test_base64_round_trips_unicode():
    encoded = run("States.Base64Encode($.s)", {"s": "café ☕"})
    assert run("States.Base64Decode($.e)", {"e": encoded}) == "café ☕"


def test_base64_decode_accepts_missing_padding():
    assert run("States.Base64Decode('aGk')") == "hi"


@pytest.mark.parametrize("text", ["not base64!", "a"])
def test_base64_decode_rejects_invalid_input(text):
    failure("States.Base64Decode($.s)", {"s": text})


@pytest.mark.parametrize("function", ["Base64Encode", "Base64Decode"])
def test_base64_input_limit(function):
    assert run(f"States.{function}($.s)", {"s": "A" * 10_000}) is not None
    error = failure(f"States.{function}($.s)", {"s": "A" * 10_001})
    assert "10000" in error.cause


@pytest.mark.parametrize("function", ["Base64Encode", "Base64Decode"])
def test_base64_needs_a_string(function):
    failure(f"States.{function}($.s)", {"s": 12})


# FIPS 180 / RFC 1321 test vectors for the message "abc".
@pytest.mark.parametrize(
    "algorithm, digest",
    [
        ("MD5", "900150983cd24fb0d6963f7d28e17f72"),
        ("SHA-1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("SHA-256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "SHA-384",
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
            "8086072ba1e7cc2358baeca134c825a7",
        ),
        (
            "SHA-512",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
    ],
)
def test_hash(algorithm, digest):
    assert run("States.Hash($.data, $.alg)", {"data": "abc", "alg": algorithm}) == digest


@pytest.mark.parametrize("algorithm", ["SHA-3", "sha-256", "SHA256", 256])
def test_hash_rejects_unknown_algorithms(algorithm):
    error = failure("States.Hash('abc', $.alg)", {"alg": algorithm})
    assert "SHA-512" in error.cause


def test_hash_input_limit_and_type():
    failure("States.Hash($.s, 'MD5')", {"s": "x" * 10_001})
    failure("States.Hash($.s, 'MD5')", {"s": ["x"]})


# --- math ------------------------------------------------------------------------------


def test_math_add_integers():
    assert run("States.MathAdd($.a, -4)", {"a": 10}) == 6


@pytest.mark.parametrize(
    "a, b, total",
    [(4.5, 0, 5), (-4.5, 0, -4), (0.4, 0.6, 1), (2.0, 3.0, 5), (-7.51, 0, -8)],
)
def test_math_add_rounds_each_operand_half_up(a, b, total):
    result = run("States.MathAdd($.a, $.b)", {"a": a, "b": b})
    assert result == total and type(result) is int


def test_math_add_operands_must_fit_in_32_bits():
    assert run("States.MathAdd(2147483647, -2147483648)") == -1
    failure("States.MathAdd(2147483648, 0)")
    failure("States.MathAdd(0, -2147483649)")


@pytest.mark.parametrize("value", ["1", None, True, [1]])
def test_math_add_needs_numbers(value):
    failure("States.MathAdd($.v, 1)", {"v": value})


def test_math_random_stays_in_range():
    for _ in range(200):
        value = run("States.MathRandom(3, 6)")
        assert type(value) is int and 3 <= value <= 6


def test_math_random_with_seed_is_repeatable():
    first = run("States.MathRandom(1, 1000000, $.seed)", {"seed": 42})
    again = run("States.MathRandom(1, 1000000, $.seed)", {"seed": 42})
    assert first == again and 1 <= first <= 1000000


def test_math_random_rejects_reversed_range_and_bad_values():
    failure("States.MathRandom(10, 1)")
    failure("States.MathRandom('a', 1)")
    failure("States.MathRandom(1, 5, 'seed')")


# --- strings and ids ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, delimiters, pieces",
    [
        ("a-b-c", "-", ["a", "b", "c"]),
        ("x;y,z", ";,", ["x", "y", "z"]),
        ("--a--b-", "-", ["a", "b"]),
        (";;;", ";", []),
        ("no split", "|", ["no split"]),
        ("keep", "", ["keep"]),
        ("line1\nline2", "\n", ["line1", "line2"]),
    ],
)
def test_string_split(text, delimiters, pieces):
    assert run("States.StringSplit($.t, $.d)", {"t": text, "d": delimiters}) == pieces


def test_string_split_needs_strings():
    failure("States.StringSplit($.t, ',')", {"t": ["a,b"]})
    failure("States.StringSplit('a,b', $.d)", {"d": 1})


def test_uuid_is_a_fresh_version_4_uuid():
    first, second = run("States.UUID()"), run("States.UUID()")
    pattern = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert pattern.match(first) and pattern.match(second) and first != second


# --- nesting --------------------------------------------------------------------------------


def test_nested_calls():
    data = {"arn": "arn:aws:states:eu-west-1:123:stateMachine:billing"}
    text = "States.Format('{} in {}', States.ArrayGetItem(States.StringSplit($.arn, ':'), 6), " \
           "States.ArrayGetItem(States.StringSplit($.arn, ':'), 3))"
    assert run(text, data) == "billing in eu-west-1"


def test_nested_math_with_variables():
    text = "States.MathAdd(States.MathAdd($a, $b), States.ArrayLength($.list))"
    assert run(text, {"list": [0, 0]}, env(a=1, b=2)) == 5


def test_nested_json_round_trip():
    data = {"obj": {"k": [1, 2]}}
    assert run("States.StringToJson(States.JsonToString($.obj))", data) == {"k": [1, 2]}


def test_ten_functions_are_allowed_but_not_eleven():
    ten = "States.Array(" * 10 + ")" * 10
    assert run(ten) == [[[[[[[[[[]]]]]]]]]]
    eleven = "States.Array(" + ", ".join(["States.UUID()"] * 10) + ")"
    assert "10" in syntax_error(eleven)


# --- syntax errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("States.Nope(1)", "unknown"),
        ("States.Array(1) States.Array(2)", "unexpected"),
        ("States.Array(1 2)", "expected ','"),
        ("States.Array(1,)", "expected"),
        ("States.Array('open)", "unterminated"),
        ("States.Array(01)", "expected ','"),
        ("States.Array(-)", "number"),
        ("States.Array(yes)", "expected"),
        ("States.Array($.a[0)", "unterminated"),
        ("States.Array($.a..[)", "path"),
        ("States.Array(States.Nope())", "unknown"),
        ("States.Array (1)", "function call"),
        ("not a call", "not an intrinsic"),
    ],
)
def test_syntax_errors(text, fragment):
    assert fragment in syntax_error(text)


@pytest.mark.parametrize(
    "text",
    [
        "States.StringToJson()",
        "States.JsonToString($.a, $.b)",
        "States.ArrayPartition($.a)",
        "States.ArrayContains($.a)",
        "States.ArrayRange(1, 2)",
        "States.ArrayGetItem($.a)",
        "States.ArrayLength()",
        "States.ArrayUnique($.a, $.b)",
        "States.Base64Encode()",
        "States.Base64Decode('a', 'b')",
        "States.Hash('a')",
        "States.JsonMerge($.a, $.b)",
        "States.MathRandom(1)",
        "States.MathRandom(1, 2, 3, 4)",
        "States.MathAdd(1)",
        "States.StringSplit('a')",
        "States.UUID(1)",
        "States.Format()",
    ],
)
def test_wrong_argument_counts(text):
    assert "takes" in syntax_error(text)
