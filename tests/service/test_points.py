"""What touches one point of an execution whose root Map is stored iteration by iteration reads and
writes that iteration alone: GET /continuations/{id}, heartbeats, activity tasks handed out, a Wait's
timer, a task-token call that failed, event waits. Each ends with the results and history of the same
definition stored whole (``fanout.SPLIT_FROM`` out of reach), costs the same at 20 and 2,000
iterations, and does not conflict with answers to other iterations."""
from __future__ import annotations

import dataclasses
import json
import threading

import redis

from bench.service import Recorder, instrument
from chalicelib.approvals import make_service
from chalicelib.asl import VirtualClock
from chalicelib.config import settings
from chalicelib.resources import default_handlers
from chalicelib.service import ServiceError, fanout
from chalicelib.service.ids import id_hash, tag_of
from chalicelib.store import CommitConflict, Store

from ..conftest import REDIS_URL

START = 1_800_000_000.0
ACTIVITY = "arn:aws:states:us-east-1:000000000000:activity:work"


def each(processor: dict, items: str = "$.items", **map_fields) -> dict:
    """A Map over ``items`` whose iterations run ``processor`` (its item is ``$.item``)."""
    return {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": items, "End": True, "ItemSelector": {"item.$": "$$.Map.Item.Value"},
        "ItemProcessor": processor, **map_fields}}}


def asking(**task_fields) -> dict:
    """An iteration that asks (``module:suspend``) with ``task_fields``, a late one passing ``late`` on."""
    return {"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "module:suspend", "Parameters": {"item.$": "$.item"}, "End": True,
                "Catch": [{"ErrorEquals": ["States.Timeout", "States.HeartbeatTimeout"], "Next": "Late"}],
                **task_fields},
        "Late": {"Type": "Pass", "Result": "late", "End": True}}}


class Run:
    """One service on a fresh database, counting the commits of the whole execution and the branch
    commits that conflicted."""

    def __init__(self, client, handlers=None, **changes):
        self.clock = VirtualClock(START)
        self.service = make_service(dataclasses.replace(settings(), **changes), Store(client), clock=self.clock,
                                    base_url="http://test", handlers=handlers)
        self.service.activities.create("work")
        self.whole_commits = self.conflicts = 0
        store = self.service.store
        commit, commit_branch = store.commit, store.commit_branch

        def counted_commit(change):
            self.whole_commits += 1
            return commit(change)

        def counted_branch(change, shown=100):
            try:
                return commit_branch(change, shown)
            except CommitConflict:
                self.conflicts += 1
                raise

        store.commit, store.commit_branch = counted_commit, counted_branch

    def start(self, definition: dict, input: dict) -> dict:
        document = self.service.start(json.dumps(definition), input, state_machine=None, trusted=True)
        self.execution_id = document["executionId"]
        self.split = bool(self.service.store.redis.exists(self.service.store.split_key(self.execution_id)))
        self.whole_commits = 0
        return document

    def by_item(self) -> dict:
        document = self.service.describe(self.execution_id, with_history=False, limit=1000)
        return {c["parameters"]["item"]: c["id"] for c in document["continuations"]}

    def outcome(self) -> dict:
        """The execution as it ended up, history included, with its ID taken out."""
        described = self.service.describe(self.execution_id)
        described.pop("continuations", None)
        return json.loads(json.dumps(described).replace(self.execution_id, "X"))


def both(store_redis, monkeypatch, scenario, **options) -> tuple[Run, object, Run, object]:
    """Run ``scenario(run)`` with the Map stored iteration by iteration, then stored whole."""
    store_redis.flushdb()
    apart = Run(store_redis, **options)
    apart_result = scenario(apart)
    store_redis.flushdb()
    monkeypatch.setattr(fanout, "SPLIT_FROM", 10 ** 9)
    whole = Run(store_redis, **options)
    whole_result = scenario(whole)
    assert apart.split and not whole.split
    return apart, apart_result, whole, whole_result


SHOWN = ("status", "executionStatus", "state", "branch", "kind", "parameters", "expiresAt", "answer", "reason")


def shown(description: dict) -> dict:
    """A continuation's description without its ID and links (they differ from run to run)."""
    return {key: description.get(key) for key in SHOWN}


def error_code(call) -> str:
    try:
        call()
    except ServiceError as error:
        return error.code
    return ""


