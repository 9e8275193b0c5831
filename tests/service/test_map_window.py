"""A root Map with more items than MaxConcurrency, or with tolerated failures, stored iteration by iteration:
an iteration that ends starts the next one in its own commit, a tolerated failure is counted there, and
everything reads as the same definition run with the execution stored whole (``fanout.SPLIT_FROM`` high)."""
from __future__ import annotations

import json
import multiprocessing
import random
import statistics
import time

import pytest

from chalicelib.approvals import make_service
from chalicelib.asl import VirtualClock
from chalicelib.config import settings
from chalicelib.service import ServiceError, fanout
from chalicelib.store import Store
from chalicelib.store.records import compact

START = 1_800_000_000.0
WHOLE = 10 ** 9  # SPLIT_FROM that stores every execution whole


def window(concurrency: int, selector: dict | None = None, **tolerance) -> dict:
    """A Map over ``$.items`` whose iterations each wait for one answer, then pass it on."""
    return {"StartAt": "Each", "States": {
        "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": concurrency, "Next": "After",
                 "ItemSelector": selector or {"index.$": "$$.Map.Item.Index", "value.$": "$$.Map.Item.Value",
                                              "tag.$": "$.tag"},
                 **tolerance,
                 "ItemProcessor": {"StartAt": "Ask", "States": {
                     "Ask": {"Type": "Task", "Resource": "module:suspend", "Parameters": {"index.$": "$.index"},
                             "ResultPath": "$.answer", "Next": "Done"},
                     "Done": {"Type": "Pass", "End": True}}}},
        "After": {"Type": "Pass", "End": True}}}


@pytest.fixture
def service(store_redis):
    return make_service(settings(), Store(store_redis), clock=VirtualClock(START), base_url="http://test")


def open_points(service, execution_id: str) -> dict[int, str]:
    described = service.describe(execution_id, with_history=False, limit=1000)
    return {c["parameters"]["index"]: c["id"] for c in described["continuations"]}


def drive(service, store_redis, definition: dict, items: list, seed: int, failing=frozenset()) -> dict:
    """Run the definition, answering its open points in a random order (``failing`` indexes with an
    error); what it read as after each answer, its end, history, and how many commits of the whole
    execution it made after its start."""
    store_redis.flushdb()
    whole = []
    commit = service.store.commit
    service.store.commit = lambda change: whole.append(change.record.id) or commit(change)
    given = items if isinstance(items, dict) else {"items": items, "tag": "t"}
    document = service.start(json.dumps(definition), given, state_machine=None, trusted=True)
    execution_id, rng, snapshots = document["executionId"], random.Random(seed), []
    whole.clear()
    while service.describe(execution_id, with_history=False)["status"] == "SUSPENDED":
        points = open_points(service, execution_id)
        index = rng.choice(sorted(points))
        if index in failing:
            service.redeem(points[index], error="Rejected", cause=f"no {index}")
        else:
            service.redeem(points[index], result={"by": index})
        record = service.runs.load(execution_id)
        snapshots.append([record.snapshot, record.redrive, sorted(record.open)])
    service.store.commit = commit
    final = service.describe(execution_id)
    ended = {key: final.get(key) for key in ("status", "output", "error", "cause")}
    text = compact([ended, final["history"], snapshots]).replace(execution_id, "X")
    return {"read": json.loads(text), "whole": len(whole)}


def same_either_way(service, store_redis, monkeypatch, definition, items, seed, failing=frozenset()):
    """The run stored iteration by iteration and stored whole: what each read as (asserted equal)."""
    apart = drive(service, store_redis, definition, items, seed, failing)
    monkeypatch.setattr(fanout, "SPLIT_FROM", WHOLE)
    together = drive(service, store_redis, definition, items, seed, failing)
    monkeypatch.undo()
    assert apart["read"][0] == together["read"][0]  # the end
    assert apart["read"][1] == together["read"][1]  # the history, event by event
    for step, (one, other) in enumerate(zip(apart["read"][2], together["read"][2])):
        assert one == other, f"after answer {step + 1}"
    return apart


