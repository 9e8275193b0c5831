"""Executions whose root Parallel or Map is stored branch by branch: an answer reads and writes its own
branch, answers to different branches do not conflict, and the join runs once, with the last one."""
from __future__ import annotations

import json

import pytest

from chalicelib.approvals import make_service
from chalicelib.asl import VirtualClock
from chalicelib.config import settings
from chalicelib.resources import default_handlers
from chalicelib.service import ServiceError
from chalicelib.store import Store
from chalicelib.store.records import compact, deflate_text

START = 1_800_000_000.0


def each(items_path="$.items", concurrency=0, steps=("Ask",)):
    """A Map whose iterations suspend at each of ``steps`` in turn, then pass their answers on."""
    states = {}
    for position, step in enumerate(steps):
        last = position == len(steps) - 1
        states[step] = {"Type": "Task", "Resource": "module:suspend", "Parameters": {"item.$": "$.item"},
                        "ResultPath": f"$.{step}", **({"End": True} if last else {"Next": steps[position + 1]})}
    return {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": items_path, "MaxConcurrency": concurrency, "End": True,
        "ItemSelector": {"item.$": "$$.Map.Item.Value"},
        "ItemProcessor": {"StartAt": steps[0], "States": states}}}}


@pytest.fixture
def service(store_redis):
    return make_service(settings(), Store(store_redis), clock=VirtualClock(START), base_url="http://test")


def start(service, definition, items):
    document = service.start(json.dumps(definition), {"items": items}, state_machine=None, trusted=True)
    assert document["status"] == "SUSPENDED"
    return document


def version(service, store_redis, execution_id) -> bytes:
    return store_redis.get(service.store.execution_key(execution_id)).partition(b"|")[0]


def by_item(document):
    return {c["parameters"]["item"]: c["id"] for c in document["continuations"]}


def test_an_answer_to_one_iteration_leaves_the_record_and_the_other_iterations_as_they_were(service, store_redis):
    document = start(service, each(), list(range(5)))
    execution_id = document["executionId"]
    split_key = service.store.split_key(execution_id)
    before_record = version(service, store_redis, execution_id)
    others = {name: store_redis.hget(split_key, name) for name in (b"b0", b"b1", b"b3", b"b4")}
    answered = service.redeem(by_item(document)[2], result={"ok": 2})
    assert (answered["status"], answered["waitingAt"]) == ("SUSPENDED", ["Ask"] * 4)
    assert version(service, store_redis, execution_id) == before_record
    assert {name: store_redis.hget(split_key, name) for name in others} == others
    assert store_redis.hget(split_key, "b2") is None and store_redis.hget(split_key, "n") == b"4"
    # read whole, the execution is as it would be in one record
    described = service.describe(execution_id)
    assert (described["continuationsCount"], sorted(c["parameters"]["item"] for c in described["continuations"])) \
        == (4, [0, 1, 3, 4])
    ids = [event["id"] for event in described["history"]]
    assert ids == list(range(1, len(ids) + 1))  # answered one at a time, the event IDs have no gaps


def test_the_join_runs_once_with_the_last_answer_and_the_branches_are_gone(service, store_redis):
    document = start(service, each(), list(range(4)))
    execution_id = document["executionId"]
    points = by_item(document)
    for item in (3, 0, 2):
        assert service.redeem(points[item], result={"ok": item})["status"] == "SUSPENDED"
    done = service.redeem(points[1], result={"ok": 1})
    assert done["status"] == "SUCCEEDED"
    assert done["output"] == [{"item": n, "Ask": {"ok": n}} for n in range(4)]
    assert not store_redis.exists(service.store.split_key(execution_id), service.store.split_history_key(execution_id),
                                  service.store.split_waiting_key(execution_id))
    history = service.describe(execution_id)["history"]
    types = [event["type"] for event in history]
    assert (types.count("MapStateSucceeded"), types.count("ExecutionSucceeded"), types.count("ExecutionResumed")) \
        == (1, 1, 4)
    ids = [event["id"] for event in history]
    assert ids == list(range(1, len(ids) + 1))


def test_answers_to_different_iterations_claimed_at_once_both_commit_without_a_conflict(service, store_redis):
    document = start(service, each(), list(range(3)))
    execution_id = document["executionId"]
    points = by_item(document)
    first, second = service.claim(points[0]), service.claim(points[1])  # both held at the same moment
    assert first.branch is not None and second.branch is not None
    assert first.branch.events[1] <= second.branch.events[0]  # each run has IDs of its own
    service.redemptions.resume_claimed(second, {"result": {"ok": 1}})
    service.redemptions.resume_claimed(first, {"result": {"ok": 0}})
    assert store_redis.hget(service.store.split_key(execution_id), "n") == b"1"
    done = service.redeem(points[2], result={"ok": 2})
    assert done["output"] == [{"item": n, "Ask": {"ok": n}} for n in range(3)]
    ids = [event["id"] for event in service.describe(execution_id)["history"]]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)


