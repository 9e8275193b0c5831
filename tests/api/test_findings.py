"""The numbered findings of the security review ("Who may do what"), one test each, asserting the
fixed behaviour: each of them failed on the code the findings were made on.

| finding | what was wrong | test |
| --- | --- | --- |
| 1 | the prototype's ``POST /?input=`` started without the API key | ``test_1_the_prototype_start_needs_the_api_key`` |
| 2 | an answer to one continuation showed the others' IDs and links | ``test_2_a_holder_learns_no_other_continuation``, ``test_2_a_holder_sees_the_outcome_only_where_the_definition_shows_it`` |
| 3 | task-token markers in user data leaked IDs and rewrote answers | ``test_3_marker_text_in_data_reveals_no_id_and_answers_are_never_rewritten``; with real task tokens: ``tests/api/test_security.py::test_user_data_that_looks_like_a_token_marker_reveals_no_token``, ``::test_an_answer_holding_another_continuation_id_is_never_rewritten`` |
| 4 | a ``child`` continuation could be answered, failed, heartbeaten | ``test_4_a_child_continuation_is_not_answerable_from_outside`` |
| 5 | ``StringMatches`` backtracked (22.8 s on 160 characters); ``=~`` and ``$match`` too | ``tests/asl/test_wildcards.py::test_string_matches_with_many_stars_on_a_long_text_finishes``; the regexes: ``tests/asl/test_regexes.py``, ``tests/api/test_regex_budget.py`` |
| 6 | HTTP tasks reached loopback, metadata and private addresses | ``tests/resources/test_outbound_policy.py::test_loopback_in_any_spelling_is_refused_by_default_and_nothing_reaches_it`` and ``::test_the_dev_stage_allows_loopback_only_and_the_webhook_example_is_checked`` |
| 7 | ``X-Forwarded-Proto: javascript:`` made every link a script | ``test_7_links_never_take_a_bad_scheme_or_host_from_the_request`` |
| 8 | a non-ASCII ``x-api-key`` was a 500; heartbeats evicted ``ExecutionStarted`` | ``test_8_a_non_ascii_api_key_is_refused_with_403``; ``tests/service/test_timers.py::test_heartbeats_keep_one_event_per_task_and_never_evict_execution_started`` |

Findings 5 and 6 are tested where their code lives (the interpreter, the resources); the others
are the HTTP API's.
"""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from .test_api import get, post, start

KEY = {"x-api-key": "stage-key", "Content-Type": "application/json"}
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
HTML = {"Accept": "text/html"}
INCSQUARE = json.loads(open("state_machines/incsquare.json").read())
#: Anything shaped like a continuation ID: a 4-character shard tag and 22 URL-safe base64 characters.
ID_SHAPED = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{26}(?![A-Za-z0-9_-])")


@pytest.fixture
def keyed(client, monkeypatch):
    monkeypatch.setenv("API_KEY", "stage-key")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://approvals.example.com")  # a keyed stage needs a source of links
    return client


def text_of(response) -> str:
    return response.body.decode() if isinstance(response.body, bytes) else response.body


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


# -- 1 ---------------------------------------------------------------------------------------------

def test_1_the_prototype_start_needs_the_api_key(keyed):
    response = keyed.http.post("/?input=6", headers=JSON, body=json.dumps(INCSQUARE))
    assert response.status_code == 403
    assert json.loads(response.body)["error"] == "Forbidden"
    allowed = keyed.http.post("/?input=6", headers=KEY, body=json.dumps(INCSQUARE))
    assert allowed.status_code == 200
    continuation = json.loads(allowed.body)["CONTINUATION"]
    # redeeming is the continuation holder's: no key needed
    done = keyed.http.post(f"/?continuation={continuation}", headers=JSON)
    assert json.loads(done.body)["status"] == "SUCCEEDED"


# -- 2 ---------------------------------------------------------------------------------------------

