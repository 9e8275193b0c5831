"""Continuations in real Redis: TTLs, hashing, at-most-once and crash-safe redemption."""
from __future__ import annotations

import json
import threading

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from chalicelib.service import catalog
from chalicelib.asl import VirtualClock
from chalicelib.config import ONE_YEAR, settings
from chalicelib.approvals import make_service
from chalicelib.service import ServiceError
from chalicelib.store import Store, unpack_record


START = 1_800_000_000.0


@pytest.fixture
def clock():
    return VirtualClock(START)


@pytest.fixture
def service(store_redis, clock):
    return make_service(settings(), Store(store_redis), clock=clock, base_url="http://test")


def start(service, machine="incsquare", input=None, **kwargs):
    return service.start(catalog.load_text(machine) if machine else kwargs.pop("definition"),
                         input if input is not None else {"value": 6},
                         state_machine=machine, trusted=True, **kwargs)


def refused(call, *args, **kwargs) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value


def keys_of(store_redis):
    return sorted(k.decode() for k in store_redis.scan_iter("asl:*"))


# -- TTL and expiry ---------------------------------------------------------------------------

def test_default_ttl_and_expiry(service, clock, store_redis):
    document = start(service)
    [waiting] = document["continuations"]
    assert waiting["expiresAt"] == "2027-01-16T08:00:00.000Z"  # START + 86400 s
    [key] = [k for k in keys_of(store_redis) if ":c:" in k]
    retention = settings().retention_seconds
    assert 86400 + retention - 5 <= store_redis.ttl(key) <= 86400 + retention
    clock.advance(86400)
    error = refused(service.redeem, waiting["id"], result={})
    assert (error.status, error.code) == (410, "ContinuationExpired")
    assert service.describe_continuation(waiting["id"])["status"] == "expired"


def test_ttl_from_configuration(store_redis, clock, monkeypatch):
    monkeypatch.setenv("CONTINUATION_TTL_SECONDS", "300")
    service = make_service(settings(), Store(store_redis), clock=clock)
    document = start(service)
    assert document["continuations"][0]["expiresAt"] == "2027-01-15T08:05:00.000Z"
    clock.advance(299)
    assert service.redeem(document["continuations"][0]["id"], result={})["status"] == "SUCCEEDED"


def test_ttl_from_timeout_seconds_and_capped_at_one_year(service):
    approval = start(service, "approval", {"item": "x", "requester": "y", "reason": "z"})
    assert approval["continuations"][0]["expiresAt"] == "2027-01-22T08:00:00.000Z"  # 7 days
    definition = {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "module:suspend",
                                                       "TimeoutSecondsPath": "$.t", "End": True}}}
    document = service.start(definition, {"t": 10 * ONE_YEAR}, state_machine=None, trusted=True)
    assert document["continuations"][0]["expiresAt"] == "2028-01-15T08:00:00.000Z"


# -- what Redis holds -------------------------------------------------------------------------

def readable(key: bytes, value: bytes) -> str:
    """A stored value as text; an execution record unpacked (it is compressed)."""
    if b":x:" in key:
        record = unpack_record(key.decode().rsplit(":", 1)[1], value)
        return json.dumps([record.document, record.snapshot, record.open, record.history])
    return value.decode("utf-8", "replace")


def dump(store_redis) -> str:
    parts = []
    for key in store_redis.scan_iter("*"):
        kind = store_redis.type(key).decode()
        parts.append(key.decode())
        if kind == "hash":
            parts += [f"{k.decode()}={readable(key, v)}" for k, v in store_redis.hgetall(key).items()]
        elif kind == "string":
            parts.append(readable(key, store_redis.get(key)))
        elif kind == "zset":
            parts += [m.decode() for m in store_redis.zrange(key, 0, -1)]
    return "\n".join(parts)


