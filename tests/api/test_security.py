"""Security properties: unguessable continuation IDs, nothing usable in Redis, decision links that
cannot be edited, errors that reveal nothing, and the request size limit on every POST route.

(test_redemption.py and test_pages.py cover the first cases of each: distinct IDs, no raw ID in the
stored text, an edited choice or signature. These go further.)
"""
from __future__ import annotations

import base64
import binascii
import json
import random
import re
import secrets
import time
import zlib
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
import redis

from chalicelib import resources
from chalicelib.service import catalog
from chalicelib.store import records as store_module
from chalicelib.asl import VirtualClock
from chalicelib.asl.clock import SystemClock
from chalicelib.config import settings
from chalicelib.approvals import make_service
from chalicelib.approvals.questions import ApprovalQuestions
from chalicelib.service import Service
from chalicelib.store import Store

from ..conftest import ROOT
from ..redis_servers import RedisServer, free_port

START = 1_800_000_000.0
JSON_BODY = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
HTML = {"Accept": "text/html"}
APPROVAL_INPUT = {"item": "laptop", "requester": "ann", "reason": "broken", "approver": "boss@example.com"}
ID_CHARS = re.compile(r"^[A-Za-z0-9_-]+$")
TAG = 4  # the documented shard tag an ID shares with its execution ID
# A Map whose every iteration waits: one start opens a continuation per item.
FAN_OUT = {"StartAt": "Fan", "States": {"Fan": {"Type": "Map", "End": True, "ItemProcessor": {
    "StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "module:suspend", "End": True}}}}}}


def body_of(response):
    return json.loads(response.body)


def text_of(response) -> str:
    return response.body.decode() if isinstance(response.body, bytes) else response.body


def post(client, path, body, headers=JSON_BODY):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.http.post(path, headers=headers, body=raw)


def start(client, machine, input) -> dict:
    response = post(client, "/executions", {"stateMachine": machine, "input": input})
    assert response.status_code == 200, response.body
    return body_of(response)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def bits(text: str) -> str:
    """The bits a URL-safe base64 text carries, 6 per character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(format(alphabet.index(c), "06b") for c in text)


def service_for(redis_client, clock=None) -> Service:
    return make_service(settings(), Store(redis_client), clock=clock or VirtualClock(START), base_url="http://test")


# -- continuation IDs --------------------------------------------------------------------------

def test_ids_are_random_url_safe_and_unrelated_to_execution_ids_names_or_time(redis_client, monkeypatch):
    """2,000 IDs from 100 executions with the same name and input, the clock frozen: all differ,
    share nothing with their execution IDs beyond the shard tag, and their bits look uniform."""
    monkeypatch.setattr(time, "time", lambda: START)
    monkeypatch.setattr(time, "time_ns", lambda: int(START * 1e9))
    service = service_for(redis_client)  # a VirtualClock that is never advanced
    made = []  # (execution ID, continuation ID) in creation order
    for _ in range(100):
        redis_client.delete("asl:n:same-name")  # as if the name had lapsed: names are unique while kept
        document = service.start(FAN_OUT, list(range(20)), state_machine=None, trusted=True, name="same-name")
        assert document["name"] == "same-name" and len(document["continuations"]) == 20
        made += [(document["executionId"], c["id"]) for c in document["continuations"]]
    ids = [ident for _, ident in made]
    assert len(set(ids)) == 2000 and len({execution for execution, _ in made}) == 100
    for execution, ident in made:
        assert ID_CHARS.match(ident) and quote(ident, safe="") == ident  # nothing to escape in a URL
        assert len(ident) - TAG >= 22  # 22 base64 characters: 132 bits
        assert ident[:TAG] == execution[:TAG]
        secret_part = ident[TAG:]
        assert secret_part not in execution and execution[TAG:] not in ident
        shared = {secret_part[i:i + 6] for i in range(len(secret_part) - 5)} & \
            {execution[i:i + 6] for i in range(len(execution) - 5)}
        assert not shared, (ident, execution)  # no 6-character run in common (by chance: about 1e-5 per run)

    secret_bits = [bits(ident[TAG:TAG + 22]) for ident in ids]
    # Every one of the 132 bits is set in about half of the IDs (binomial: sd 22; 150 is 6.7 sd).
    for position in range(132):
        ones = sum(b[position] == "1" for b in secret_bits)
        assert abs(ones - 1000) < 150, (position, ones)
    # Consecutive IDs differ in about half their bits, never in few: not a counter or a clock.
    distances = [sum(x != y for x, y in zip(a, b)) for a, b in zip(secret_bits, secret_bits[1:])]
    assert min(distances) > 30 and 62 < sum(distances) / len(distances) < 70
    numbers = [int(b, 2) for b in secret_bits]
    steps = [b - a for a, b in zip(numbers, numbers[1:])]
    assert len(set(steps)) == len(steps)  # no constant stride
    ascending = sum(step > 0 for step in steps)
    assert abs(ascending - 1000) < 80  # as for a random order (sd 13), not sorted by time or count


def test_ids_come_from_the_secrets_module_and_the_signing_secret_alone(redis_client, monkeypatch):
    """With ``secrets`` replaced by a seeded stream, a second run (later, in the same process) gives
    the very same IDs: no clock, counter or other randomness goes in. A different signing secret
    gives other IDs from the same randomness, and each ID takes at least 16 fresh bytes (128 bits)."""
    drawn: list[int] = []

    def run(seed: int, signing_secret: str, when: float) -> tuple[str, list[str]]:
        stream = random.Random(seed)

        def token_bytes(nbytes=None):
            drawn.append(32 if nbytes is None else nbytes)
            return stream.randbytes(drawn[-1])

        redis_client.flushdb()  # the same seed gives the same execution ID again
        monkeypatch.setattr(secrets, "token_bytes", token_bytes)
        monkeypatch.setenv("SIGNING_SECRET", signing_secret)
        drawn.clear()
        document = service_for(redis_client, VirtualClock(when)).start(
            FAN_OUT, list(range(8)), state_machine=None, trusted=True)
        monkeypatch.undo()
        return document["executionId"], [c["id"] for c in document["continuations"]]

    first = run(1, "secret-one", START)
    assert len(set(first[1])) == 8
    assert sum(n for n in drawn if n >= 16) >= 16 * (1 + 8) and sum(n >= 16 for n in drawn) >= 9
    assert run(1, "secret-one", START + 400 * 86400) == first
    other_seed = run(2, "secret-one", START)
    assert other_seed[0] != first[0] and not {i[TAG:] for i in other_seed[1]} & {i[TAG:] for i in first[1]}
    other_secret = run(1, "secret-two", START)
    assert other_secret[0] == first[0]  # the execution ID is plain randomness ...
    assert [i[:TAG] for i in other_secret[1]] == [i[:TAG] for i in first[1]]
    assert not {i[TAG:] for i in other_secret[1]} & {i[TAG:] for i in first[1]}  # ... the IDs are keyed


# -- what Redis holds --------------------------------------------------------------------------

_B64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{16,}")
_HEX_RUN = re.compile(rb"[0-9a-fA-F]{24,}")


def decodings(blob: bytes):
    """``blob`` and whatever its base64 (either alphabet, any alignment) and hex runs decode to."""
    yield blob
    for run in _B64_RUN.findall(blob):
        for shift in range(4):
            part = run[shift:] if (len(run) - shift) % 4 != 1 else run[shift:-1]
            part += b"=" * (-len(part) % 4)
            for decode in (base64.standard_b64decode, base64.urlsafe_b64decode):
                try:
                    yield decode(part)
                except binascii.Error:  # characters of the other alphabet: that decoding does not apply
                    continue
    for run in _HEX_RUN.findall(blob):
        for shift in range(2):
            part = run[shift:]
            yield bytes.fromhex(part[:len(part) // 2 * 2].decode())


def plain_forms(value: bytes):
    """A stored value as it is, and inflated where it is compressed (records and history chunks
    are raw deflate with the store's preset dictionary, after a short header)."""
    yield value
    dictionary = getattr(store_module, "_DICTIONARY", b"")
    for offset in range(min(len(value), 32)):
        for inflater in (lambda: zlib.decompressobj(-15, zdict=dictionary) if dictionary else None,
                         lambda: zlib.decompressobj(-15), lambda: zlib.decompressobj(47)):
            inflate = inflater()
            if inflate is None:
                continue
            try:
                text = inflate.decompress(value[offset:]) + inflate.flush()
            except zlib.error:
                continue
            if inflate.eof and text:
                yield text


def everything_stored(client: redis.Redis) -> list[bytes]:
    """Every key name, every value of every field or element, and each key's DUMP."""
    out = []
    for key in client.scan_iter("*"):
        out.append(key)
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key)]
        elif kind == "hash":
            values = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        elif kind == "set":
            values = list(client.smembers(key))
        else:
            raise AssertionError(f"unexpected key type {kind} of {key!r}")
        out += [client.dump(key)] + [form for value in values for form in plain_forms(value)]
    return out


def secret_needles(text: str) -> list[bytes]:
    """A secret as text, and the raw bytes its base64 characters stand for."""
    return [text.encode(), base64.urlsafe_b64decode(text[:20])]


def find_secrets(stored: list[bytes], needles: dict[bytes, str]) -> list[str]:
    found = set()
    for blob in stored:
        for decoded in decodings(blob):
            found.update(name for needle, name in needles.items() if needle in decoded)
    return sorted(found)


def test_the_leak_detector_finds_ids_in_every_form():
    """The search below is not blind: it finds an ID raw, as base64 (both alphabets, any
    alignment), as hex, and its raw bytes, anywhere in a larger value."""
    ident = "abcd" + secrets.token_urlsafe(16)[:22]
    needles = {needle: "id" for needle in secret_needles(ident[TAG:])}
    raw = base64.urlsafe_b64decode(ident[TAG:TAG + 20])
    for blob in (ident.encode(), b"x" + base64.b64encode(b"pre:" + ident.encode()) + b"|",
                 base64.urlsafe_b64encode(b"12" + ident.encode()), ident.encode().hex().upper().encode(),
                 b"\x00\x01" + raw + b"\xff", b"~" + raw.hex().encode()):
        assert find_secrets([blob], needles) == ["id"], blob
    assert find_secrets([secrets.token_bytes(200), secrets.token_hex(100).encode()], needles) == []


def test_redis_holds_no_continuation_id_or_decision_signature_in_any_form(client, redis_client):
    """After starts, answers, an abort and long histories, nothing in Redis -- keys, values, fields,
    list elements, DUMPs, compressed or not -- contains an ID, its secret part or a decision link's
    signature, as text, base64 or hex, nor the signing secret."""
    canary = "canary-" + secrets.token_hex(8)
    documents = [start(client, "approval", {**APPROVAL_INPUT, "reason": canary}) for _ in range(3)]
    documents += [start(client, "parallel-approval", {"n": i, "note": canary}) for i in range(2)]
    documents += [start(client, "incsquare", {"value": i}) for i in range(3)]
    fan = body_of(post(client, "/executions", {"definition": FAN_OUT, "input": [canary] * 30}))
    documents.append(fan)
    waiting = [c for d in documents for c in d["continuations"]]
    assert len(waiting) == 3 + 4 + 3 + 30
    approve = waiting[0]["decisions"]["approve"]
    assert post(client, path_of(approve), {"comment": canary}).status_code == 200
    assert post(client, f"/continuations/{waiting[3]['id']}", {"decision": "approve"}).status_code == 200
    assert post(client, f"/continuations/{fan['continuations'][0]['id']}", {"a": canary}).status_code == 200
    assert client.http.delete(f"/executions/{documents[1]['executionId']}").status_code == 200

    needles = {}
    for entry in waiting:
        needles.update({needle: f"id {entry['id']}" for needle in secret_needles(entry["id"][TAG:])})
        needles[entry["id"].encode()] = f"id {entry['id']}"
        for url in (entry.get("decisions") or {}).values():
            signature = parse_qs(urlsplit(url).query)["sig"][0]
            needles.update({needle: f"signature {signature}" for needle in secret_needles(signature)})
    needles[settings().signing_secret.encode()] = "the signing secret"
    stored = everything_stored(redis_client)
    assert find_secrets(stored, needles) == []
    # The search saw the data: the canary is in the records, answers and the spilled history.
    readable = [form for blob in stored for form in plain_forms(blob)]
    assert sum(canary.encode() in blob for blob in readable) >= 5
    assert any(b"ExecutionStarted" in blob for blob in readable)
    assert any(redis_client.type(key) == b"list" for key in redis_client.scan_iter("*"))


def test_a_task_token_passed_in_parameters_is_not_stored(redis_client):
    """The usual waitForTaskToken pattern hands ``$$.Task.Token`` (the continuation ID) to the
    resource in Parameters; Redis must not keep it in the stored question or history either."""
    sent = []
    service = make_service(settings(), Store(redis_client), clock=VirtualClock(START),
                      handlers={"test:notify": lambda payload, context: sent.append(payload["token"])})
    definition = {"StartAt": "Ask", "States": {"Ask": {
        "Type": "Task", "Resource": "test:notify.waitForTaskToken",
        "Parameters": {"token.$": "$$.Task.Token", "to": "someone"}, "ResultPath": "$.reply", "End": True}}}
    document = service.start(definition, {"q": 1}, state_machine=None, trusted=True)
    [waiting] = document["continuations"]
    assert sent == [waiting["id"]]  # the resource got the token
    needles = {needle: "the token" for needle in secret_needles(waiting["id"][TAG:])}
    assert find_secrets(everything_stored(redis_client), needles) == []
    assert service.redeem(waiting["id"], result={"ok": 1})["output"] == {"q": 1, "reply": {"ok": 1}}


TWO_TOKENS = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
    {"StartAt": name, "States": {name: {
        "Type": "Task", "Resource": "test:notify.waitForTaskToken", "ResultPath": "$.reply", "End": True,
        "Parameters": {"who": name, "note.$": "$.note", "token.$": "$$.Task.Token"}}}}
    for name in ("Finance", "Legal")]}}}