def test_2_a_holder_learns_no_other_continuation(keyed):
    """parallel-approval: whatever finance's holder does with its ID and links -- read, open a decision
    link, heartbeat, answer by JSON, form, decision link or the prototype's call, retry, answer again,
    fail -- no answer holds legal's ID, a part of it, its page or a decision link's signature. Every
    ID-shaped string in those answers is finance's own, so there is no other ID to post."""
    client = keyed
    response = client.http.post("/executions", headers=KEY,
                                body=json.dumps({"stateMachine": "parallel-approval", "input": {"n": 1}}))
    document = json.loads(response.body)
    waiting = {c["parameters"]["Approver"]: c for c in document["continuations"]}
    finance, legal = waiting["finance"], waiting["legal"]
    legal_secrets = [legal["id"], legal["id"][4:], legal["url"]]
    for url in legal["decisions"].values():
        legal_secrets += [url, path_of(url), parse_qs(urlsplit(url).query)["sig"][0]]
    approve = path_of(finance["decisions"]["approve"])
    reject = path_of(finance["decisions"]["reject"])
    me = f"/continuations/{finance['id']}"

    answers = []

    def holder(method: str, path: str, body: str | None = None, headers: dict = JSON):
        response = getattr(client.http, method)(path, headers=headers, **({} if body is None else {"body": body}))
        answers.append((method, path, response.status_code, text_of(response)))
        return response

    holder("get", me)
    holder("get", me, headers=HTML)
    holder("get", approve)
    holder("get", approve, headers=HTML)
    holder("post", me + "/heartbeat", "{}")
    first = holder("post", me, '{"decision": "approve"}')
    assert first.status_code == 200
    assert holder("post", me, '{"decision": "approve"}').status_code == 200  # the replay
    assert holder("post", f"/?continuation={finance['id']}", '{"decision": "approve"}').status_code == 200
    assert holder("post", me, '{"decision": "reject"}').status_code == 409
    assert holder("post", me + "/failure", '{"error": "Veto"}').status_code == 409
    assert holder("post", me + "/heartbeat", "{}").status_code == 409
    assert holder("post", reject, "{}").status_code == 409
    assert holder("post", reject, urlencode({"comment": "x"}), {**FORM, **HTML}).status_code == 409
    holder("get", me)
    holder("get", me, headers=HTML)

    for method, path, status, text in answers:
        for secret in legal_secrets:
            assert secret not in text, (method, path, status, secret)
        assert set(ID_SHAPED.findall(text)) <= {finance["id"]}, (method, path, status)

    answered = json.loads(text_of(first))
    assert (answered["status"], answered["continuation"], answered["waitingAt"]) == \
        ("SUSPENDED", finance["id"], ["AskLegal"])
    assert answered["outputPrivate"] is True and "output" not in answered and "continuations" not in answered
    # legal's branch is untouched: still waiting, and only its own holder answers it
    execution = json.loads(client.http.get(f"/executions/{document['executionId']}", headers=KEY).body)
    assert [c["id"] for c in execution["continuations"]] == [legal["id"]]
    assert sum(e["type"] == "ExecutionResumed" for e in execution["history"]) == 1


def test_2_a_holder_sees_the_outcome_only_where_the_definition_shows_it(keyed):
    """The other answers a holder gets: a fresh answer, a replay, a form's outcome page and the
    ones after a 410 say what became of this answer. The output is shown unless the waiting task
    says ``"PrivateOutput": true``; the API key's caller sees it either way."""
    client = keyed

    def ask(private: bool) -> dict:
        parameters = {"Title": "Approve?", "Choices": ["yes", "no"], **({"PrivateOutput": True} if private else {})}
        definition = {"StartAt": "Ask", "States": {
            "Ask": {"Type": "Task", "Resource": "module:suspend", "Parameters": parameters, "ResultPath": "$.answer",
                    "Next": "Done"},
            "Done": {"Type": "Pass", "Parameters": {"secret.$": "$.secret", "answer.$": "$.answer"}, "End": True}}}
        response = client.http.post("/executions", headers=KEY,
                                    body=json.dumps({"definition": definition, "input": {"secret": "s3cr3t"}}))
        return json.loads(response.body)

    shown = ask(private=False)
    ident = shown["continuations"][0]["id"]
    status, done = post(client, f"/continuations/{ident}", {"decision": "yes"})
    assert (status, done["status"], done["output"]) == (200, "SUCCEEDED",
                                                        {"secret": "s3cr3t", "answer": {"decision": "yes"}})
    assert set(done) == {"executionId", "status", "continuation", "state", "branch", "answered", "answeredAt",
                         "replay", "waitingAt", "output"}
    status, again = post(client, f"/continuations/{ident}", {"decision": "yes"})
    assert (status, again) == (200, {**done, "replay": True})

    hidden = ask(private=True)
    ident = hidden["continuations"][0]["id"]
    response = client.http.post(f"/continuations/{ident}", headers={**FORM, **HTML}, body=urlencode({"decision": "no"}))
    assert response.status_code == 200 and "s3cr3t" not in text_of(response)
    status, again = post(client, f"/?continuation={ident}", raw="")
    assert status == 409 and "s3cr3t" not in json.dumps(again)
    execution = json.loads(client.http.get(f"/executions/{hidden['executionId']}", headers=KEY).body)
    assert execution["output"]["secret"] == "s3cr3t"
    # a failure's error and cause are the outcome too
    failing = ask(private=True)
    status, failed = post(client, f"/continuations/{failing['continuations'][0]['id']}/failure",
                          {"error": "Veto", "cause": "s3cr3t"})
    assert (status, failed["status"], failed["answered"], failed["outputPrivate"]) == (200, "FAILED", "failure", True)
    assert "s3cr3t" not in json.dumps(failed) and "Veto" not in json.dumps(failed)
    # once the execution is stopped, an answer is a 410 that names nothing but the execution
    aborted = ask(private=False)
    client.http.delete(f"/executions/{aborted['executionId']}", headers=KEY)
    status, gone = post(client, f"/continuations/{aborted['continuations'][0]['id']}", {"decision": "yes"})
    assert (status, gone["error"]) == (410, "ContinuationExpired")
    assert set(gone) <= {"error", "message", "executionId"} and "s3cr3t" not in json.dumps(gone)