def test_redis_never_holds_a_usable_continuation_id(service, store_redis):
    documents = [start(service, "parallel-approval", {"n": i}) for i in range(3)]
    ids = [c["id"] for d in documents for c in d["continuations"]]
    assert len(ids) == 6 and len(set(ids)) == 6
    stored = dump(store_redis)
    for ident in ids:
        assert ident not in stored
        assert ident[4:] not in stored  # not even the secret part


def test_each_definition_is_stored_once(service, store_redis):
    for i in range(30):
        start(service, "incsquare", {"value": i})
    assert len([k for k in keys_of(store_redis) if k.startswith("asl:d:")]) == 1


def test_a_process_that_read_the_definition_answers_without_sending_it_again(redis_client, clock, monkeypatch):
    """The definition's text goes to Redis with a commit only while the process does not know it is stored:
    one that read it to answer (it did not start the execution) keeps it by its hash alone."""
    from collections import OrderedDict

    from bench.service import Recorder, instrument
    from chalicelib.asl import interpreter
    from tests.conftest import REDIS_URL

    comment = "a long description " * 1000
    ask = {"Type": "Task", "Resource": "module:suspend"}
    definition = {"Comment": comment, "StartAt": "Ask", "States": {"Ask": {**ask, "Next": "Again"},
                                                                  "Again": {**ask, "End": True}}}
    starter = make_service(settings(), Store(redis_client), clock=clock, base_url="http://test")
    ids = [starter.start(definition, {}, state_machine=None, trusted=True)["continuations"][0]["id"] for _ in range(2)]
    monkeypatch.setattr(interpreter, "_CACHE", OrderedDict())  # another process: nothing compiled yet
    answering_redis, recorder = type(redis_client).from_url(REDIS_URL), Recorder()
    instrument(answering_redis, recorder)
    answering = make_service(settings(), Store(answering_redis), clock=clock, base_url="http://test")
    sent = []
    for ident in ids:
        recorder.record()
        assert answering.redeem(ident, result={})["status"] == "SUSPENDED"  # so the commit keeps the definition
        sent.append(recorder.bytes_sent)
        recorder.stop()
    answering_redis.close()
    assert all(bytes_sent < len(comment) for bytes_sent in sent), sent


def test_keys_of_one_execution_share_a_cluster_hash_tag(service, store_redis):
    document = start(service, "parallel-approval", {})
    tag = "{" + document["executionId"][:4] + "}"
    execution_keys = [k for k in keys_of(store_redis) if not k.startswith(("asl:d:", "asl:{ix}:"))]
    # the execution, its two branches stored apart (and the states they wait at), and their two
    # continuations (the index has its own tag)
    assert sorted(key.split(":")[2] for key in execution_keys) == ["c", "c", "f", "w", "x"]
    assert all(tag in key for key in execution_keys)
    assert all(c["id"].startswith(document["executionId"][:4]) for c in document["continuations"])


def test_a_suspended_execution_takes_under_one_kib_of_redis(service, store_redis):
    """The design target, per execution: its keys' MEMORY USAGE, less its own data (input, question)."""
    documents = [start(service, "incsquare", {"value": i}) for i in range(50)]
    for document in documents:
        tag = "{" + document["executionId"][:4] + "}"
        keys = [k for k in keys_of(store_redis) if tag in k]
        own = len(json.dumps(document["input"])) + len(json.dumps(document["continuations"][0]["parameters"]))
        assert 0 < sum(store_redis.memory_usage(k, samples=0) for k in keys) - own < 1024


def test_what_a_continuation_asked_outlives_its_answer(service):
    document = start(service, "parallel-approval", {"n": 1})
    first, second = document["continuations"]
    asked = {c["id"]: service.describe_continuation(c["id"]) for c in (first, second)}
    assert asked[first["id"]]["parameters"] == first["parameters"] and asked[first["id"]]["branch"]
    service.redeem(first["id"], result={"decision": "approve"})
    service.abort(document["executionId"])
    for ident, status in ((first["id"], "redeemed"), (second["id"], "closed")):
        info = service.describe_continuation(ident)
        assert info["status"] == status
        assert {k: info[k] for k in ("state", "branch", "kind", "parameters")} == \
            {k: asked[ident][k] for k in ("state", "branch", "kind", "parameters")}