def test_describing_and_heartbeats_end_as_on_the_whole_execution(store_redis, monkeypatch):
    def scenario(run):
        service = run.service
        run.start(each(asking(HeartbeatSeconds=30, TimeoutSeconds=300)), {"items": [0, 1, 2, 3, 4]})
        points = run.by_item()
        seen = [shown(service.describe_continuation(points[item])) for item in range(5)]
        beats = []
        for _ in range(3):
            run.clock.advance(10)
            beats.append(service.heartbeat(points[0])["heartbeatAt"])
        beats.append(service.heartbeat(points[1])["heartbeatAt"])
        service.redeem(points[2], result={"ok": 2})
        run.clock.advance(10)
        beats.append(service.heartbeat(points[0])["heartbeatAt"])
        seen.append(shown(service.describe_continuation(points[2])))
        refused = error_code(lambda: service.heartbeat(points[2]))
        run.clock.advance(25)  # item 1 beat 35 s ago: it timed out; 3 and 4 never beat
        ticked = service.tick()
        run.clock.advance(10)
        service.heartbeat(points[0])
        seen += [shown(service.describe_continuation(points[item])) for item in (1, 3)]
        service.redeem(points[0], result={"ok": 0})
        return seen, beats, refused, ticked, run.outcome()

    apart, apart_result, whole, whole_result = both(store_redis, monkeypatch, scenario)
    assert apart_result == whole_result
    seen, beats, refused, ticked, outcome = apart_result
    assert refused == "ContinuationAlreadyRedeemed" and ticked["fired"] == 4  # 3 late, 1 for item 2 (answered)
    assert outcome["status"] == "SUCCEEDED" and outcome["output"] == [{"item": 0, "ok": 0}, "late", {"item": 2, "ok": 2}, "late", "late"]
    heartbeats = [event for event in outcome["history"] if event["type"] == "TaskHeartbeat"]
    assert sorted((event["point"], event["heartbeats"]) for event in heartbeats) == [("p1", 5), ("p2", 1)]
    assert apart.whole_commits == 1 and whole.whole_commits > 10  # apart, only the join commits the whole


def test_heartbeats_and_a_wait_in_a_map_of_maps_end_as_on_the_whole_execution(store_redis, monkeypatch):
    """The points of inner iterations (units inside units) are read and changed in their unit alone too."""
    inner = {"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "module:suspend", "Parameters": {"item.$": "$.item"},
                "HeartbeatSeconds": 30, "Next": "Rest"},
        "Rest": {"Type": "Wait", "Seconds": 60, "End": True}}}
    outer = {"StartAt": "Inner", "States": {"Inner": {
        "Type": "Map", "ItemsPath": "$.item", "End": True, "ItemSelector": {"item.$": "$$.Map.Item.Value"},
        "ItemProcessor": inner}}}

    def scenario(run):
        run.start(each(outer), {"items": [["a", "b"], ["c", "d", "e"]]})
        points = run.by_item()
        seen = [shown(run.service.describe_continuation(points[item])) for item in "ace"]
        for item in "ab" "c":
            run.clock.advance(5)
            run.service.heartbeat(points[item])
        run.service.heartbeat(points["a"])
        for item in "bdeac":
            run.service.redeem(points[item], result={"got": item})
        run.clock.advance(61)
        fired = run.service.tick()["fired"]
        return seen, fired, run.outcome()

    apart, apart_result, whole, whole_result = both(store_redis, monkeypatch, scenario)
    assert apart_result == whole_result
    seen, fired, outcome = apart_result
    assert [s["branch"] for s in seen] == ["Each[0]/Inner[0]", "Each[1]/Inner[0]", "Each[1]/Inner[2]"]
    assert outcome["status"] == "SUCCEEDED" and fired >= 5
    heartbeats = sorted(event["heartbeats"] for event in outcome["history"] if event["type"] == "TaskHeartbeat")
    assert heartbeats == [1, 1, 2]