# -- 3 ---------------------------------------------------------------------------------------------

def test_3_marker_text_in_data_reveals_no_id_and_answers_are_never_rewritten(keyed):
    """parallel-approval started with text shaped like the task-token markers: finance's question shows
    the text as written, not legal's ID; answers quoting the other approver's ID are kept as written."""
    client = keyed
    note = {"note": "{{TaskToken p2}}", "also": "{{TaskToken p1}} {{TaskToken p3}}"}
    response = client.http.post("/executions", headers=KEY,
                                body=json.dumps({"stateMachine": "parallel-approval", "input": note}))
    document = json.loads(response.body)
    waiting = {c["parameters"]["Approver"]: c for c in document["continuations"]}
    finance, legal = waiting["finance"], waiting["legal"]
    shown = client.http.get(f"/continuations/{finance['id']}")
    assert json.loads(shown.body)["parameters"]["Request"] == note
    assert legal["id"] not in text_of(shown)
    assert post(client, f"/continuations/{finance['id']}", {"decision": "approve", "quote": legal["id"]})[0] == 200
    assert post(client, f"/continuations/{legal['id']}", {"decision": "approve", "quote": finance["id"]})[0] == 200
    execution = json.loads(client.http.get(f"/executions/{document['executionId']}", headers=KEY).body)
    assert execution["output"]["answers"] == [{"decision": "approve", "quote": legal["id"]},
                                              {"decision": "approve", "quote": finance["id"]}]
    assert execution["input"] == note


# -- 4 ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix,body", [("", {"Output": {"outcome": "approved"}, "ExecutionArn": "forged"}),
                                         ("/failure", {"error": "Forged"}),
                                         ("/heartbeat", {})])
def test_4_a_child_continuation_is_not_answerable_from_outside(client, suffix, body):
    parent = start(client, "purchase", {"item": "chair", "requester": "ria", "reason": "broken"})
    [waiting] = parent["continuations"]
    assert waiting["kind"] == "child"
    status, answer = post(client, f"/continuations/{waiting['id']}{suffix}", body)
    assert (status, answer["error"]) == (403, "ContinuationInternal")
    _, again = get(client, "/executions/" + parent["executionId"])
    assert again["status"] == "SUSPENDED"
    assert [c["kind"] for c in again["continuations"]] == ["child"]


# -- 7 ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{"X-Forwarded-Proto": "javascript:alert(1)//"},
                                     {"X-Forwarded-Proto": "data"},
                                     {"Host": "evil.example/<script>"},
                                     {"Host": "a b"}])
def test_7_links_never_take_a_bad_scheme_or_host_from_the_request(client, monkeypatch, headers):
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    response = client.http.post("/executions", headers={"Content-Type": "application/json", **headers},
                                body=json.dumps({"stateMachine": "incsquare", "input": {"value": 6}}))
    [continuation] = json.loads(response.body)["continuations"]
    assert continuation["url"].startswith(("http://", "https://"))
    assert "<" not in continuation["url"] and " " not in continuation["url"]
    assert "javascript" not in continuation["url"]


# -- 8 ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["ключ", "caf\u00e9", "\u00ff" * 9])
def test_8_a_non_ascii_api_key_is_refused_with_403(keyed, value):
    response = keyed.http.get("/executions/abc", headers={"x-api-key": value})
    assert response.status_code == 403
    assert json.loads(response.body)["error"] == "Forbidden"


# -- the table -------------------------------------------------------------------------------------

def test_every_test_the_table_names_exists():
    """The docstring's table stays true: each ``path::test`` (or ``::test`` of the path before it,
    or ``test`` of this module) it names is defined there."""
    import os

    from ..conftest import ROOT

    here = os.path.relpath(__file__, ROOT)
    named = []
    for row in __doc__.splitlines():
        if not row.startswith("| ") or not row[2].isdigit():
            continue
        path = here
        for ref in re.findall(r"``([\w/.]*::\w+|::\w+|test_\w+)``", row.split("|")[3]):
            if ref.startswith("::"):
                ref = path + ref
            elif "::" not in ref:
                ref = f"{here}::{ref}"
            path, name = ref.split("::")
            named.append((path, name))
    assert len(named) >= 12
    for path, name in named:
        with open(os.path.join(ROOT, path), encoding="utf-8") as source:
            assert re.search(rf"^def {name}\(", source.read(), re.M), f"{path}::{name}"