def test_ids_are_random_not_sequential(service):
    first = [start(service)["continuations"][0]["id"] for _ in range(20)]
    assert len(set(i[4:] for i in first)) == 20
    assert len(set(i[4:12] for i in first)) == 20  # no shared prefix beyond the shard tag


# -- at most once, crash safety ---------------------------------------------------------------

def run_concurrently(calls):
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(index, call):
        barrier.wait()
        try:
            results[index] = ("ok", call())
        except ServiceError as error:
            results[index] = ("error", error)

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_many_simultaneous_redemptions_of_one_id_resume_exactly_once(service):
    document = start(service)
    ident = document["continuations"][0]["id"]
    results = run_concurrently([lambda i=i: service.redeem(ident, result={"by": i}) for i in range(16)])
    wins = [r for kind, r in results if kind == "ok"]
    losses = [r for kind, r in results if kind == "error"]
    assert len(wins) == 1 and len(losses) == 15
    # each other answer: refused as answered, or as held by the winner while it commits
    assert all(e.status == 409 and e.code in ("ContinuationAlreadyRedeemed", "ContinuationBusy") for e in losses)
    final = service.describe(document["executionId"])
    assert final["output"] == wins[0]["output"]
    assert [e["type"] for e in final["history"]].count("ExecutionResumed") == 1


def resumes(service, document) -> int:
    return [e["type"] for e in service.describe(document["executionId"])["history"]].count("ExecutionResumed")


def test_the_same_answer_again_is_a_replay_that_resumes_nothing(service, clock):
    document = start(service)
    ident = document["continuations"][0]["id"]
    first = service.redeem(ident, result={"by": "kim", "n": [1, 2]})
    assert first["replay"] is False
    clock.advance(5)
    again = service.redeem(ident, result={"n": [1, 2], "by": "kim"})  # the same value, keys in another order
    assert again["replay"] is True and again["answeredAt"] == "2027-01-15T08:00:00.000Z"
    assert (again["status"], again["output"]) == (first["status"], first["output"])
    assert resumes(service, document) == 1
    # a failure is another answer, even with the same words
    error = refused(service.redeem, ident, error="by", cause="kim")
    assert (error.status, error.code) == (409, "ContinuationAlreadyRedeemed")


def test_another_answer_is_409_saying_when_the_first_was_given(service, clock):
    document = start(service)
    ident = document["continuations"][0]["id"]
    service.redeem(ident, result={"by": "kim"})
    clock.advance(60)
    error = refused(service.redeem, ident, result={"by": "lee"})
    assert (error.status, error.code) == (409, "ContinuationAlreadyRedeemed")
    assert error.extra["answeredAt"] == "2027-01-15T08:00:00.000Z"
    assert "2027-01-15T08:00:00.000Z" in error.message
    assert service.describe(document["executionId"])["output"] == {"value": 50, "by": "kim"}


def test_a_digest_given_by_the_caller_decides_what_is_the_same_answer(service):
    """The HTTP layer passes the digest of the request's bytes: equal values in other bytes are another answer."""
    from chalicelib.service import answer_digest

    document = start(service)
    ident = document["continuations"][0]["id"]
    service.redeem(ident, result={"a": 1}, digest=answer_digest("result", b'{"a": 1}'))
    assert service.redeem(ident, result={"a": 1}, digest=answer_digest("result", b'{"a": 1}'))["replay"]
    error = refused(service.redeem, ident, result={"a": 1}, digest=answer_digest("result", b'{"a":1}'))
    assert error.code == "ContinuationAlreadyRedeemed"