def test_a_wait_and_a_retry_back_off_inside_iterations_resume_those_iterations_alone(store_redis, monkeypatch):
    failed: set = set()

    def flaky(payload, context):
        if payload["item"] not in failed:  # each item's first try fails, its retry 30 s later works
            failed.add(payload["item"])
            raise RuntimeError("not yet")
        return {"done": payload["item"]}

    processor = {"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "module:suspend", "Parameters": {"item.$": "$.item"}, "Next": "Try"},
        "Try": {"Type": "Task", "Resource": "test:flaky", "Parameters": {"item.$": "$.item"}, "Next": "Rest",
                "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 30, "MaxAttempts": 2}]},
        "Rest": {"Type": "Wait", "Seconds": 60, "End": True}}}

    def scenario(run):
        failed.clear()
        run.start(each(processor), {"items": [0, 1, 2, 3]})
        points = run.by_item()
        for item in (2, 0, 3):
            run.service.redeem(points[item], result={})
        ticks = []
        for _ in range(4):
            run.clock.advance(31)
            ticks.append(run.service.tick()["fired"])
        run.service.redeem(points[1], result={})
        for _ in range(4):
            run.clock.advance(31)
            ticks.append(run.service.tick()["fired"])
        return ticks, run.outcome()

    apart, apart_result, whole, whole_result = both(store_redis, monkeypatch, scenario,
                                                    handlers=default_handlers({"test:flaky": flaky}))
    assert apart_result == whole_result
    ticks, outcome = apart_result
    assert outcome["status"] == "SUCCEEDED" and outcome["output"] == [{"done": n} for n in range(4)]
    assert sum(ticks) == 8  # a back-off and a Wait for each item
    assert apart.whole_commits == 1  # the join


def test_activity_tasks_handed_out_beating_and_timing_out_end_as_on_the_whole_execution(store_redis, monkeypatch):
    processor = {"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": ACTIVITY, "Parameters": {"item.$": "$.item"}, "HeartbeatSeconds": 60,
                 "End": True, "Catch": [{"ErrorEquals": ["States.HeartbeatTimeout"], "Next": "Late"}]},
        "Late": {"Type": "Pass", "Result": "late", "End": True}}}

    def scenario(run):
        service = run.service
        run.start(each(processor), {"items": [0, 1, 2, 3]})
        taken = [service.activities.take("work", f"w{n}", 1) for n in range(3)]
        run.clock.advance(40)
        for task in taken[:2]:
            service.heartbeat(task["taskToken"])
        service.redeem(taken[0]["taskToken"], result={"by": "w0"})
        run.clock.advance(30)  # w2's task sent no heartbeat for 70 s
        ticked = service.tick()
        last = service.activities.take("work", "w3", 1)
        for task in (taken[1], last):
            service.redeem(task["taskToken"], result={"by": json.loads(task["input"])["item"]})
        return [json.loads(task["input"]) for task in [*taken, last]], ticked["fired"], run.outcome()

    apart, apart_result, whole, whole_result = both(store_redis, monkeypatch, scenario)
    assert apart_result == whole_result
    inputs, fired, outcome = apart_result
    assert inputs == [{"item": n} for n in range(4)] and fired == 1
    assert outcome["output"] == [{"by": "w0"}, {"by": 1}, "late", {"by": 3}]
    started = [event["workerName"] for event in outcome["history"] if event["type"] == "ActivityStarted"]
    assert started == ["w0", "w1", "w2", "w3"]
    assert apart.whole_commits == 1


def test_a_task_token_call_that_fails_inside_an_iteration_fails_that_task_alone(store_redis, monkeypatch):
    def boom(payload, context):
        if payload["item"] % 2:
            raise RuntimeError(f"no luck with {payload['item']}")

    processor = {"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": "test:boom.waitForTaskToken", "End": True,
                 "Parameters": {"item.$": "$.item", "token.$": "$$.Task.Token"},
                 "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}]},
        "Failed": {"Type": "Pass", "OutputPath": "$.error.Error", "End": True}}}

    def scenario(run):
        run.start(each(processor), {"items": [0, 1, 2, 3]})
        remaining = run.by_item()
        for item in sorted(remaining):
            run.service.redeem(remaining[item], result={"fine": item})
        return sorted(remaining), run.outcome()

    apart, apart_result, whole, whole_result = both(store_redis, monkeypatch, scenario,
                                                    handlers=default_handlers({"test:boom": boom}))
    assert apart_result == whole_result
    remaining, outcome = apart_result
    assert remaining == [0, 2] and outcome["output"] == [{"fine": 0}, "RuntimeError", {"fine": 2}, "RuntimeError"]


def test_events_answer_waits_inside_iterations_as_on_the_whole_execution(store_redis, monkeypatch):
    processor = {"StartAt": "Wait", "States": {"Wait": {
        "Type": "Task", "Resource": "module:event", "End": True,
        "Parameters": {"CorrelationKey.$": "$.item", "DetailType": "Ready"}}}}

    def scenario(run):
        run.start(each(processor), {"items": ["a", "b", "c"]})
        delivered = []
        for key in ("b", "d", "a", "c"):
            results = run.service.publish([{"source": "s", "detail-type": "Ready", "id": f"e-{key}",
                                             "detail": {"id": key, "n": key}}])
            delivered.append([len(r["resumed"]) for r in results])
        return delivered, run.outcome()

    apart, apart_result, whole, whole_result = both(store_redis, monkeypatch, scenario)
    assert apart_result == whole_result
    delivered, outcome = apart_result
    assert delivered == [[1], [0], [1], [1]]
    assert [item["n"] for item in outcome["output"]] == ["a", "b", "c"]