def two_token_service(redis_client):
    sent = {}
    service = make_service(settings(), Store(redis_client), clock=VirtualClock(START), base_url="http://test",
                           handlers={"test:notify": lambda payload, context: sent.update({payload["who"]: payload})})
    return service, sent


@pytest.mark.parametrize("note", ["{{TaskToken p1}}", "{{TaskToken p2}}", "{{TaskToken p2.AAAAAAAAAAAAAAAA}}",
                                  "see {{TaskToken p1}} and {{TaskToken p2}}"])
def test_user_data_that_looks_like_a_token_marker_reveals_no_token(redis_client, note):
    """Text in the input shaped like the stored markers stays that text: no continuation's ID shows."""
    service, sent = two_token_service(redis_client)
    document = service.start(TWO_TOKENS, {"note": note}, state_machine=None, trusted=True)
    finance, legal = sorted(document["continuations"], key=lambda c: c["parameters"]["who"])
    # each resource got its own real token, and the note as written
    assert (sent["Finance"]["token"], sent["Legal"]["token"]) == (finance["id"], legal["id"])
    assert sent["Finance"]["note"] == sent["Legal"]["note"] == note
    # the holder of finance's ID reads its question: its own token, the note untouched, nothing of legal's
    shown = service.describe_continuation(finance["id"])
    assert shown["parameters"] == {"who": "Finance", "note": note, "token": finance["id"]}
    assert legal["id"] not in json.dumps(shown)
    # the API caller sees each point's own token, and the note untouched in the history too
    described = service.describe(document["executionId"])
    assert {c["id"]: c["parameters"]["note"] for c in described["continuations"]} == {
        finance["id"]: note, legal["id"]: note}
    assert described["input"] == {"note": note}
    scheduled = [e["parameters"] for e in described["history"] if e["type"] == "TaskScheduled"]
    assert sorted(p["note"] for p in scheduled) == [note, note]