def test_simultaneous_same_answers_resume_once_and_each_gets_the_outcome(service):
    document = start(service)
    ident = document["continuations"][0]["id"]
    results = run_concurrently([lambda: service.redeem(ident, result={"by": "all"}) for _ in range(16)])
    answered = [r for kind, r in results if kind == "ok"]
    assert len([r for r in answered if not r.get("replay")]) == 1
    held = [r for kind, r in results if kind == "error"]
    assert all((e.status, e.code) == (409, "ContinuationBusy") for e in held)
    for _ in held:  # told to retry: the retry is a replay with the same outcome
        answered.append(service.redeem(ident, result={"by": "all"}))
    assert len(answered) == 16
    assert all((r["status"], r["output"]) == ("SUCCEEDED", {"value": 50, "by": "all"}) for r in answered)
    assert resumes(service, document) == 1


def test_a_held_continuation_is_busy_with_the_seconds_until_its_lease_ends(service, clock):
    document = start(service)
    ident = document["continuations"][0]["id"]
    lease = settings().lease_seconds
    service.claim(ident)  # an attempt claims and then dies before committing
    error = refused(service.redeem, ident, result={})
    assert (error.status, error.code) == (409, "ContinuationBusy")
    assert error.headers == {"Retry-After": str(lease)} and error.extra["retryAfterSeconds"] == lease
    clock.advance(lease - 2.5)
    assert refused(service.redeem, ident, result={}).headers == {"Retry-After": "3"}  # rounded up
    clock.advance(2.5)
    assert service.redeem(ident, result={"late": 1})["output"] == {"value": 50, "late": 1}


def test_an_attempt_failing_in_the_interpreter_gives_its_claim_back(service, monkeypatch):
    document = start(service)
    ident = document["continuations"][0]["id"]
    original = service.runs.run

    def broken(*args, **kwargs):
        raise RuntimeError("interpreter bug")

    monkeypatch.setattr(service.runs, "run", broken)
    with pytest.raises(RuntimeError):
        service.redeem(ident, result={"x": 1})
    monkeypatch.setattr(service.runs, "run", original)
    assert service.describe_continuation(ident)["status"] == "waiting"
    # at once, no lease to wait out (the clock has not moved)
    assert service.redeem(ident, result={"x": 2})["output"] == {"value": 50, "x": 2}
    assert resumes(service, document) == 1


def test_simultaneous_redemptions_of_two_branches_both_take_effect(service):
    for round_ in range(8):
        document = start(service, "parallel-approval", {"round": round_})
        finance, legal = sorted(document["continuations"], key=lambda c: c["parameters"]["Approver"])
        results = run_concurrently([
            lambda: service.redeem(finance["id"], result={"decision": "approve", "who": "f"}),
            lambda: service.redeem(legal["id"], result={"decision": "approve", "who": "l"}),
        ])
        assert [kind for kind, _ in results] == ["ok", "ok"]
        final = service.describe(document["executionId"], with_history=False)
        assert final["status"] == "SUCCEEDED"
        assert final["output"]["answers"] == [{"decision": "approve", "who": "f"}, {"decision": "approve", "who": "l"}]


def test_a_resume_that_died_after_claiming_is_redeemable_after_the_lease(service, clock):
    document = start(service)
    ident = document["continuations"][0]["id"]
    service.claim(ident)  # a process claims, then dies before committing
    assert refused(service.redeem, ident, result={}).code == "ContinuationBusy"
    clock.advance(settings().lease_seconds + 1)
    done = service.redeem(ident, result={"second": True})
    assert done["status"] == "SUCCEEDED" and done["output"] == {"value": 50, "second": True}
    assert refused(service.redeem, ident, result={}).status == 409


def test_store_failure_during_commit_loses_nothing(service, clock, monkeypatch):
    document = start(service)
    ident = document["continuations"][0]["id"]
    original = service.store.commit

    def broken(change):
        raise RedisConnectionError("connection lost")

    monkeypatch.setattr(service.store, "commit", broken)
    with pytest.raises(RedisConnectionError):
        service.redeem(ident, result={"x": 1})
    monkeypatch.setattr(service.store, "commit", original)
    assert service.describe(document["executionId"])["status"] == "SUSPENDED"
    # the failed attempt gave its claim back: a retry works at once, without waiting for the lease
    assert service.redeem(ident, result={"x": 2})["output"] == {"value": 50, "x": 2}