def test_an_iteration_that_suspends_again_keeps_its_place(service, store_redis):
    document = start(service, each(steps=("Ask", "Confirm")), ["a", "b"])
    points = by_item(document)
    again = service.redeem(points["a"], result={"ok": True})
    assert (again["status"], sorted(again["waitingAt"])) == ("SUSPENDED", ["Ask", "Confirm"])
    described = service.describe(document["executionId"])
    confirm = [c for c in described["continuations"] if c["state"] == "Confirm"]
    assert [c["parameters"] for c in confirm] == [{"item": "a"}]
    assert service.redeem(confirm[0]["id"], result={"sure": True})["waitingAt"] == ["Ask"]
    assert service.redeem(points["b"], result={"ok": "b"})["waitingAt"] == ["Confirm"]
    [last] = service.describe(document["executionId"])["continuations"]
    done = service.redeem(last["id"], result={"sure": False})
    assert done["output"] == [{"item": "a", "Ask": {"ok": True}, "Confirm": {"sure": True}},
                              {"item": "b", "Ask": {"ok": "b"}, "Confirm": {"sure": False}}]


def test_a_failed_branch_fails_the_parallel_and_closes_the_others(service):
    definition = {"StartAt": "All", "States": {"All": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": name, "States": {name: {"Type": "Task", "Resource": "module:suspend", "End": True}}}
        for name in ("A", "B", "C")]}}}
    document = service.start(definition, {}, state_machine=None, trusted=True)
    points = {c["state"]: c["id"] for c in document["continuations"]}
    assert service.redeem(points["A"], result={"a": 1})["status"] == "SUSPENDED"
    failed = service.redeem(points["B"], error="Rejected", cause="no")
    assert (failed["status"], failed["error"]) == ("FAILED", "Rejected")
    with pytest.raises(ServiceError) as closed:
        service.redeem(points["C"], result={})
    assert closed.value.code == "ContinuationExpired"


def test_a_map_with_iterations_left_starts_the_next_one_when_one_ends(service):
    document = start(service, each(concurrency=2), [0, 1, 2])
    assert sorted(by_item(document)) == [0, 1]
    answered = service.redeem(by_item(document)[0], result={"ok": 0})
    assert answered["status"] == "SUSPENDED"
    described = service.describe(document["executionId"])
    assert sorted(c["parameters"]["item"] for c in described["continuations"]) == [1, 2]
    for item, ident in by_item(described).items():
        last = service.redeem(ident, result={"ok": item})
    assert last["output"] == [{"item": n, "Ask": {"ok": n}} for n in range(3)]


def test_an_execution_stored_whole_before_branches_were_stored_apart_resumes_and_is_then_split(service, store_redis):
    document = start(service, each(), list(range(3)))
    execution_id = document["executionId"]
    record = service.runs.load(execution_id)  # whole, as a record was stored before the split existed
    key = service.store.execution_key(execution_id)
    version_text = store_redis.get(key).partition(b"|")[0]
    body = "".join(['{"d":', compact(record.document), ',"f":', compact(record.definition_hash),
                    ',"o":', compact(record.open), ',"s":', compact(record.snapshot),
                    ',"h":', compact(record.history), "}"])
    store_redis.delete(service.store.split_key(execution_id))
    store_redis.set(key, version_text + b"|2" + deflate_text(body), keepttl=True)
    points = by_item(document)
    assert service.redeem(points[1], result={"ok": 1})["status"] == "SUSPENDED"
    assert store_redis.hget(service.store.split_key(execution_id), "n") == b"2"  # stored apart from now on
    service.redeem(points[0], result={"ok": 0})
    assert service.redeem(points[2], result={"ok": 2})["output"] == [{"item": n, "Ask": {"ok": n}} for n in range(3)]


def test_the_same_answer_again_to_an_iteration_is_a_replay(service):
    document = start(service, each(), [0, 1])
    point = by_item(document)[0]
    first = service.redeem(point, result={"ok": 0})
    again = service.redeem(point, result={"ok": 0})
    assert (again["replay"], again["answeredAt"], again["status"]) == (True, first["answeredAt"], "SUSPENDED")
    with pytest.raises(ServiceError) as other:
        service.redeem(point, result={"ok": "other"})
    assert other.value.code == "ContinuationAlreadyRedeemed"