def test_an_answer_holding_another_continuation_id_is_never_rewritten(redis_client):
    """Answers are user text: one that quotes another open continuation's ID comes back as written,
    before and after that continuation closes."""
    service, _ = two_token_service(redis_client)
    document = service.start(TWO_TOKENS, {"note": "n"}, state_machine=None, trusted=True)
    finance, legal = sorted(document["continuations"], key=lambda c: c["parameters"]["who"])
    service.redeem(finance["id"], result={"quote": legal["id"], "marker": "{{TaskToken p2}}"})
    done = service.redeem(legal["id"], result={"quote": finance["id"]})
    assert done["status"] == "SUCCEEDED"
    assert [branch["reply"] for branch in done["output"]] == [
        {"quote": legal["id"], "marker": "{{TaskToken p2}}"}, {"quote": finance["id"]}]
    # the tokens the service placed are not shown once their points are closed
    scheduled = [e["parameters"]["token"] for e in service.describe(document["executionId"])["history"]
                 if e["type"] == "TaskScheduled"]
    assert sorted(scheduled) == ["{{TaskToken p1}}", "{{TaskToken p2}}"]


# -- signed decision links ---------------------------------------------------------------------

def assert_nothing_resumed(client, document: dict, waiting: dict) -> None:
    execution = body_of(client.http.get(f"/executions/{document['executionId']}"))
    assert execution["status"] == "SUSPENDED"
    assert "ExecutionResumed" not in [event["type"] for event in execution["history"]]
    assert body_of(client.http.get(f"/continuations/{waiting['id']}"))["status"] == "waiting"


