"""Fan-outs inside fan-outs stored unit by unit: a Parallel of Maps, a Map of Maps, a Map of Parallels and
three levels deep, answered through the split path, end as the same definition answered whole does, and
what one answer costs does not grow with the number of points open beside it."""
from __future__ import annotations

import json
import random
import statistics

import pytest
import redis

from chalicelib.approvals import make_service
from chalicelib.asl import VirtualClock
from chalicelib.config import settings
from chalicelib.asl.engine import frame_waits
from chalicelib.service import fanout
from chalicelib.store import Store
from chalicelib.store.records import compact, deflate_text

START = 1_800_000_000.0


def ask(name: str, then: str | None = None, **parameters) -> dict:
    return {"Type": "Task", "Resource": "module:suspend", "ResultPath": f"$.{name}",
            "Parameters": {"at": name, **parameters}, **({"Next": then} if then else {"End": True})}


def each(items_path: str, processor: dict, **fields) -> dict:
    return {"Type": "Map", "ItemsPath": items_path, "ItemProcessor": processor, **fields}


def machine(start: str, **states) -> dict:
    return {"StartAt": start, "States": states}


#: Every iteration asks, some twice; the variables of the root and of the frames on the way are read
#: inside after an answer (the scopes a unit's run sees), and each level's Map and Parallel joins its
#: own results.
INNER = machine("Ask", Ask=ask("Ask", "Confirm", **{"item.$": "$.n", "tag.$": "$tag", "side.$": "$side"}),
                Confirm={"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 2, "Next": "Again"}],
                         "Default": "Done"},
                Again=ask("Again", "Done", **{"item.$": "$.n", "tag.$": "$tag", "side.$": "$side"}),
                Done={"Type": "Pass", "End": True, "Parameters": {
                    "n.$": "$.n", "asked.$": "$.Ask", "tag.$": "$tag", "side.$": "$side"}})


def side(name: str, items_path: str) -> dict:
    """A branch that names its side (a variable of its frame), then maps ``items_path`` with ``INNER``."""
    return {"StartAt": f"Name{name}", "States": {
        f"Name{name}": {"Type": "Pass", "Assign": {"side": name}, "Next": f"Each{name}"},
        f"Each{name}": {**each(items_path, INNER), "End": True}}}


def rooted(body: dict) -> dict:
    return machine("Prepare", Prepare={"Type": "Pass", "Assign": {"tag": "t"}, "Next": "Body"},
                   Body={**body, "End": True})


PARALLEL_OF_MAPS = rooted({"Type": "Parallel", "Branches": [side("left", "$.left"), side("right", "$.right")]})
MAP_OF_MAPS = rooted(each("$.groups", side("group", "$.items")))
MAP_OF_PARALLELS = rooted(each("$.left", machine("Both", Both={"Type": "Parallel", "End": True, "Branches": [
    {"StartAt": f"Name{s}", "States": {f"Name{s}": {"Type": "Pass", "Assign": {"side": s}, "Next": f"Ask{s}"},
                                       f"Ask{s}": ask("Ask", **{"item.$": "$.n", "tag.$": "$tag", "side.$": "$side"})}}
    for s in ("a", "b")]})))
DEPTH_3 = rooted(each("$.groups", machine("Both", Both={"Type": "Parallel", "End": True, "Branches": [
    side("left", "$.items"), side("right", "$.items")]})))


def items(count: int, base: int = 0) -> list[dict]:
    return [{"n": base + n} for n in range(count)]


#: shape -> (definition, input, how many groups below the root join: at most one commit of the whole each)
SHAPES = {
    "parallel of maps": (PARALLEL_OF_MAPS, {"left": items(4), "right": items(5, 10)}, 2),
    "map of maps": (MAP_OF_MAPS, {"groups": [{"items": items(3, 10 * g)} for g in range(4)]}, 4),
    "map of parallels": (MAP_OF_PARALLELS, {"left": items(5)}, 5),
    "depth 3": (DEPTH_3, {"groups": [{"items": items(3, 10 * g)} for g in range(3)]}, 6),
}


def make(store_redis, split_from: int, monkeypatch):
    monkeypatch.setattr(fanout, "SPLIT_FROM", split_from)
    service = make_service(settings(), Store(store_redis), clock=VirtualClock(START), base_url="http://test")
    service.whole_commits = 0
    commit = service.store.commit

    def counted(change):
        service.whole_commits += 1
        return commit(change)

    service.store.commit = counted
    return service


