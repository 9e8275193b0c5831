"""The concurrent-answers bench's short form: points of one execution answered at once by several processes
(bench/concurrent_answers.py)."""
from __future__ import annotations

import pytest

from bench.concurrent_answers import measure


@pytest.mark.parametrize("shape", ["map", "parallel"])
def test_answers_to_one_execution_from_several_processes_are_each_applied_once(redis_client, shape):
    result = measure(points=24, processes=4, shape=shape)
    assert result.failures == []
    assert result.in_order["ok"] == result.at_once["ok"] == 24
    assert result.at_once["gave up"] == 0
    # each iteration or branch is stored apart: answers to different ones do not conflict
    assert result.at_once["conflicts"] == result.in_order["conflicts"] == 0
    assert result.at_once["joins"] == result.in_order["joins"] == 1  # the last one ran the join


def test_the_budgets_are_raised_only_while_measuring(redis_client, monkeypatch):
    monkeypatch.delenv("REQUEST_MAX_TRANSITIONS", raising=False)
    measure(points=2, processes=2, shape="map")
    import os

    assert "REQUEST_MAX_TRANSITIONS" not in os.environ