def with_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return parts.path + "?" + urlencode({k: v for k, v in query.items() if v is not None})


def flip(text: str, index: int) -> str:
    replacement = "B" if text[index] == "A" else "A"
    return text[:index] + replacement + text[index + 1:]


def test_decision_links_refuse_every_edit_and_nothing_resumes(client, monkeypatch):
    document = start(client, "approval", APPROVAL_INPUT)
    [waiting] = document["continuations"]
    other = start(client, "approval", APPROVAL_INPUT)["continuations"][0]
    approve, reject = waiting["decisions"]["approve"], waiting["decisions"]["reject"]
    signature = parse_qs(urlsplit(approve).query)["sig"][0]
    reject_signature = parse_qs(urlsplit(reject).query)["sig"][0]
    other_signature = parse_qs(urlsplit(other["decisions"]["reject"]).query)["sig"][0]
    monkeypatch.setenv("SIGNING_SECRET", "another-stage-secret")
    foreign = ApprovalQuestions("http://test", settings().signing_secret).links(
        waiting["id"], waiting["parameters"])["decisions"]["reject"]
    monkeypatch.delenv("SIGNING_SECRET")
    tampered = [
        with_query(approve, sig=flip(signature, 0)),                 # one character changed ...
        with_query(approve, sig=flip(signature, 11)),
        with_query(approve, sig=flip(signature, len(signature) - 1)),
        with_query(approve, sig=signature[:16]),                      # cut short
        with_query(approve, sig=signature + "A"),                     # lengthened
        with_query(approve, sig=signature.swapcase()),
        with_query(approve, sig=""),
        with_query(approve, choice="reject"),                         # the other choice, same signature
        with_query(reject, sig=signature),                            # the other choice's signature
        with_query(approve, choice="Approve"),
        with_query(approve, choice="approve "),
        with_query(approve, choice="approve\x00"),
        with_query(approve, choice=""),
        with_query(reject, sig=other_signature),                      # signed for another continuation
        path_of(foreign),                                             # signed with another stage's secret
    ]
    assert reject_signature != signature
    for path in tampered:
        response = client.http.get(path)
        assert (response.status_code, body_of(response)["error"]) == (403, "InvalidSignature"), path
        response = post(client, path, "{}")
        assert (response.status_code, body_of(response)["error"]) == (403, "InvalidSignature"), path
        response = post(client, path, urlencode({"decision": "reject", "comment": "x"}), FORM)
        assert response.status_code == 403, path
        assert client.http.get(path, headers=HTML).status_code == 403
    assert_nothing_resumed(client, document, waiting)
    # The genuine link still decides: the refusals above were about the edits.
    response = post(client, path_of(reject), urlencode({"decision": "approve", "comment": "ok"}), FORM)
    assert response.status_code == 200
    assert body_of(client.http.get(f"/executions/{document['executionId']}"))["output"]["outcome"] == "rejected"