def answer_all(service, document: dict, seed: int, failing: frozenset = frozenset()) -> tuple[dict, list[dict]]:
    """Answer every point, again and again, in an order drawn from ``seed``: each by its parameters, those
    of the items in ``failing`` with an error."""
    order = random.Random(seed)
    execution_id = document["executionId"]
    while document["status"] == "SUSPENDED":
        waiting = service.describe(execution_id, with_history=False, limit=1000)["continuations"]
        waiting.sort(key=lambda c: json.dumps(c["parameters"], sort_keys=True))
        point = order.choice(waiting)
        if point["parameters"]["item"] in failing:
            document = service.redeem(point["id"], error="Rejected", cause=f"item {point['parameters']['item']}")
        else:
            document = service.redeem(point["id"], result={"by": point["parameters"]})
    described = service.describe(execution_id)
    return described, described["history"]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_nested_fan_out_answered_unit_by_unit_ends_as_it_does_answered_whole(shape, store_redis, monkeypatch):
    definition, given, groups = SHAPES[shape]
    for seed in (1, 2, 3):
        outcomes = []
        for split_from in (10 ** 9, 2):  # whole, then split
            store_redis.flushdb()
            service = make(store_redis, split_from, monkeypatch)
            document = service.start(json.dumps(definition), given, state_machine=None, trusted=True)
            if split_from == 2:  # stored unit by unit, below the root's branches too
                fields = store_redis.hkeys(service.store.split_key(document["executionId"]))
                assert any(name.startswith(b"b") and b"." in name for name in fields), fields
                assert any(name.startswith(b"a") for name in fields), fields
            service.whole_commits = 0
            described, history = answer_all(service, document, seed)
            outcomes.append((described["status"], described["output"], history, service.whole_commits))
        whole, split = outcomes
        assert split[0] == whole[0] == "SUCCEEDED"
        assert split[1] == whole[1]
        assert split[2] == whole[2]
        assert split[3] <= groups < whole[3]  # the joins only: every other answer commits its unit alone


@pytest.mark.parametrize("failing", [frozenset({1, 12}), frozenset({1, 2})])
def test_inner_iterations_that_fail_or_leave_iterations_to_start_go_on_as_answered_whole(failing, store_redis,
                                                                                         monkeypatch):
    """Each branch a Map of 4 with 2 at a time and 1 failure tolerated: an iteration that ends starts the
    next (on the whole execution), one failure is counted, two fail the Map and so the Parallel."""
    one_ask = machine("Ask", Ask=ask("Ask", **{"item.$": "$.n"}))
    definition = rooted({"Type": "Parallel", "Branches": [
        {"StartAt": f"Each{half}", "States": {f"Each{half}": {
            **each(f"$.{half}", one_ask, MaxConcurrency=2, ToleratedFailureCount=1), "End": True}}}
        for half in ("left", "right")]})
    given = {"left": items(4), "right": items(4, 10)}
    outcomes = []
    for split_from in (10 ** 9, 2):
        store_redis.flushdb()
        service = make(store_redis, split_from, monkeypatch)
        document = service.start(json.dumps(definition), given, state_machine=None, trusted=True)
        described, history = answer_all(service, document, 5, failing)
        outcomes.append((described["status"], described.get("output"), described.get("error"), history))
    assert outcomes[0][0] == ("FAILED" if failing == {1, 2} else "SUCCEEDED")
    assert outcomes[1] == outcomes[0]


def stored_as_before(service, store_redis, execution_id: str) -> None:
    """Store a split execution's units as they were before units were split below the root: each root
    branch whole in b<index> (its Map of iterations inside it), counted by n."""
    key = service.store.split_key(execution_id)
    kept = {name: store_redis.hget(key, name) for name in ("v", "ev", "sq", "tr", "m")}
    root = service.runs.load(execution_id).snapshot["root"]
    fields = dict(kept)
    slots = fanout.group_slots(root["group"])
    for index, frame in slots:
        points = {wait["id"] for _, wait in frame_waits(frame, "", inline=False)}
        opened = {point: entry for point, entry in service.runs.load(execution_id).open.items() if point in points}
        fields[f"b{index}"] = kept["v"] + b"|" + deflate_text(compact({"f": frame, "o": opened}))
        fields.update({f"p{point}": str(index) for point in opened})
    fields["n"] = str(len(slots))
    store_redis.delete(key)
    store_redis.hset(key, mapping=fields)
    store_redis.expire(key, 3600)


