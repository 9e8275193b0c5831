"""Bounds that keep the data and the work of one execution finite.

AWS's own limits, where it has one:

* ``MAX_PAYLOAD_BYTES`` (256 KiB): the execution input, a state's input and
  output, a task's result and the variables one state assigns, measured as
  UTF-8 JSON text (``States.DataLimitExceeded``);
* ``intrinsics.MAX_RANGE_ITEMS`` (1,000 items from ``States.ArrayRange``) and
  ``intrinsics.MAX_FUNCTIONS`` (10 functions in one field);
* ``MAX_TRANSITIONS`` (25,000): the steps one execution takes (state
  transitions, and starts of Parallel branches and Map iterations), as AWS
  fails an execution at 25,000 history events (``States.Runtime``);
* ``MAX_STATE_NAME_LENGTH`` (80): the characters of a state's name, in a
  definition, a Parallel branch or a Map processor (refused at validation);
* ``MAX_INLINE_MAP_CONCURRENCY`` (40): the iterations an inline Map runs at
  once when its MaxConcurrency is unset or 0, as in AWS; a distributed Map
  runs up to ``MAX_DISTRIBUTED_MAP_CONCURRENCY`` (10,000).

Bounds AWS does not document, chosen far below what Python's recursion can
take (every recursive helper stays well inside the interpreter's limit):

* ``MAX_DATA_DEPTH``: arrays and objects nested in one value (Jackson's
  default, the JSON parser of many Java services, is also 1,000);
* ``MAX_STATE_NESTING``: Parallel and Map states nested in each other;
* ``MAX_DEFINITION_DEPTH``: arrays and objects nested in a definition;
* ``MAX_REQUEST_DEPTH``: arrays and objects nested in what one request sends (half of
  ``MAX_DATA_DEPTH``), so whatever the service answers around an echoed input (the execution
  document, its history events, a continuation's parameters, a page) stays far inside what
  ``json.loads`` reads with Python's default recursion limit (about 990 levels).

``payload_size`` measures a value without writing it out when it is far from
the limit either way, and stops as soon as it is certainly over: a value made
of shared references (``{"a.$": "$", "b.$": "$"}`` applied again and again)
costs no more to measure than the limit itself.
"""
from __future__ import annotations

import json
import sys
from typing import Any

__all__ = [
    "MAX_DATA_DEPTH",
    "MAX_DEFINITION_DEPTH",
    "MAX_DISTRIBUTED_MAP_CONCURRENCY",
    "MAX_INLINE_MAP_CONCURRENCY",
    "MAX_STATE_NAME_LENGTH",
    "MAX_PAYLOAD_BYTES",
    "MAX_REQUEST_DEPTH",
    "MAX_STATE_NESTING",
    "MAX_TRANSITIONS",
    "NotJson",
    "TooDeep",
    "definition_depths",
    "payload_size",
]

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_DATA_DEPTH = 1000
MAX_STATE_NESTING = 100
MAX_DEFINITION_DEPTH = 1000
MAX_REQUEST_DEPTH = MAX_DATA_DEPTH // 2
MAX_TRANSITIONS = 25_000
MAX_INLINE_MAP_CONCURRENCY = 40
MAX_DISTRIBUTED_MAP_CONCURRENCY = 10_000
MAX_STATE_NAME_LENGTH = 80


class TooDeep(ValueError):
    """A value nests arrays and objects more than ``MAX_DATA_DEPTH`` levels deep."""


class NotJson(ValueError):
    """A value that is not JSON (a set, a non-string key, a number JSON cannot write)."""


def _exact_size(value: Any) -> int:
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise NotJson(str(exc)) from None
    return len(text.encode("utf-8", "surrogatepass"))