# -- what one operation costs ----------------------------------------------------------------------


def costs(redis_client, iterations: int) -> dict[str, int]:
    """The bytes each operation on one point sends to and reads from Redis, in a Map of ``iterations``
    activity tasks over the execution's input."""
    redis_client.flushdb()
    client, recorder = redis.Redis.from_url(REDIS_URL), Recorder()
    instrument(client, recorder)
    run = Run(client)
    definition = each({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": ACTIVITY, "Parameters": {"item.$": "$.item"}, "HeartbeatSeconds": 60,
                 "TimeoutSeconds": 3600, "End": True, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Late"}]},
        "Late": {"Type": "Pass", "End": True}}}, MaxConcurrency=iterations)
    run.start(definition, {"items": list(range(iterations))})
    service = run.service
    measured = {}

    def measure(name, operation):
        recorder.record()
        result = operation()
        measured[name] = recorder.bytes_sent + recorder.bytes_read
        recorder.stop()
        return result

    task = measure("take", lambda: service.activities.take("work", "w", 1))
    token = task["taskToken"]
    measure("describe", lambda: service.describe_continuation(token))
    measure("heartbeat", lambda: service.heartbeat(token))
    run.clock.advance(61)
    point = service.store.continuation(tag_of(token), id_hash(token))["point"]
    measure("heartbeat timer", lambda: service.timers.fire("heartbeat", run.execution_id, point))
    assert run.whole_commits == 0 and run.split
    assert service.describe(run.execution_id, with_history=False)["continuationsCount"] == iterations - 1
    client.close()
    return measured


def assert_flat(measure, redis_client) -> None:
    """What each operation sends and reads at 2,000 iterations is what it does at 20 (10% and 64 bytes)."""
    small, large = measure(redis_client, 20), measure(redis_client, 2000)
    for name, size in small.items():
        assert large[name] <= size * 1.1 + 64, (name, small, large)


def test_what_one_point_costs_does_not_grow_with_the_iterations(redis_client):
    assert_flat(costs, redis_client)


def wait_costs(redis_client, iterations: int) -> dict[str, int]:
    """The bytes a Wait's timer and an event given to a wait send to and read from Redis, in a Map of
    ``iterations`` that each wait 10 s, then for an event by their item (the items made by the
    definition: an event wait's iterations may read the execution's input)."""
    redis_client.flushdb()
    client, recorder = redis.Redis.from_url(REDIS_URL), Recorder()
    instrument(client, recorder)
    run = Run(client)
    definition = {"StartAt": "Items", "States": {
        "Items": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": {"items": "{% [1..$states.input.n] %}"},
                  "Next": "Each"},
        **each({"StartAt": "Rest", "States": {
            "Rest": {"Type": "Wait", "Seconds": 10, "Next": "Listen"},
            "Listen": {"Type": "Task", "Resource": "module:event", "End": True,
                       "Parameters": {"CorrelationKey.$": "States.Format('item-{}', $.item)"}}}},
               MaxConcurrency=iterations)["States"]}}
    run.start(definition, {"n": iterations})
    run.clock.advance(11)
    [point] = [member.split("|")[2] for member, _ in run.service.store.due_timers(run.clock.now(), 10 ** 5)
               if member.startswith(f"wait|{run.execution_id}|")][-1:]
    measured = {}
    recorder.record()
    assert run.service.timers.fire("wait", run.execution_id, point) is True
    measured["wait timer"] = recorder.bytes_sent + recorder.bytes_read
    [listening] = run.service.describe(run.execution_id, with_history=False)["continuations"]
    recorder.record()
    [delivered] = run.service.publish([{"source": "s", "detail-type": "Ready",
                                        "detail": {"id": listening["parameters"]["CorrelationKey"]}}])
    measured["event"] = recorder.bytes_sent + recorder.bytes_read
    recorder.stop()
    assert len(delivered["resumed"]) == 1 and run.whole_commits == 0 and run.split
    client.close()
    return measured


def test_what_a_wait_and_an_event_cost_does_not_grow_with_the_iterations(redis_client):
    assert_flat(wait_costs, redis_client)