def test_a_replay_while_the_iterations_are_stored_apart_reads_neither_the_record_nor_the_iterations(
        service, monkeypatch):
    document = start(service, each(), list(range(20)))
    points = by_item(document)
    first = service.redeem(points[0], result={"ok": 0})
    loads = []
    load = service.store.load
    monkeypatch.setattr(service.store, "load", lambda execution_id: loads.append(execution_id) or load(execution_id))
    again = service.redeem(points[0], result={"ok": 0})  # a double click
    assert loads == []
    assert {key: again[key] for key in ("status", "waitingAt", "replay")} == \
        {"status": "SUSPENDED", "waitingAt": first["waitingAt"], "replay": True} and len(again["waitingAt"]) == 19
    for item in range(1, 20):
        done = service.redeem(points[item], result={"ok": item})
    loads.clear()
    late = service.redeem(points[0], result={"ok": 0})  # once it ended, the record is read: its outcome
    assert loads == [document["executionId"]]
    assert (late["replay"], late["status"], late["output"]) == (True, "SUCCEEDED", done["output"])


def test_a_heartbeat_and_a_timeout_inside_an_iteration(store_redis):
    clock = VirtualClock(START)
    service = make_service(settings(), Store(store_redis), clock=clock, base_url="http://test")
    definition = {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": True,
        "ItemProcessor": {"StartAt": "Ask", "States": {"Ask": {
            "Type": "Task", "Resource": "module:suspend", "TimeoutSeconds": 60, "HeartbeatSeconds": 30,
            "Parameters": {"item.$": "$"}, "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Late"}],
            "End": True}, "Late": {"Type": "Pass", "Result": "late", "End": True}}}}}}
    document = service.start(definition, {"items": [0, 1]}, state_machine=None, trusted=True)
    points = by_item(document)
    clock.advance(20)
    assert service.heartbeat(points[0])["heartbeatAt"] is not None
    assert service.redeem(points[1], result={"ok": 1})["status"] == "SUSPENDED"
    clock.advance(25)  # item 1 answered, item 0 beat: nobody is late yet
    service.tick()
    assert service.describe(document["executionId"])["status"] == "SUSPENDED"
    clock.advance(20)  # 65 s: item 0's task timed out, and its Catch ends the Map
    service.tick()
    done = service.describe(document["executionId"])
    assert (done["status"], done["output"]) == ("SUCCEEDED", ["late", {"ok": 1}])


def test_a_task_token_call_inside_an_iteration_is_made_after_its_commit_and_its_answer_counts(store_redis):
    calls = []
    handlers = default_handlers({"test:notify": lambda payload, context: calls.append(context.token)})
    service = make_service(settings(), Store(store_redis), clock=VirtualClock(START), base_url="http://test",
                           handlers=handlers)
    definition = {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": True,
        "ItemProcessor": {"StartAt": "Ask", "States": {
            "Ask": {"Type": "Task", "Resource": "module:suspend", "Next": "Notify"},
            "Notify": {"Type": "Task", "Resource": "test:notify.waitForTaskToken", "End": True,
                       "Parameters": {"token.$": "$$.Task.Token"}}}}}}}
    document = service.start(definition, {"items": [0, 1, 2]}, state_machine=None, trusted=True)
    points = [c["id"] for c in document["continuations"]]
    answered = service.redeem(points[0], result={"ok": 0})
    assert (answered["status"], sorted(answered["waitingAt"])) == ("SUSPENDED", ["Ask", "Ask", "Notify"])
    [token] = calls
    assert service.redeem(token, result={"done": 0})["status"] == "SUSPENDED"
    for point in points[1:]:
        service.redeem(point, result={})
    for token in calls[1:]:
        last = service.redeem(token, result={"done": True})
    assert last["status"] == "SUCCEEDED" and len(calls) == 3


def _notify_each(items: int) -> dict:
    return {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": True,
        "ItemProcessor": {"StartAt": "Ask", "States": {
            "Ask": {"Type": "Task", "Resource": "module:suspend", "Next": "Notify"},
            "Notify": {"Type": "Task", "Resource": "test:notify.waitForTaskToken", "End": True,
                       "Parameters": {"token.$": "$$.Task.Token"}}}}}}}


