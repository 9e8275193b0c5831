"""The task resource ``module:redrive-item`` the redrive tests count: ``{"item": x}`` answers ``{"done": x}``;
an item in ``BROKEN`` fails with ``Broken``. ``CALLS`` counts the calls per item."""
from __future__ import annotations

from collections import Counter

import pytest

from chalicelib.asl import TaskFailed
from chalicelib.resources.registry import module_handler

CALLS: Counter = Counter()
BROKEN: set = set()


@module_handler("redrive-item")
def redrive_item(payload, context):
    CALLS[payload["item"]] += 1
    if payload["item"] in BROKEN:
        raise TaskFailed("Broken", f"item {payload['item']} is broken")
    return {"done": payload["item"]}


#: A Map over ``$.items`` that tolerates 2 failed iterations, each one call of ``module:redrive-item``.
HUNDRED = {"StartAt": "Each", "States": {"Each": {
    "Type": "Map", "ItemsPath": "$.items", "ToleratedFailureCount": 2,
    "ItemSelector": {"item.$": "$$.Map.Item.Value"},
    "ItemProcessor": {"StartAt": "Work", "States": {"Work": {
        "Type": "Task", "Resource": "module:redrive-item", "End": True}}},
    "End": True}}}


@pytest.fixture
def items():
    """CALLS and BROKEN, empty; 7, 42 and 99 broken."""
    CALLS.clear()
    BROKEN.clear()
    BROKEN.update({7, 42, 99})
    yield CALLS, BROKEN
    BROKEN.clear()


def rerun_only_the_broken(calls: Counter) -> None:
    """After the redrive: 103 calls, the 3 broken items called twice, every other item once."""
    assert sum(calls.values()) == 103
    assert {item for item, count in calls.items() if count == 2} == {7, 42, 99}
    assert set(calls) == set(range(100))