# -- heartbeats and answers at the same moment -------------------------------------------------------


def test_heartbeats_and_answers_to_other_iterations_at_once_neither_conflict_nor_commit_the_whole(store_redis):
    run = Run(store_redis)
    run.start(each(asking(HeartbeatSeconds=600)), {"items": list(range(40))})
    points = run.by_item()
    held = run.service.claim(points[30])  # an answer read its iteration; heartbeats come meanwhile
    errors: list = []

    def beat(item):
        try:
            for _ in range(5):
                run.service.heartbeat(points[item])
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    def answer(item):
        try:
            run.service.redeem(points[item], result={"ok": item})
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=beat, args=(item,)) for item in range(20)]
    threads += [threading.Thread(target=answer, args=(item,)) for item in range(20, 30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.service.redemptions.resume_claimed(held, {"result": {"ok": 30}})
    assert errors == [] and (run.conflicts, run.whole_commits) == (0, 0)
    history = run.service.describe(run.execution_id)["history"]
    beats = {event["point"]: event["heartbeats"] for event in history if event["type"] == "TaskHeartbeat"}
    assert len(beats) == 20 and set(beats.values()) == {5}
    assert sum(event["type"] == "ExecutionResumed" for event in history) == 11


def test_a_heartbeat_to_the_iteration_an_answer_is_running_in_makes_that_answer_go_on_the_whole(store_redis):
    run = Run(store_redis)
    run.start(each(asking(HeartbeatSeconds=600)), {"items": [0, 1, 2]})
    points = run.by_item()
    held = run.service.claim(points[1])
    run.service.heartbeat(points[1])  # changes the iteration the claim read
    run.service.redemptions.resume_claimed(held, {"result": {"ok": 1}})
    assert (run.conflicts, run.whole_commits) == (1, 1)  # the answer fell back to the whole, correct
    for item in (0, 2):
        run.service.redeem(points[item], result={"ok": item})
    assert run.outcome()["output"] == [{"item": n, "ok": n} for n in range(3)]


def test_a_branch_stored_before_timer_points_were_indexed_still_fires_its_wait(store_redis):
    """Branches stored before a timer's point was indexed (no ``pt``): its timer reads the whole execution."""
    run = Run(store_redis)
    processor = {"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "module:suspend", "Parameters": {"item.$": "$.item"}, "Next": "Rest"},
        "Rest": {"Type": "Wait", "Seconds": 60, "End": True}}}
    run.start(each(processor), {"items": [0, 1, 2]})
    points = run.by_item()
    run.service.redeem(points[0], result={})  # iteration 0 now waits at Rest, for its timer alone
    split_key = run.service.store.split_key(run.execution_id)
    [timer_point] = [name for name, value in store_redis.hgetall(split_key).items()
                     if name.startswith(b"p") and name != b"pt" and value == b"0"]
    store_redis.hdel(split_key, "pt", timer_point)  # as stored before
    run.clock.advance(61)
    assert run.service.tick()["fired"] == 1
    assert run.service.describe(run.execution_id, with_history=False).get("timers") is None
    for item in (1, 2):
        run.service.redeem(points[item], result={})
    run.clock.advance(61)
    run.service.tick()
    assert run.outcome()["status"] == "SUCCEEDED"


def test_a_wait_timer_that_fires_early_reserves_no_ids(store_redis):
    """IDs are reserved for the run of a Wait's branch only once it is due (so the history keeps no gap)."""
    run = Run(store_redis)
    processor = {"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "module:suspend", "Parameters": {"item.$": "$.item"}, "Next": "Rest"},
        "Rest": {"Type": "Wait", "Seconds": 60, "End": True}}}
    run.start(each(processor), {"items": [0, 1]})
    run.service.redeem(run.by_item()[0], result={})
    split_key = run.service.store.split_key(run.execution_id)
    [timer_point] = [name[1:].decode() for name, value in store_redis.hgetall(split_key).items()
                     if name.startswith(b"p") and name != b"pt" and value == b"0"]
    counters = store_redis.hmget(split_key, "ev", "sq")
    assert run.service.timers.fire("wait", run.execution_id, timer_point) == START + 60  # not due yet
    assert store_redis.hmget(split_key, "ev", "sq") == counters
    run.clock.advance(60)
    assert run.service.timers.fire("wait", run.execution_id, timer_point) is True
    assert store_redis.hget(split_key, "n") == b"1"  # iteration 0 ended, in its own commit
