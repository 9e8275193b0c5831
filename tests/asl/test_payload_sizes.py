"""The incremental size check is exact, and reuses what it measured before."""
from __future__ import annotations

import json

import pytest

from chalicelib.asl import limits


def json_size(value) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("value", [
    {"a": 1, "b": [True, False, None, 1.5, -2, 10**20], "c": "é\"\\\n\x01\ud800", "d": {}, "e": []},
    {"rows": [{"id": i, "text": "x" * 30, "nested": {"k": [i, str(i)]}} for i in range(200)]},
    [[[["deep"]]]], "plain", 12, None,
])
def test_cached_sizes_are_exactly_the_json_size(value):
    cache = limits.SizeCache()
    assert limits.cached_size(value, cache) == json_size(value)
    assert limits.cached_size(value, cache) == json_size(value)  # again, from the cache


def test_an_output_sharing_a_measured_input_is_measured_from_the_cache():
    cache = limits.SizeCache()
    big = {"rows": [{"id": i, "text": "y" * 50} for i in range(2000)]}
    limits.cached_size(big, cache)
    rows = big["rows"]
    big["rows"] = None  # a container the cache knows is not walked again: poisoning its list shows it
    out = {"rows": rows, "last": 1}
    assert limits.cached_size(out, cache) == json_size(out)
    assert cache.get(rows) is not None


def test_the_depth_limit_holds_through_cached_parts():
    cache = limits.SizeCache()
    value: list = ["x" * 600]
    for _ in range(limits.MAX_DATA_DEPTH - 1):
        value = [value, "x" * 600]
    limits.cached_size(value, cache)
    with pytest.raises(limits.TooDeep):
        limits.cached_size([value], cache)