def test_an_execution_stored_with_whole_root_branches_resumes_and_ends_as_before(store_redis, monkeypatch):
    definition, given, _ = SHAPES["map of maps"]
    service = make(store_redis, 2, monkeypatch)
    document = service.start(json.dumps(definition), given, state_machine=None, trusted=True)
    execution_id = document["executionId"]
    stored_as_before(service, store_redis, execution_id)
    key = service.store.split_key(execution_id)
    assert not [name for name in store_redis.hkeys(key) if b"." in name or name.startswith(b"a")]
    described, _ = answer_all(service, service.describe(execution_id), seed=3)
    store_redis.flushdb()
    whole = make(store_redis, 10 ** 9, monkeypatch)
    expected, _ = answer_all(whole, whole.start(json.dumps(definition), given, state_machine=None, trusted=True), 3)
    assert (described["status"], described["output"]) == ("SUCCEEDED", expected["output"])


def test_what_one_answer_sends_and_reads_does_not_grow_with_the_iterations_open_beside_it(redis_client):
    """A Parallel of 2 Maps of N suspended iterations: the bytes one redemption sends to Redis and reads
    from it (counted on the connections) are the same at N = 10 and N = 300."""
    from bench.service import Recorder, instrument

    recorder = Recorder()
    instrument(redis_client, recorder)
    service = make_service(settings(), Store(redis_client), clock=VirtualClock(START), base_url="http://test")
    one_ask = machine("Ask", Ask=ask("Ask", **{"item.$": "$.n"}))
    definition = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": f"Each{half}", "States": {f"Each{half}": {
            **each(f"$.{half}", one_ask, MaxConcurrency=300), "End": True}}}
        for half in ("left", "right")]}}}
    per_answer = {}
    for size in (10, 300):
        document = service.start(json.dumps(definition), {"left": items(size), "right": items(size, 1000)},
                                 state_machine=None, trusted=True)
        waiting = service.describe(document["executionId"], with_history=False, limit=1000)["continuations"]
        assert len(waiting) == 2 * size
        counted = []
        for point in waiting[1:2 * size - 1:(2 * size) // 6]:
            recorder.record()
            assert service.redeem(point["id"], result={"ok": True})["status"] == "SUSPENDED"
            counted.append((recorder.bytes_sent, recorder.bytes_read))
            recorder.stop()
        per_answer[size] = [statistics.median(values) for values in zip(*counted)]
    (sent_few, read_few), (sent_many, read_many) = per_answer[10], per_answer[300]
    assert sent_many <= 1.1 * sent_few and read_many <= 1.1 * read_few, per_answer


def test_a_timeout_and_a_heartbeat_inside_an_inner_iteration(store_redis, monkeypatch):
    """A Parallel of 2 Maps whose tasks time out after 60 s (caught): the timer of an inner iteration answers
    it in its unit, and a heartbeat keeps another one waiting."""
    clock = VirtualClock(START)
    service = make_service(settings(), Store(store_redis), clock=clock, base_url="http://test")
    timed = machine("Ask", Ask={**ask("Ask", **{"item.$": "$.n"}), "TimeoutSeconds": 60, "HeartbeatSeconds": 30,
                                "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Late"}]},
                    Late={"Type": "Pass", "Result": "late", "End": True})
    definition = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": f"Each{half}", "States": {f"Each{half}": {**each(f"$.{half}", timed), "End": True}}}
        for half in ("left", "right")]}}}
    document = service.start(json.dumps(definition), {"left": items(2), "right": items(2, 10)},
                             state_machine=None, trusted=True)
    fields = store_redis.hkeys(service.store.split_key(document["executionId"]))
    assert b"b0.1" in fields and b"n1" in fields
    points = {c["parameters"]["item"]: c["id"] for c in document["continuations"]}
    clock.advance(20)
    assert service.heartbeat(points[0])["heartbeatAt"] is not None
    for item in (1, 10):
        assert service.redeem(points[item], result={"ok": item})["status"] == "SUSPENDED"
    clock.advance(25)  # 45 s: item 0 beat, item 11 is not late yet
    service.tick()
    assert service.describe(document["executionId"])["status"] == "SUSPENDED"
    clock.advance(20)  # 65 s: items 0 and 11 timed out, caught
    service.tick()
    done = service.describe(document["executionId"])
    assert (done["status"], done["output"]) == (
        "SUCCEEDED", [["late", {"n": 1, "Ask": {"ok": 1}}], [{"n": 10, "Ask": {"ok": 10}}, "late"]])