@pytest.mark.parametrize("concurrency", [1, 3, 10])
def test_a_map_with_items_left_reads_and_ends_as_it_does_stored_whole(service, store_redis, monkeypatch, concurrency):
    items = [{"n": n} for n in range(14)]
    apart = same_either_way(service, store_redis, monkeypatch, window(concurrency), items, seed=concurrency)
    end = apart["read"][0]
    assert end["status"] == "SUCCEEDED"
    assert end["output"] == [{"index": n, "value": {"n": n}, "tag": "t", "answer": {"by": n}} for n in range(14)]
    assert apart["whole"] == 1  # only the join: every other answer committed its iteration (and the next) alone
    history = apart["read"][1]
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))


def test_the_next_iteration_is_stored_apart_with_the_counter_moved_and_its_input_taken(service, store_redis):
    document = service.start(window(2), {"items": [{"n": n} for n in range(5)], "tag": "t"}, state_machine=None,
                             trusted=True)
    execution_id = document["executionId"]
    split_key = service.store.split_key(execution_id)
    assert store_redis.hget(split_key, "q") == b"2" and store_redis.hexists(split_key, "i2")
    record_before = store_redis.get(service.store.execution_key(execution_id))
    service.redeem(open_points(service, execution_id)[0], result={"by": 0})
    assert store_redis.get(service.store.execution_key(execution_id)) == record_before
    assert store_redis.hget(split_key, "q") == b"3" and not store_redis.hexists(split_key, "i2")
    assert store_redis.hexists(split_key, "b2") and store_redis.hget(split_key, "n") == b"2"
    assert sorted(open_points(service, execution_id)) == [1, 2]
    group = service.runs.load(execution_id).snapshot["root"]["group"]
    assert (group["next"], list(group["active"]), group["results"][0]) == (3, ["1", "2"], {
        "index": 0, "value": {"n": 0}, "tag": "t", "answer": {"by": 0}})
    assert all(store_redis.ttl(key) > 0 for key in store_redis.keys(f"*{execution_id}*"))


@pytest.mark.parametrize("tolerance, failing, status", [
    ({"ToleratedFailureCount": 3}, {1, 4, 8}, "SUCCEEDED"),
    ({"ToleratedFailureCount": 2}, {1, 4, 8}, "FAILED"),
    ({"ToleratedFailurePercentage": 25}, {0, 5, 9}, "SUCCEEDED"),
    ({"ToleratedFailurePercentage": 10}, {0, 5, 9}, "FAILED"),
])
def test_tolerated_failures_under_and_over_the_threshold(service, store_redis, monkeypatch, tolerance, failing, status):
    items = [{"n": n} for n in range(12)]
    for concurrency in (3, 12):
        apart = same_either_way(service, store_redis, monkeypatch, window(concurrency, **tolerance), items,
                                seed=len(failing) + concurrency, failing=failing)
        end = apart["read"][0]
        assert end["status"] == status
        if status == "FAILED":
            assert end["error"] == "States.ExceedToleratedFailureThreshold"
            redrive = apart["read"][2][-1][1]["snapshot"]["root"]["group"]
            assert len(redrive["failedIndexes"]) == redrive["failed"] > 0
        else:
            assert [r for r in end["output"] if "Error" in r] == [
                {"Error": "Rejected", "Cause": f"no {n}"} for n in sorted(failing)]
            assert apart["whole"] == 1