def test_a_decision_link_with_its_choice_twice_decides_only_what_was_signed(client):
    document = start(client, "approval", APPROVAL_INPUT)
    [waiting] = document["continuations"]
    parts = urlsplit(waiting["decisions"]["approve"])
    signature = parse_qs(parts.query)["sig"][0]
    for query in ({"choice": ["approve", "reject"], "sig": [signature]},
                  {"choice": ["reject", "approve"], "sig": [signature]}):
        response = post(client, parts.path + "?" + urlencode(query, doseq=True), "{}")
        if response.status_code == 200:
            assert body_of(response)["output"]["answer"]["decision"] == "approve"
            return
        assert response.status_code == 403
    assert_nothing_resumed(client, document, waiting)


def test_an_expired_decision_link_is_refused_and_resumes_nothing(client, monkeypatch):
    """A week and a day later (the approval's TimeoutSeconds is a week): 410, by link or page."""
    document = start(client, "approval", APPROVAL_INPUT)
    [waiting] = document["continuations"]
    later = time.time() + 8 * 86400
    monkeypatch.setattr(SystemClock, "now", lambda self: later)
    approve = path_of(waiting["decisions"]["approve"])
    for response in (post(client, approve, "{}"), post(client, approve, urlencode({"comment": "x"}), FORM)):
        assert (response.status_code, body_of(response)["error"]) == (410, "ContinuationExpired")
    assert client.http.get(approve, headers=HTML).status_code == 410
    assert body_of(client.http.get(approve))["status"] == "expired"  # read-only, as GET /continuations/{id}
    execution = body_of(client.http.get(f"/executions/{document['executionId']}"))
    assert execution["status"] == "SUSPENDED"
    assert "ExecutionResumed" not in [event["type"] for event in execution["history"]]