def test_failure_of_one_branch_closes_the_other_continuation(service):
    document = start(service, "parallel-approval", {})
    first, second = document["continuations"]
    done = service.redeem(first["id"], error="Vetoed", cause="no budget")
    assert (done["status"], done["answered"]) == ("FAILED", "failure")
    assert service.describe(document["executionId"])["error"] == "Vetoed"
    error = refused(service.redeem, second["id"], result={})
    assert (error.status, error.code) == (410, "ContinuationExpired")


def test_wait_for_task_token_continuation_is_the_token(store_redis, clock):
    sent = []

    def notify(payload, context):
        sent.append(context.token)
        return None

    service = make_service(settings(), Store(store_redis), clock=clock,
                      handlers={"test:notify": notify})
    definition = {"StartAt": "Ask", "States": {"Ask": {
        "Type": "Task", "Resource": "test:notify.waitForTaskToken",
        "Parameters": {"token.$": "$$.Task.Token"}, "ResultPath": "$.reply", "End": True}}}
    document = service.start(definition, {"q": 1}, state_machine=None, trusted=True)
    [waiting] = document["continuations"]
    assert sent == [waiting["id"]] and waiting["kind"] == "task-token"
    assert waiting["parameters"] == {"token": waiting["id"]}
    # Redis keeps a marker, not the ID; read back, the open point's parameters show the ID again
    [again] = service.describe(document["executionId"])["continuations"]
    assert again["parameters"] == {"token": waiting["id"]}
    assert service.describe_continuation(waiting["id"])["parameters"] == {"token": waiting["id"]}
    scheduled = [e for e in service.describe(document["executionId"])["history"] if e["type"] == "TaskScheduled"]
    assert scheduled[0]["parameters"] == {"token": waiting["id"]}
    done = service.redeem(sent[0], result={"ok": 1})
    assert done["output"] == {"q": 1, "reply": {"ok": 1}}
    assert waiting["id"][4:] not in dump(store_redis)  # not even in what the answered continuation asked


def test_history_is_capped(store_redis, clock, monkeypatch):
    monkeypatch.setenv("HISTORY_LIMIT", "10")
    config = settings()
    service = make_service(config, Store(store_redis, history_limit=config.history_limit), clock=clock)
    definition = {"StartAt": "M", "States": {"M": {"Type": "Map", "End": True, "ItemProcessor": {
        "StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}}}}
    document = service.start(definition, list(range(50)), state_machine=None, trusted=True)
    history = service.describe(document["executionId"])["history"]
    assert len(history) == 10 and history[-1]["type"] == "ExecutionSucceeded"
    assert history[0]["type"] == "ExecutionStarted" and history[0]["input"] == list(range(50))
    assert history[1]["id"] == history[-1]["id"] - 8  # then the latest 9
    assert json.dumps(history)


def test_background_run_hands_off_before_its_time_runs_out(store_redis, clock, monkeypatch):
    monkeypatch.setenv("REQUEST_MAX_TRANSITIONS", "20")
    dispatched = []
    service = make_service(settings(), Store(store_redis), clock=clock, dispatch=dispatched.append)
    counter = {"StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": 100, "Next": "Done"}],
                  "Default": "Add"},
        "Add": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "Check"},
        "Done": {"Type": "Succeed"}}}
    document = service.start(counter, {"n": 0}, state_machine=None, trusted=True)
    assert document["status"] == "RUNNING" and dispatched == [document["executionId"]]
    # too little time left for one more budget: nothing runs, the rest goes to a new invocation
    handed_off = service.continue_running(document["executionId"], seconds=0)
    assert handed_off["status"] == "RUNNING" and len(dispatched) == 2
    finished = service.continue_running(document["executionId"])
    assert finished["status"] == "SUCCEEDED" and finished["output"] == {"n": 100}