def test_tolerated_failures_of_maps_inside_a_parallel_are_counted_in_their_iterations_commits(
        service, store_redis, monkeypatch):
    def inner(items_path: str, name: str) -> dict:
        each = window(0, {"index.$": "$$.Map.Item.Value.n", "value.$": "$$.Map.Item.Value", "tag": "t"},
                      ToleratedFailureCount=2)["States"]["Each"]
        each.pop("Next")
        states = each["ItemProcessor"]["States"]
        each["ItemProcessor"]["States"] = {
            f"{state}{name}": {**spec, **({"Next": f"Done{name}"} if "Next" in spec else {})}
            for state, spec in states.items()}
        each["ItemProcessor"]["StartAt"] = f"Ask{name}"
        return {"StartAt": name, "States": {name: {**each, "ItemsPath": items_path, "End": True}}}

    definition = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True,
                                                         "Branches": [inner("$.a", "A"), inner("$.b", "B")]}}}
    given = {"a": [{"n": n} for n in range(5)], "b": [{"n": n} for n in range(5, 10)]}
    within = same_either_way(service, store_redis, monkeypatch, definition, given, seed=7, failing={1, 3, 6})
    assert within["read"][0]["status"] == "SUCCEEDED"
    assert within["whole"] == 2  # each Map's join (the last one's runs the Parallel's too): no failure needed the whole
    beyond = same_either_way(service, store_redis, monkeypatch, definition, given, seed=8, failing={1, 2, 4, 6})
    assert beyond["read"][0]["error"] == "States.ExceedToleratedFailureThreshold"


def test_an_item_selector_that_fails_on_a_later_item_fails_the_map_as_stored_whole(service, store_redis, monkeypatch):
    items = [{"n": n, "x": n} for n in range(8)]
    del items[5]["x"]
    selector = {"index.$": "$$.Map.Item.Index", "x.$": "$$.Map.Item.Value.x"}
    apart = same_either_way(service, store_redis, monkeypatch, window(2, selector), items, seed=5)
    assert (apart["read"][0]["status"], apart["read"][0]["error"]) == ("FAILED", "States.Runtime")


def test_an_iteration_that_ends_at_once_is_started_by_the_whole_execution(service, store_redis, monkeypatch):
    definition = window(2)
    processor = definition["States"]["Each"]["ItemProcessor"]
    processor["StartAt"] = "Skip"
    processor["States"]["Skip"] = {"Type": "Choice", "Default": "Ask", "Choices": [
        {"Variable": "$.value.skip", "IsPresent": True, "Next": "Done"}]}
    items = [{"n": n, **({"skip": True} if n in (2, 3, 6) else {})} for n in range(8)]
    apart = same_either_way(service, store_redis, monkeypatch, definition, items, seed=2)
    assert apart["read"][0]["status"] == "SUCCEEDED" and apart["whole"] > 1


def test_a_selector_that_reads_the_time_keeps_the_items_whole(service, store_redis):
    selector = {"index.$": "$$.Map.Item.Index", "id.$": "States.UUID()"}
    document = service.start(window(2, selector), {"items": list(range(4))}, state_machine=None, trusted=True)
    split_key = service.store.split_key(document["executionId"])
    assert store_redis.hexists(split_key, "b0") and not store_redis.hexists(split_key, "q")
    for index in range(4):
        last = service.redeem(open_points(service, document["executionId"])[index], result={"by": index})
    assert [r["answer"] for r in last["output"]] == [{"by": n} for n in range(4)]


def test_a_split_record_stored_before_iterations_were_started_apart_resumes(service, store_redis):
    document = service.start(window(2), {"items": [{"n": n} for n in range(5)], "tag": "t"}, state_machine=None,
                             trusted=True)
    execution_id = document["executionId"]
    split_key = service.store.split_key(execution_id)
    meta = json.loads(store_redis.hget(split_key, "m"))
    del meta["items"]  # as the split stored it: no next iteration, no inputs, no failures kept
    store_redis.hset(split_key, "m", compact(meta))
    store_redis.hdel(split_key, "q", "fl", *(f"i{n}" for n in range(2, 5)))
    for index in range(5):
        last = service.redeem(open_points(service, execution_id)[index], result={"by": index})
    assert last["status"] == "SUCCEEDED"
    assert [r["answer"] for r in last["output"]] == [{"by": n} for n in range(5)]