# -- errors reveal nothing ---------------------------------------------------------------------

SIGNING_SECRET = "signing-" + secrets.token_hex(12)
LEAKS = re.compile(r"Traceback|File \"|\.py\b|site-packages|" + re.escape(ROOT) + "|" + re.escape(SIGNING_SECRET))


def assert_discreet(response, *also_secret: str) -> None:
    """An error answer: its status, and a body with no traceback, source path or secret."""
    text = text_of(response)
    assert response.status_code >= 400, text
    assert not LEAKS.search(text), text
    for secret in also_secret:
        assert secret not in text


@pytest.fixture
def secret_stage(client, monkeypatch):
    monkeypatch.setenv("SIGNING_SECRET", SIGNING_SECRET)
    return client


BAD_DEFINITIONS = [
    {"StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": "$..[", "End": True}}},
    {"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x.$": "States.Format("}, "End": True}}},
    {"QueryLanguage": "JSONata", "StartAt": "A",
     "States": {"A": {"Type": "Pass", "Output": "{% $x( %}", "End": True}}},
    {"StartAt": "A", "States": {"A": {"Type": "Nope"}}},
    {"StartAt": "A"},
    "{not json",
    {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:x",
                                      "End": True}}},
]


def test_bad_requests_answer_without_tracebacks_paths_or_secrets(secret_stage):
    client = secret_stage
    ident = start(client, "incsquare", {"value": 1})["continuations"][0]["id"]
    approval = start(client, "approval", APPROVAL_INPUT)["continuations"][0]
    decide = path_of(approval["decisions"]["approve"])
    routes = ["/executions", f"/continuations/{ident}", f"/continuations/{ident}/failure", decide,
              "/state-machines/validate", "/?input=6", f"/?continuation={ident}"]
    for path in routes:
        for raw in ("{not json", "[1, 2", '{"a": }', "\x00", b"\xff\xfe\x00"):
            assert_discreet(post(client, path, raw))
    wrong_types = [
        ("/executions", {"stateMachine": 5}), ("/executions", {"definition": 12}),
        ("/executions", {"stateMachine": "incsquare", "name": ["x"]}), ("/executions", [1]),
        ("/executions", {"stateMachine": "incsquare", "bogus": {"__class__": 1}}),
        ("/executions", {"stateMachine": "../../app"}),
        (f"/continuations/{ident}", [1]), (f"/continuations/{ident}", json.dumps("text")),
        (f"/continuations/{ident}/failure", {"error": 5}),
        (f"/continuations/{ident}/failure", {"error": "E", "cause": 1}),
        (decide, [True]), (f"/continuations/{approval['id']}", {"decision": "maybe"}),
        ("/?input=%7Bnot", {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
    ]
    for path, body in wrong_types:
        assert_discreet(post(client, path, body))
    for definition in BAD_DEFINITIONS:
        assert_discreet(post(client, "/executions", {"definition": definition}))
        response = post(client, "/state-machines/validate", {"definition": definition})
        assert response.status_code in (200, 400) and not LEAKS.search(text_of(response))
    unknown = ["A" * 26, secrets.token_urlsafe(19)[:26], "x", "%2e%2e%2fapp", "%00%ff", "../../etc/passwd", "K" * 300]
    for ident_ in unknown:
        for response in (client.http.get(f"/continuations/{ident_}"), post(client, f"/continuations/{ident_}", {}),
                         post(client, f"/continuations/{ident_}/failure", {"error": "E"}),
                         post(client, f"/continuations/{ident_}/heartbeat", {}),
                         client.http.get(f"/continuations/{ident_}", headers=HTML),
                         client.http.get(f"/executions/{ident_}"), client.http.delete(f"/executions/{ident_}"),
                         client.http.get(f"/state-machines/{ident_}"),
                         client.http.get(f"/state-machines/{ident_}/diagram")):
            assert_discreet(response)


def test_deeply_nested_json_is_refused_not_an_internal_error(secret_stage):
    """Nested past what the parser takes (closed or not): too deep to echo, 400 InvalidRequest (test_depth.py)."""
    response = post(secret_stage, "/executions", "[" * 100_000)
    assert_discreet(response)
    assert (response.status_code, body_of(response)["error"]) == (400, "InvalidRequest")


def test_a_lone_surrogate_in_json_is_refused_not_stored(secret_stage, redis_client):
    """``"\\ud800"`` parses in Python but cannot be sent back as UTF-8: refuse it up front."""
    body = '{"stateMachine": "incsquare", "input": {"value": 6, "s": "\\ud800"}}'
    response = post(secret_stage, "/executions", body)
    assert (response.status_code, body_of(response)["error"]) == (400, "MalformedJSON")
    assert redis_client.dbsize() == 0


def test_failures_at_run_time_answer_without_tracebacks(secret_stage, monkeypatch):
    client = secret_stage

    def explode(payload, context):
        raise RuntimeError("the handler broke")

    monkeypatch.setitem(resources.registry._modules, "security-explode", explode)
    definition = {"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": "module:security-explode",
                                                          "End": True}}}
    document = body_of(post(client, "/executions", {"definition": definition}))
    assert (document["status"], document["error"], document["cause"]) == ("FAILED", "RuntimeError", "the handler broke")
    described = text_of(client.http.get(f"/executions/{document['executionId']}"))
    assert not LEAKS.search(described)
    intrinsic = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"x.$": "States.StringToJson($.s)"},
                                                  "End": True}}}
    failed = body_of(post(client, "/executions", {"definition": intrinsic, "input": {"s": "{broken"}}))
    assert failed["status"] == "FAILED" and not LEAKS.search(json.dumps(failed))
    squared = body_of(post(client, "/executions", {"stateMachine": "incsquare", "input": {"value": "not a number"}}))
    assert squared["status"] == "FAILED" and not LEAKS.search(json.dumps(squared))

    def broken_start(self, *args, **kwargs):
        raise RuntimeError(f"bug with {SIGNING_SECRET} in {ROOT}/chalicelib/service/runs.py")

    monkeypatch.setattr(Service, "start", broken_start)
    response = post(client, "/executions", {"stateMachine": "incsquare", "input": {"value": 1}})
    assert_discreet(response)
    assert body_of(response) == {"error": "InternalError", "message": "The service failed unexpectedly."}


