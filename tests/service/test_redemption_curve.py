"""The redemption curve's short form (bench/redemption.py): every redemption of every size measured, sizes
taking turns, with its wall time, its CPU in this process, Redis's time running its commands and the bytes sent
and read, for the Map, the nested shape and the Map with iterations left to start."""
from __future__ import annotations

from bench.redemption import measure
from bench.service import instrumented_service


def test_each_redemption_is_measured_in_wall_time_cpu_time_redis_time_and_bytes(redis_client):
    bench = instrumented_service()
    curves = measure(bench.service, bench.recorder, [4, 6], 4, ("map", "nested"))
    assert [(curve.shape, curve.size) for curve in curves] == [("map", 4), ("map", 6), ("nested", 4), ("nested", 6)]
    # as many redemptions of each, never of a Map's last iteration (that runs the join): the Map of 4 and the
    # nested shape of 4 (two Maps of 2) took two executions each, those of 6 one
    assert [len(curve.times) for curve in curves] == [4, 4, 4, 4]
    listed = bench.service.list_executions(limit=100)["executions"]
    assert [execution["status"] for execution in listed] == ["SUSPENDED"] * 6, listed
    for curve in curves:
        assert len(curve.cpu) == len(curve.redis) == len(curve.sent) == len(curve.read) == len(curve.trips) \
            == len(curve.times)
        assert all(read > 0 for read in curve.read)
        assert all(0 < cpu <= seconds + 0.001 for cpu, seconds in zip(curve.cpu, curve.times))
        assert all(redis > 0 for redis in curve.redis)


def test_the_window_shape_answers_its_items_in_order_each_answer_starting_the_next_iteration(redis_client):
    bench = instrumented_service()
    [curve] = measure(bench.service, bench.recorder, [14], 5, ("window",))
    assert len(curve.times) == len(curve.sent) == 5
    [execution] = bench.service.list_executions(limit=10)["executions"]
    described = bench.service.describe(execution["executionId"], with_history=False)
    # items 0 to 4 answered in order, items 10 to 13 started in their place (the 5th found none left)
    assert sorted(c["parameters"]["item"]["n"] for c in described["continuations"]) == list(range(5, 14))
