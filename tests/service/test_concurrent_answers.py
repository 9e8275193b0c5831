"""The concurrent-answers bench's short form: points of one execution answered at once by several processes
(bench/concurrent_answers.py)."""
from __future__ import annotations

import pytest

from bench.concurrent_answers import measure


@pytest.mark.parametrize("shape, groups", [("map", 1), ("parallel", 1), ("nested", 2)])
def test_answers_to_one_execution_from_several_processes_are_each_applied_once(redis_client, shape, groups):
    result = measure(points=24, processes=4, shape=shape)
    assert result.failures == []
    # the warm-up execution's answers (one a process) are not counted
    assert result.in_order["ok"] == result.at_once["ok"] == 24
    assert result.at_once["gave up"] == 0
    # each iteration or branch is stored apart (inside a branch too): answers to different ones do not conflict
    assert result.in_order["conflicts"] == 0
    # the last one of each group (nested: each branch's Map) ran its join
    assert result.in_order["joins"] == groups
    if groups == 1:
        assert result.at_once["conflicts"] == 0 and result.at_once["joins"] == 1
    else:  # a group's join is a commit of the whole: a unit of another group committed meanwhile is answered
        # again on the whole execution (a conflict), and its group's join may then run there
        assert 1 <= result.at_once["joins"] <= groups


def test_both_totals_come_with_the_cpu_time_of_the_answering_processes_and_of_redis(redis_client):
    result = measure(points=8, processes=2, shape="map")
    # a process's CPU time fits in its own answering, within the window
    assert 0 < result.order_cpu <= result.order_seconds + 0.001
    assert 0 < result.once_cpu <= 2 * result.once_seconds + 0.001
    for redis in (result.order_redis, result.once_redis):
        assert redis.cpu > 0 and redis.commands > 0


def test_the_budgets_are_raised_only_while_measuring(redis_client, monkeypatch):
    monkeypatch.delenv("REQUEST_MAX_TRANSITIONS", raising=False)
    measure(points=2, processes=2, shape="map")
    import os

    assert "REQUEST_MAX_TRANSITIONS" not in os.environ