@pytest.mark.parametrize("answers_at_once", [False, True])
def test_an_answer_whose_run_makes_a_task_token_call_reads_the_execution_whole_only_if_the_call_moved_it_on(
        store_redis, monkeypatch, answers_at_once):
    service = None
    calls = []

    def notify(payload, context):
        calls.append(context.token)
        if answers_at_once:  # the resource answers its token before the call returns
            service.redeem(context.token, result={"done": True})

    service = make_service(settings(), Store(store_redis), clock=VirtualClock(START), base_url="http://test",
                           handlers=default_handlers({"test:notify": notify}))
    document = service.start(_notify_each(3), {"items": [0, 1, 2]}, state_machine=None, trusted=True)
    points = [c["id"] for c in document["continuations"]]
    loads = []
    load = service.store.load
    monkeypatch.setattr(service.store, "load", lambda execution_id: loads.append(execution_id) or load(execution_id))
    answered = service.redeem(points[0], result={"ok": 0})
    assert len(calls) == 1
    if answers_at_once:  # the iteration ended with the call: the document, read again, says so
        assert loads == [document["executionId"]]
        assert (answered["status"], answered["waitingAt"]) == ("SUSPENDED", ["Ask", "Ask"])
    else:  # the call's task waits in its branch, read alone: the execution is not read
        assert loads == []
        assert (answered["status"], sorted(answered["waitingAt"])) == ("SUSPENDED", ["Ask", "Ask", "Notify"])



def _answered_output(service, store_redis, definition, answer_order) -> tuple[str, dict | None, dict]:
    """Run ``definition`` over three items, answering them in ``answer_order``: its ID, the context its
    iterations' runs read when stored apart (None when stored whole) and its last document."""
    document = service.start(json.dumps(definition), {"items": [0, 1, 2], "note": "n"}, state_machine=None,
                             trusted=True)
    meta = store_redis.hget(service.store.split_key(document["executionId"]), "m")
    context = json.loads(meta)["context"] if meta else None
    points = by_item(document)
    for item in answer_order:
        done = service.redeem(points[item], result={"ok": item})
    return document["executionId"], context, done


@pytest.mark.parametrize("reference, reads", [
    ("$$.State.Name", False), ("$$.Execution.Name", False), ("$$.StateMachine.Name", False),
    ("$$.Execution.Input.note", True), ("$$.Execution", True), ("$$", True),
])
def test_what_an_iteration_reads_of_the_context_decides_whether_its_runs_read_the_execution_input(
        service, store_redis, monkeypatch, reference, reads):
    definition = each()
    states = definition["States"]["Each"]["ItemProcessor"]["States"]
    states["Ask"].update(Parameters={"item.$": "$.item", "seen.$": reference}, Next="After")
    del states["Ask"]["End"]
    states["After"] = {"Type": "Pass", "Parameters": {"item.$": "$.item", "seen.$": reference}, "End": True}
    split_id, context, split_done = _answered_output(service, store_redis, definition, (2, 0, 1))
    assert ("Input" in context["Execution"]) is reads
    monkeypatch.setattr("chalicelib.service.fanout.SPLIT_FROM", 10**6)  # the same, stored whole
    whole_id, whole_context, whole_done = _answered_output(service, store_redis, definition, (2, 0, 1))
    assert whole_context is None
    assert split_done["status"] == whole_done["status"] == "SUCCEEDED"
    assert json.dumps(split_done["output"]).replace(split_id, "X") == \
        json.dumps(whole_done["output"]).replace(whole_id, "X")


@pytest.mark.parametrize("reference, reads", [
    ("$$.Task.Token", False), ("$$.Map.Item.Value", False), ("$$.Execution.Id", False),
    ("$$.Execution.InputSize", False), ("$states.context.Task.Token", False),
    ("$$.Execution.Input", True), ("$$['Execution']", True), ("$states.context", True),
    ("$states.context.Execution.Input.x", True), ("$states.context.Execution", True),
])
def test_the_rule_for_context_references(reference, reads):
    from chalicelib.asl.interpreter import load
    from chalicelib.service.fanout import reads_execution_input

    definition = each()
    definition["States"]["Each"]["ItemProcessor"]["States"]["Ask"]["Comment"] = reference
    assert reads_execution_input(load(definition).machine.states["Each"]) is reads


@pytest.mark.parametrize("resource, reads", [
    ("module:suspend", False), ("arn:aws:states:::lambda:invoke.waitForTaskToken", False),
    ("arn:aws:states:us-east-1:000000000000:activity:add", False), ("arn:aws:states:::email:send.waitForTaskToken", False),
    ("module:event", True), ("module:reserve", True),
])
def test_python_handlers_may_read_the_execution_input_and_aws_shaped_resources_are_given_their_payload(
        resource, reads):
    from chalicelib.asl.interpreter import load
    from chalicelib.service.fanout import reads_execution_input

    definition = each()
    definition["States"]["Each"]["ItemProcessor"]["States"]["Ask"]["Resource"] = resource
    assert reads_execution_input(load(definition).machine.states["Each"]) is reads