@pytest.mark.parametrize("limit", [1000, 100])
def test_a_long_history_moves_to_its_list_in_order_and_capped(store_redis, clock, monkeypatch, limit):
    """Many commits: ExecutionStarted and the latest events kept once and in order (HISTORY_LIMIT in all);
    the record stays small."""
    monkeypatch.setenv("REQUEST_MAX_TRANSITIONS", "15")
    monkeypatch.setenv("HISTORY_LIMIT", str(limit))
    config = settings()
    store = Store(store_redis, history_limit=config.history_limit)
    service = make_service(config, store, clock=clock)
    counter = {"StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": 60, "Next": "Done"}],
                  "Default": "Add"},
        "Add": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "Check"},
        "Done": {"Type": "Succeed"}}}
    document = service.start(counter, {"n": 0}, state_machine=None, trusted=True)
    assert service.continue_running(document["executionId"])["output"] == {"n": 60}
    history = service.describe(document["executionId"])["history"]
    ids = [event["id"] for event in history]
    total = history[-1]["id"]
    assert total > 200 and history[-1]["type"] == "ExecutionSucceeded"
    assert ids == [1] + list(range(max(2, total - limit + 2), total + 1))
    assert history[0]["type"] == "ExecutionStarted"
    assert len(store.load(document["executionId"]).history) <= 64


def test_an_execution_stored_in_format_1_reveals_its_tokens_and_goes_on(store_redis, clock):
    """Migration: a record of format 1 held unsealed markers; read now, its open points still show
    their tokens (question and older history), it resumes, and it is written back in format 2."""
    import re

    from chalicelib.store.records import compact, deflate_text

    sent = {}
    service = make_service(settings(), Store(store_redis), clock=clock,
                           handlers={"test:notify": lambda payload, context: sent.update({payload["who"]: context.token})})
    definition = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": name, "States": {name: {
            "Type": "Task", "Resource": "test:notify.waitForTaskToken", "ResultPath": "$.reply", "End": True,
            "Parameters": {"who": name, "token.$": "$$.Task.Token"}}}} for name in ("A", "B")]}}}
    document = service.start(definition, {}, state_machine=None, trusted=True)
    key = service.store.execution_key(document["executionId"])
    version, _, body = store_redis.get(key).partition(b"|")
    # format 1 knew no branches stored apart: the record held the whole execution
    record = service.runs.load(document["executionId"])
    store_redis.delete(service.store.split_key(document["executionId"]))
    old = "".join(['{"d":', compact(record.document), ',"f":', compact(record.definition_hash),
                   ',"o":', compact(record.open), ',"s":', compact(record.snapshot), ',"h":',
                   compact(record.history), "}"])
    old = re.sub(r"\{\{TaskToken (p\d+)\.[A-Za-z0-9_-]{16}\}\}", r"{{TaskToken \1}}", old)
    assert "{{TaskToken p1}}" in old and "{{TaskToken p2}}" in old
    store_redis.set(key, version + b"|1" + deflate_text(old), keepttl=True)

    described = service.describe(document["executionId"])
    tokens = {c["parameters"]["who"]: c["parameters"]["token"] for c in described["continuations"]}
    assert tokens == {"A": sent["A"], "B": sent["B"]}
    assert sorted(e["parameters"]["token"] for e in described["history"] if e["type"] == "TaskScheduled") == \
        sorted(tokens.values())
    assert service.redeem(tokens["A"], result={"a": 1})["status"] == "SUSPENDED"
    assert store_redis.get(key).partition(b"|")[2][:1] == b"2"
    again = service.describe(document["executionId"])  # B's older events still show its token
    assert [c["parameters"]["token"] for c in again["continuations"]] == [tokens["B"]]
    assert sorted(e["parameters"]["token"] for e in again["history"] if e["type"] == "TaskScheduled") == \
        sorted(["{{TaskToken p1}}", tokens["B"]])
    done = service.redeem(tokens["B"], result={"b": 2})
    assert done["status"] == "SUCCEEDED" and [o["reply"] for o in done["output"]] == [{"a": 1}, {"b": 2}]