@pytest.fixture
def guarded_server():
    """A Redis server that wants another password than the one the service will send."""
    with RedisServer() as server:
        redis.Redis(port=server.port).config_set("requirepass", "the-right-one")
        yield server


@pytest.mark.parametrize("where", ["closed port", "wrong password"])
def test_an_unreachable_store_reveals_neither_url_nor_password(secret_stage, monkeypatch, caplog, request, where):
    client = secret_stage
    ident = start(client, "incsquare", {"value": 1})["continuations"][0]["id"]
    password = "pw-" + secrets.token_hex(10)
    port = free_port() if where == "closed port" else request.getfixturevalue("guarded_server").port
    monkeypatch.setenv("REDIS_URL", f"redis://:{password}@127.0.0.1:{port}/0")
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT", "0.3")
    responses = [
        post(client, "/executions", {"stateMachine": "incsquare", "input": {"value": 1}}),
        post(client, f"/continuations/{ident}", {}),
        client.http.get(f"/continuations/{ident}"),
        client.http.get(f"/continuations/{ident}", headers=HTML),
        post(client, f"/continuations/{ident}", urlencode({"x": "1"}), {**FORM, **HTML}),
        client.http.delete(f"/executions/{'A' * 22}"),
    ]
    for response in responses:
        assert response.status_code == 503
        assert_discreet(response, password, f":{port}")
    assert password not in caplog.text


# -- request size limits -----------------------------------------------------------------------

LIMIT = 4096


def json_of_size(value, size: int) -> bytes:
    """``value`` as JSON, padded with spaces to exactly ``size`` bytes."""
    raw = json.dumps(value).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


def form_of_size(fields: dict, size: int) -> bytes:
    """``fields`` URL-encoded, the comment padded to exactly ``size`` bytes."""
    raw = urlencode({**fields, "comment": ""}).encode()
    return urlencode({**fields, "comment": "x" * (size - len(raw))}).encode()