def payload_size(value: Any, limit: float = MAX_PAYLOAD_BYTES, max_depth: int | None = None) -> int:
    """The size of ``value`` as compact UTF-8 JSON, or any number above ``limit`` once it is over.

    Raises :class:`TooDeep` for values nested deeper than ``max_depth`` and
    :class:`NotJson` for values JSON cannot hold. A string counts between one
    and six bytes a character (escapes, UTF-8); only when the lower and upper
    bounds straddle the limit is the value written out to count it exactly.
    Runs once per state transition, hence the unrolled loop.
    """
    if max_depth is None:
        max_depth = MAX_DATA_DEPTH
    if not isinstance(value, (dict, list)):
        low, high = _scalar_bounds(value)
        return low if high <= limit or low > limit else _exact_size(value)
    low = high = 0
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > max_depth:
            raise TooDeep(f"the value nests arrays and objects more than {max_depth} levels deep")
        count = len(node)
        low += count + 1 if count else 2
        high += count + 1 if count else 2
        if low > limit:  # a long array or object is over before its items are looked at
            return low
        if isinstance(node, dict):
            for key, item in node.items():
                if type(key) is not str:
                    raise NotJson(f"an object key must be a string, not {type(key).__name__}")
                kind = type(item)
                if kind is str:
                    low += len(key) + len(item) + 5
                    high += 6 * (len(key) + len(item)) + 5
                    continue
                low += len(key) + 3
                high += 6 * len(key) + 3
                if kind is dict or kind is list:
                    push((item, depth + 1))
                elif kind is int and -_SMALL < item < _SMALL:
                    low += 1
                    high += 17
                elif isinstance(item, (dict, list)):  # a subclass (JSONata's sequences)
                    push((item, depth + 1))
                else:
                    item_low, item_high = _scalar_bounds(item)
                    low += item_low
                    high += item_high
        else:
            for item in node:
                kind = type(item)
                if kind is str:
                    low += len(item) + 2
                    high += 6 * len(item) + 2
                elif kind is dict or kind is list:
                    push((item, depth + 1))
                elif kind is int and -_SMALL < item < _SMALL:
                    low += 1
                    high += 17
                elif isinstance(item, (dict, list)):
                    push((item, depth + 1))
                else:
                    item_low, item_high = _scalar_bounds(item)
                    low += item_low
                    high += item_high
        if low > limit:
            return low
    if high <= limit:
        return low
    return _exact_size(value)


_SMALL = 10**15  # integers below this write at most 16 characters (with the sign)


def _scalar_bounds(value: Any) -> tuple[int, int]:
    """(fewest, most) bytes a scalar takes as JSON."""
    kind = type(value)
    if kind is str:
        return len(value) + 2, 6 * len(value) + 2
    if kind is int:
        bits = value.bit_length()
        if bits > _MAX_INT_BITS:  # Python refuses to write it out as decimal text
            raise NotJson(f"an integer of about {bits * 3 // 10} digits is too long for JSON")
        return (1 + (bits - 1) * 3 // 10 if bits else 1), 2 + bits * 31 // 100
    if kind is float:
        if value != value or value in (_INFINITY, -_INFINITY):
            raise NotJson(f"{value!r} is not a JSON number")
        return 3, 24
    if value is None or kind is bool:
        return 4, 5
    raise NotJson(f"a {kind.__name__} is not a JSON value")


_INFINITY = float("inf")
# The longest integer Python writes out as decimal text (``sys.get_int_max_str_digits``, 0: no limit).
_MAX_INT_BITS = int((sys.get_int_max_str_digits() or 10**9) * 3.32) - 8


def definition_depths(definition: Any) -> tuple[int, int]:
    """(JSON nesting depth, Parallel/Map nesting depth) of a definition, without recursion.

    Both stop growing one past their limits (``MAX_DEFINITION_DEPTH``,
    ``MAX_STATE_NESTING``), so a hostile definition costs no more than that.
    """
    deepest = nesting = 0
    stack = [(definition, 1, 0)]
    while stack:
        node, depth, states = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DEFINITION_DEPTH:
                break
        if isinstance(node, dict):
            if isinstance(node.get("Type"), str) and node["Type"] in ("Parallel", "Map"):
                states += 1
                if states > nesting:
                    nesting = states
                    if nesting > MAX_STATE_NESTING:
                        break
            stack.extend((child, depth + 1, states) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1, states) for child in node)
    return deepest, nesting