def test_a_commit_that_finds_its_next_iteration_started_starts_the_one_after(service, store_redis):
    document = service.start(window(3), {"items": [{"n": n} for n in range(6)], "tag": "t"}, state_machine=None,
                             trusted=True)
    execution_id = document["executionId"]
    points = open_points(service, execution_id)
    first, second = service.claim(points[0]), service.claim(points[1])  # both would start iteration 3
    assert first.branch.next == second.branch.next == 3
    service.redemptions.resume_claimed(first, {"result": {"by": 0}})
    service.redemptions.resume_claimed(second, {"result": {"by": 1}})
    assert store_redis.hget(service.store.split_key(execution_id), "q") == b"5"
    assert sorted(open_points(service, execution_id)) == [2, 3, 4]
    for index in (2, 3, 4, 5):
        last = service.redeem(open_points(service, execution_id)[index], result={"by": index})
    assert [r["answer"] for r in last["output"]] == [{"by": n} for n in range(6)]
    history = service.describe(execution_id)["history"]
    ids = [e["id"] for e in history]
    assert len(ids) == len(set(ids)) == len(history)
    assert [e["type"] for e in history].count("ExecutionResumed") == 6


# -- answers from several processes at once -----------------------------------------------------------

def answer_share(execution_id: str, share: int, shares: int, barrier, results) -> None:
    """Answer the open points whose index is ``share`` modulo ``shares`` until the execution ends."""
    service = make_service(settings(), Store(__import__("redis").Redis.from_url(settings().redis_url)),
                           base_url="http://test")
    barrier.wait()
    answered, tries = [], 0
    while tries < 20_000:
        tries += 1
        described = service.describe(execution_id, with_history=False, limit=1000)
        if described["status"] != "SUSPENDED":
            break
        mine = [c for c in described["continuations"] if c["parameters"]["index"] % shares == share]
        for continuation in mine:
            index = continuation["parameters"]["index"]
            try:
                service.redeem(continuation["id"], result={"by": index})
                answered.append(index)
            except ServiceError as error:
                if error.code not in ("ContinuationBusy", "Busy"):
                    raise
        if not mine:
            time.sleep(0.002)
    results.put(answered)


def test_answers_from_several_processes_are_each_applied_once(redis_client):
    service = make_service(settings(), Store(redis_client), base_url="http://test")
    count, processes = 40, 4
    document = service.start(window(8), {"items": [{"n": n} for n in range(count)], "tag": "t"},
                             state_machine=None, trusted=True)
    execution_id = document["executionId"]
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=answer_share, args=(execution_id, k, processes, barrier, results))
               for k in range(processes)]
    for worker in workers:
        worker.start()
    answered = sorted(n for _ in workers for n in results.get(timeout=300))
    for worker in workers:
        worker.join()
    assert answered == list(range(count))
    final = service.describe(execution_id)
    assert final["status"] == "SUCCEEDED"
    assert [r["answer"] for r in final["output"]] == [{"by": n} for n in range(count)]
    history = final["history"]
    ids = [e["id"] for e in history]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)
    types = [e["type"] for e in history]
    assert (types.count("ExecutionResumed"), types.count("MapStateSucceeded")) == (count, 1)


# -- what one redemption sends ---------------------------------------------------------------------

def bytes_per_redemption(redis_client, items: int) -> float:
    from bench.service import Recorder, instrument

    recorder = Recorder()
    instrument(redis_client, recorder)
    service = make_service(settings(), Store(redis_client), clock=VirtualClock(START), base_url="http://test")
    document = service.start(window(5), {"items": [{"n": n, "label": f"item {n}"} for n in range(items)], "tag": "t"},
                             state_machine=None, trusted=True)
    sent = []
    for index in range(12):
        point = open_points(service, document["executionId"])[index]
        recorder.record()
        service.redeem(point, result={"by": index})
        sent.append(recorder.bytes_sent)
        recorder.stop()
    redis_client.connection_pool.reset()
    return statistics.median(sent)


def test_the_bytes_one_redemption_sends_do_not_grow_with_the_items(redis_client, monkeypatch):
    few, many = bytes_per_redemption(redis_client, 20), bytes_per_redemption(redis_client, 400)
    assert many <= few * 1.1, (few, many)
    monkeypatch.setattr(fanout, "SPLIT_FROM", WHOLE)  # stored whole, each answer writes every item
    assert bytes_per_redemption(redis_client, 400) > 1.5 * bytes_per_redemption(redis_client, 20)