def _incsquare(client) -> str:
    return start(client, "incsquare", {"value": 6})["continuations"][0]["id"]


def _approval(client) -> dict:
    return start(client, "approval", APPROVAL_INPUT)["continuations"][0]


INCSQUARE = catalog.load("incsquare")
# route name -> (setup(client) -> (path, content type, continuation or None), body(size) -> bytes)
ROUTES = {
    "start": (lambda c: ("/executions", JSON_BODY, None),
              lambda n: json_of_size({"stateMachine": "incsquare", "input": {"value": 6}}, n)),
    "redeem": (lambda c: (f"/continuations/{(k := _incsquare(c))}", JSON_BODY, k),
               lambda n: json_of_size({"note": "hi"}, n)),
    "redeem form": (lambda c: (f"/continuations/{(k := _approval(c))['id']}", FORM, k["id"]),
                    lambda n: form_of_size({"decision": "approve"}, n)),
    "decide": (lambda c: (path_of((k := _approval(c))["decisions"]["approve"]), JSON_BODY, k["id"]),
               lambda n: json_of_size({"comment": "ok"}, n)),
    "decide form": (lambda c: (path_of((k := _approval(c))["decisions"]["approve"]), FORM, k["id"]),
                    lambda n: form_of_size({}, n)),
    "failure": (lambda c: (f"/continuations/{(k := _incsquare(c))}/failure", JSON_BODY, k),
                lambda n: json_of_size({"error": "Rejected", "cause": "no"}, n)),
    "heartbeat": (lambda c: (f"/continuations/{(k := _incsquare(c))}/heartbeat", JSON_BODY, k),
                  lambda n: json_of_size({}, n)),
    "validate": (lambda c: ("/state-machines/validate", JSON_BODY, None),
                 lambda n: json_of_size({"definition": INCSQUARE}, n)),
    "prototype start": (lambda c: ("/?input=6", JSON_BODY, None), lambda n: json_of_size(INCSQUARE, n)),
    "prototype redeem": (lambda c: (f"/?continuation={(k := _incsquare(c))}", JSON_BODY, k),
                         lambda n: json_of_size({"note": "hi"}, n)),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_one_byte_over_the_limit_is_413_and_exactly_the_limit_is_served(client, redis_client, monkeypatch, route):
    monkeypatch.setenv("MAX_BODY_BYTES", str(LIMIT))
    setup, body = ROUTES[route]
    path, headers, continuation = setup(client)
    keys = redis_client.dbsize()
    over, exact = body(LIMIT + 1), body(LIMIT)
    assert (len(over), len(exact)) == (LIMIT + 1, LIMIT)
    response = post(client, path, over, headers)
    assert response.status_code == 413 and response.headers["Content-Type"] == "application/json"
    assert body_of(response)["error"] == "PayloadTooLarge"
    assert redis_client.dbsize() == keys  # nothing started
    if continuation is not None:
        assert body_of(client.http.get(f"/continuations/{continuation}"))["status"] == "waiting"
    response = post(client, path, exact, headers)
    assert response.status_code == 200, text_of(response)[:300]


def test_the_limit_counts_bytes_not_characters(client, monkeypatch):
    monkeypatch.setenv("MAX_BODY_BYTES", str(LIMIT))
    prefix = json.dumps({"stateMachine": "incsquare", "input": {"value": 6, "s": ""}}, ensure_ascii=False)
    room = LIMIT + 1 - len(prefix.encode())
    text = prefix[:-3] + "é" * (room // 2) + "x" * (room % 2) + prefix[-3:]
    assert len(text) <= LIMIT < len(text.encode()) == LIMIT + 1
    response = post(client, "/executions", text.encode())
    assert (response.status_code, body_of(response)["error"]) == (413, "PayloadTooLarge")
    waiting = _approval(client)
    fields = urlencode({"decision": "approve", "comment": ""})
    comment = "é" * ((LIMIT + 1 - len(fields)) // 6 + 1)  # 6 bytes each once URL-encoded
    response = post(client, f"/continuations/{waiting['id']}", urlencode({"decision": "approve", "comment": comment}),
                    {**FORM, **HTML})
    assert response.status_code == 413
    assert body_of(client.http.get(f"/continuations/{waiting['id']}"))["status"] == "waiting"