class SizeCache:
    """Exact JSON sizes of containers already measured in one run, so a check costs what changed.

    Values are never changed in place once produced, so a container seen again
    (the input a ResultPath output shares) is not walked again. Entries hold
    their container (its id stays unique) and are dropped oldest-used first
    beyond ``budget`` bytes of measured JSON.
    """

    MIN_BYTES = 512  # smaller containers cost less to walk than to remember

    def __init__(self, budget: int = 64 * MAX_PAYLOAD_BYTES):
        from collections import OrderedDict

        self.entries: "OrderedDict[int, tuple[Any, int, int, int]]" = OrderedDict()
        self.budget = budget
        self.total = 0

    def get(self, node: Any):
        entry = self.entries.get(id(node))
        if entry is None or entry[0] is not node or entry[3] != len(node):
            return None
        self.entries.move_to_end(id(node))
        return entry

    def put(self, node: Any, size: int, height: int) -> None:
        if size < self.MIN_BYTES:
            return
        self.entries[id(node)] = (node, size, height, len(node))
        self.total += size
        while self.total > self.budget and self.entries:
            _, old = self.entries.popitem(last=False)
            self.total -= old[1]


def cached_size(value: Any, cache: SizeCache, max_depth: int | None = None) -> int:
    """The exact size of ``value`` as compact UTF-8 JSON, reusing and filling ``cache``.

    Raises :class:`TooDeep` and :class:`NotJson` as :func:`payload_size` does.
    """
    if max_depth is None:
        max_depth = MAX_DATA_DEPTH
    if not isinstance(value, (dict, list)):
        return _scalar_size(value)
    found = cache.get(value)
    if found is not None:
        if found[2] > max_depth:
            raise TooDeep(f"the value nests arrays and objects more than {max_depth} levels deep")
        return found[1]
    # post-order walk: each frame is [node, items iterator, size so far, height of children, is dict]
    stack = [[value, iter(value.items() if isinstance(value, dict) else value), 0, 0, isinstance(value, dict)]]
    while True:
        frame = stack[-1]
        node, items, size, height, is_dict = frame
        descended = False
        for item in items:
            if is_dict:
                key, item = item
                if type(key) is not str:
                    raise NotJson(f"an object key must be a string, not {type(key).__name__}")
                size += _string_size(key) + 1
            if isinstance(item, (dict, list)):
                found = cache.get(item)
                if found is not None:
                    if len(stack) + found[2] > max_depth:
                        raise TooDeep(f"the value nests arrays and objects more than {max_depth} levels deep")
                    size += found[1]
                    height = max(height, found[2])
                    continue
                if len(stack) >= max_depth:
                    raise TooDeep(f"the value nests arrays and objects more than {max_depth} levels deep")
                frame[2], frame[3] = size, height
                stack.append([item, iter(item.items() if isinstance(item, dict) else item), 0, 0,
                              isinstance(item, dict)])
                descended = True
                break
            size += _scalar_size(item)
        if descended:
            continue
        count = len(node)
        size += 2 + (count - 1 if count else 0)
        height += 1
        cache.put(node, size, height)
        stack.pop()
        if not stack:
            return size
        parent = stack[-1]
        parent[2] += size
        parent[3] = max(parent[3], height)


def _string_size(text: str) -> int:
    quoted = _encode_string(text)
    return len(quoted) if quoted.isascii() else len(quoted.encode("utf-8", "surrogatepass"))


def _scalar_size(value: Any) -> int:
    kind = type(value)
    if kind is str:
        return _string_size(value)
    if value is None:
        return 4
    if kind is bool:
        return 4 if value else 5
    if kind is int:
        _scalar_bounds(value)  # refuses integers too long to write out
        return len(int.__repr__(value))
    if kind is float:
        _scalar_bounds(value)
        return len(float.__repr__(value))
    if isinstance(value, str):
        return _string_size(str(value))
    return _exact_size(value)


from json.encoder import encode_basestring as _encode_string  # noqa: E402
