"""Approval pages, forms, decision links and the approval email, through Chalice's test client."""
from __future__ import annotations

import email
import email.policy
import json
import re
import sys
import types
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from chalicelib.approvals import diagram, forms, links
from chalicelib.config import settings
from chalicelib.service.ids import id_hash, tag_of
from chalicelib.approvals.pages import friendly_time
from chalicelib.approvals import make_service
from chalicelib.store import Store

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
FORM = {**HTML, "Content-Type": "application/x-www-form-urlencoded"}
JSON_BODY = {"Content-Type": "application/json"}
REQUEST = {"item": "laptop", "requester": "ann", "reason": "the old one broke", "approver": "boss@example.com"}


@pytest.fixture(autouse=True)
def quiet_local_settings(monkeypatch, tmp_path):
    """Emails go to a fresh outbox; pages load no script (no network in tests)."""
    monkeypatch.setenv("EMAIL_MODE", "outbox")
    monkeypatch.setenv("OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("DIAGRAM_SCRIPT_URL", "")
    return tmp_path / "outbox"


def text(response) -> str:
    return response.body.decode() if isinstance(response.body, bytes) else response.body


def as_json(response):
    return json.loads(text(response))


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def start(client, machine="approval", input=REQUEST, definition=None) -> dict:
    body = {"definition": definition} if definition else {"stateMachine": machine}
    response = client.http.post("/executions", headers=JSON_BODY, body=json.dumps({**body, "input": input}))
    assert response.status_code == 200, text(response)
    return as_json(response)


def waiting_of(document: dict) -> dict:
    [waiting] = document["continuations"]
    return waiting


def execution(client, document: dict) -> dict:
    return as_json(client.http.get(f"/executions/{document['executionId']}"))


def get_page(client, path: str):
    response = client.http.get(path, headers=HTML)
    assert response.headers["Content-Type"].startswith("text/html")
    return response, text(response)


def post_form(client, path: str, fields: dict | list):
    response = client.http.post(path, headers=FORM, body=urlencode(fields, doseq=True))
    return response, text(response)


def h1(page: str) -> str:
    return unescape(re.search(r"<h1>(.*?)</h1>", page, re.S).group(1)).strip()


def eyebrow(page: str) -> str:
    return unescape(re.search(r'<p class="eyebrow">(.*?)</p>', page, re.S).group(1)).strip()


def visible_text(page: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page)).split())


# -- the page -------------------------------------------------------------------------------

def test_a_browser_gets_the_question_page(client):
    document = start(client)
    waiting = waiting_of(document)
    response, page = get_page(client, path_of(waiting["url"]))
    assert response.status_code == 200
    assert h1(page) == "Approve laptop for ann?"
    words = visible_text(page)
    for shown in ("the old one broke", "Item", "laptop", "Requested by", "ann"):
        assert shown in words
    assert "boss@example.com" not in words  # the email address is the task's, not the approver's data
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert '<form method="post">' in page
    assert "<script" not in page  # no script needed (and none configured here)
    # every control has a label
    controls = re.findall(r'<(?:input|textarea|select)\b[^>]*\bid="([^"]+)"', page)
    assert controls == ["choice-1", "choice-2", "field-1"]
    for ident in controls:
        assert f'<label for="{ident}">' in page
    assert re.search(r'<input type="radio" id="choice-1" name="decision" value="approve" required>', page)
    assert re.search(r'<textarea id="field-1" name="comment"', page)


def test_pages_are_private_and_cannot_be_framed(client):
    response, _ = get_page(client, path_of(waiting_of(start(client))["url"]))
    headers = response.headers
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "form-action 'self'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer"


def test_api_clients_still_get_json(client):
    waiting = waiting_of(start(client))
    for headers in ({}, {"Accept": "application/json"}, {"Accept": "*/*"}):
        response = client.http.get(path_of(waiting["url"]), headers=headers)
        assert response.headers["Content-Type"] == "application/json"
        info = as_json(response)
        assert info["status"] == "waiting" and info["parameters"]["Title"] == "Approve laptop for ann?"
        assert info["url"] == waiting["url"] and info["decisions"] == waiting["decisions"]


def test_get_never_resumes(client):
    document = start(client)
    waiting = waiting_of(document)
    events = len(execution(client, document)["history"])
    for _ in range(3):
        get_page(client, path_of(waiting["url"]))
        for url in waiting["decisions"].values():
            assert get_page(client, path_of(url))[0].status_code == 200
            assert client.http.get(path_of(url)).status_code == 200
    assert execution(client, document)["status"] == "SUSPENDED"
    assert as_json(client.http.get(path_of(waiting["url"])))["status"] == "waiting"
    assert len(execution(client, document)["history"]) == events


def test_the_form_resumes_the_execution_and_shows_the_outcome(client):
    document = start(client)
    waiting = waiting_of(document)
    response, page = post_form(client, path_of(waiting["url"]), {"decision": "reject", "comment": "too pricey"})
    assert response.status_code == 200
    assert eyebrow(page) == "Answer recorded"
    words = visible_text(page)
    assert "Decision reject" in words and "Comment too pricey" in words
    assert re.findall(r"<li>(.*?)</li>", page.split('class="trail"')[1].split("</ol>")[0]) == ["Decide", "Rejected"]
    assert "The workflow has finished." in words
    done = execution(client, document)
    assert done["status"] == "SUCCEEDED"
    assert done["output"] == {"outcome": "rejected", "request": REQUEST,
                              "answer": {"decision": "reject", "comment": "too pricey"}}


def test_the_outcome_names_the_state_the_workflow_waits_at_next(client):
    document = start(client, "parallel-approval", {"id": 7})
    finance = next(c for c in document["continuations"] if c["state"] == "AskFinance")
    _, page = post_form(client, path_of(finance["url"]), {"decision": "approve"})
    assert "It now waits at: AskLegal." in visible_text(page)


def test_an_invalid_form_is_shown_again_with_its_errors_and_consumes_nothing(client):
    document = start(client)
    waiting = waiting_of(document)
    response, page = post_form(client, path_of(waiting["url"]), {"comment": "forgot to choose <b>"})
    assert response.status_code == 422
    assert 'role="alert"' in page and "Choose one of: approve, reject." in page
    assert '<a href="#choice-1">Decision</a>' in page
    assert ">forgot to choose &lt;b&gt;</textarea>" in page  # what was typed is kept
    assert execution(client, document)["status"] == "SUSPENDED"
    response, _ = post_form(client, path_of(waiting["url"]), {"decision": "approve", "comment": "ok"})
    assert response.status_code == 200
    assert execution(client, document)["output"]["outcome"] == "approved"


def test_a_choice_outside_the_choices_is_refused(client):
    document = start(client)
    response, page = post_form(client, path_of(waiting_of(document)["url"]), {"decision": "approve!"})
    assert response.status_code == 422
    assert execution(client, document)["status"] == "SUSPENDED"


def test_json_answers_are_checked_too(client):
    document = start(client)
    path = path_of(waiting_of(document)["url"])
    for answer in ({}, {"decision": "maybe"}, {"decision": "approve", "comment": 5}):
        response = client.http.post(path, headers=JSON_BODY, body=json.dumps(answer))
        assert response.status_code == 422, answer
        error = as_json(response)
        assert error["error"] == "InvalidAnswer" and error["fieldErrors"]
    assert as_json(client.http.post(path, headers=JSON_BODY, body=json.dumps({"decision": "maybe"})))[
        "fieldErrors"] == {"decision": "Choose one of: approve, reject."}
    assert execution(client, document)["status"] == "SUSPENDED"
    response = client.http.post(path, headers=JSON_BODY, body=json.dumps({"decision": "approve", "extra": 1}))
    assert response.status_code == 200
    assert as_json(response)["output"]["answer"] == {"decision": "approve", "extra": 1}


def test_a_form_posted_by_an_api_client_answers_with_json(client):
    document = start(client)
    response = client.http.post(path_of(waiting_of(document)["url"]),
                                headers={"Content-Type": "application/x-www-form-urlencoded"},
                                body="decision=approve")
    assert response.headers["Content-Type"] == "application/json"
    assert as_json(response)["output"]["outcome"] == "approved"


# -- field types ----------------------------------------------------------------------------

FIELDS = [
    {"name": "reason", "label": "Why", "type": "text", "required": True},
    {"name": "notes", "type": "textarea"},
    {"name": "amount", "label": "Amount (EUR)", "type": "number", "required": True},
    {"name": "agree", "label": "I have checked the budget", "type": "boolean", "required": True},
    {"name": "urgent", "type": "boolean"},
    {"name": "team", "type": "choice", "options": ["red", "blue"], "required": True},
    {"name": "start", "label": "Start date", "type": "date"},
]
FORM_MACHINE = {"StartAt": "Ask", "States": {
    "Ask": {"Type": "Task", "Resource": "module:suspend", "ResultPath": "$.answer", "End": True,
            "Parameters": {"Title": "Budget", "Fields": FIELDS}}}}


def test_every_field_type_is_rendered_with_a_label(client):
    document = start(client, input={}, definition=FORM_MACHINE)
    _, page = get_page(client, path_of(waiting_of(document)["url"]))
    assert '<input type="text" id="field-1" name="reason" value="" required>' in page
    assert '<textarea id="field-2" name="notes" rows="4"></textarea>' in page
    assert ('<input type="number" step="any" inputmode="decimal" id="field-3" name="amount" value="" required>'
            in page)
    assert '<input type="checkbox" id="field-4" name="agree" value="true" required>' in page
    assert '<input type="checkbox" id="field-5" name="urgent" value="true">' in page
    assert re.search(r'<select id="field-6" name="team" required>\s*<option value="">Choose…</option>\s*'
                     r'<option value="red">red</option>\s*<option value="blue">blue</option>', page)
    assert re.search(r'<input type="date" id="field-7" name="start"', page)
    for index, label in enumerate(["Why", "notes", "Amount (EUR)", "I have checked the budget", "urgent", "team",
                                   "Start date"], 1):
        assert re.search(rf'<label for="field-{index}">{re.escape(label)}', page)
    assert "<legend>" not in page  # no Choices: no decision


def test_form_values_are_typed_and_checked(client):
    document = start(client, input={}, definition=FORM_MACHINE)
    path = path_of(waiting_of(document)["url"])
    response, page = post_form(client, path, {"reason": "  ", "amount": "12,5", "team": "green", "start": "2027-02-30"})
    assert response.status_code == 422
    errors = dict(re.findall(r'<a href="#field-\d">(.*?)</a>: (.*?)</li>', page))
    assert errors == {"Why": "This field is required.", "Amount (EUR)": "Enter a number.",
                      "I have checked the budget": "This box must be ticked.",
                      "team": "Choose one of: red, blue.", "Start date": "Enter a date as YYYY-MM-DD."}
    assert 'aria-invalid="true" aria-describedby="field-3-error"' in page
    response, _ = post_form(client, path, {"reason": "new hire", "amount": "1200.50", "agree": "true",
                                           "team": "blue", "start": "2027-03-01", "notes": ""})
    assert response.status_code == 200
    assert execution(client, document)["output"]["answer"] == {
        "reason": "new hire", "amount": 1200.5, "agree": True, "urgent": False, "team": "blue", "start": "2027-03-01"}


def test_json_answers_are_checked_by_field_type(client):
    document = start(client, input={}, definition=FORM_MACHINE)
    path = path_of(waiting_of(document)["url"])
    answer = {"reason": 3, "amount": "12", "agree": "yes", "urgent": 1, "team": "green", "start": "01/02/2027"}
    error = as_json(client.http.post(path, headers=JSON_BODY, body=json.dumps(answer)))
    assert error["fieldErrors"] == {"reason": "Enter text.", "amount": "Enter a number.",
                                    "agree": "Must be true or false.", "urgent": "Must be true or false.",
                                    "team": "Choose one of: red, blue.", "start": "Enter a date as YYYY-MM-DD."}
    good = {"reason": "x", "amount": 3, "agree": True, "team": "red"}
    assert client.http.post(path, headers=JSON_BODY, body=json.dumps(good)).status_code == 200


# -- one-click decision links ----------------------------------------------------------------

def test_decision_links_are_in_the_document_and_signed(client):
    waiting = waiting_of(start(client))
    assert list(waiting["decisions"]) == ["approve", "reject"]
    for choice, url in waiting["decisions"].items():
        parts = urlsplit(url)
        assert parts.path == urlsplit(waiting["url"]).path + "/decide"
        query = parse_qs(parts.query)
        assert query["choice"] == [choice]
        assert links.verify("dev-only-signing-secret-change-me", waiting["id"], choice, query["sig"][0])
    assert "decisions" not in waiting_of(start(client, "incsquare", {"value": 1}))  # no Choices, no links


def test_a_decision_link_asks_for_confirmation_and_its_button_decides(client):
    document = start(client)
    waiting = waiting_of(document)
    path = path_of(waiting["decisions"]["reject"])
    response, page = get_page(client, path)
    assert response.status_code == 200
    assert eyebrow(page) == "Confirm your decision"
    assert re.findall(r"<button[^>]*>(.*?)</button>", page) == ["Confirm: reject"]
    assert '<form method="post">' in page  # posts back to the same signed URL
    assert execution(client, document)["status"] == "SUSPENDED"
    response, page = post_form(client, path, {"comment": "not now"})
    assert response.status_code == 200 and eyebrow(page) == "Answer recorded"
    assert execution(client, document)["output"]["answer"] == {"decision": "reject", "comment": "not now"}


def test_a_decision_link_posted_as_json(client):
    document = start(client)
    path = path_of(waiting_of(document)["decisions"]["approve"])
    info = as_json(client.http.get(path))
    assert info["decision"] == {"decision": "approve"} and info["status"] == "waiting"
    response = client.http.post(path, headers=JSON_BODY, body=json.dumps({"decision": "reject", "comment": "hi"}))
    assert response.status_code == 200
    assert as_json(response)["output"]["answer"] == {"decision": "approve", "comment": "hi"}  # the link decides


@pytest.mark.parametrize("change", [
    lambda q: {**q, "choice": ["reject"]},         # the choice edited
    lambda q: {**q, "sig": [q["sig"][0][:-1]]},    # the signature cut short
    lambda q: {"choice": q["choice"]},             # no signature
    lambda q: {**q, "sig": ["A" * 22]},            # a made-up signature
])
def test_an_edited_decision_link_is_refused(client, change):
    document = start(client)
    url = waiting_of(document)["decisions"]["approve"]
    parts = urlsplit(url)
    tampered = parts.path + "?" + urlencode(change(parse_qs(parts.query)), doseq=True)
    response, page = get_page(client, tampered)
    assert response.status_code == 403 and h1(page) == "This decision link does not work"
    response, page = post_form(client, tampered, {})
    assert response.status_code == 403
    response = client.http.post(tampered, headers=JSON_BODY, body="{}")
    assert response.status_code == 403 and as_json(response)["error"] == "InvalidSignature"
    assert execution(client, document)["status"] == "SUSPENDED"


def test_a_link_signed_for_another_continuation_is_refused(client):
    first, second = waiting_of(start(client)), waiting_of(start(client))
    query = urlsplit(first["decisions"]["approve"]).query
    response = client.http.post(urlsplit(second["url"]).path + "/decide?" + query, headers=JSON_BODY, body="{}")
    assert response.status_code == 403


# -- answered, expired, unknown, aborted -----------------------------------------------------

def test_a_second_submission_shows_the_answer_already_given(client):
    document = start(client)
    waiting = waiting_of(document)
    post_form(client, path_of(waiting["url"]), {"decision": "approve", "comment": "first"})
    for path in (path_of(waiting["url"]), path_of(waiting["decisions"]["reject"])):
        response, page = post_form(client, path, {"decision": "reject", "comment": "second"})
        assert response.status_code == 409
        assert eyebrow(page) == "Already answered"
        words = visible_text(page)
        assert "Decision approve" in words and "Comment first" in words and "second" not in words
        assert "Nothing was changed." in words
    response, page = get_page(client, path_of(waiting["url"]))
    assert response.status_code == 200 and eyebrow(page) == "Already answered"
    answered_at = as_json(client.http.get(path_of(waiting["url"])))["answer"]["at"]
    day = answered_at[8:10].lstrip("0")
    assert f"answered on {day} " in visible_text(page)
    assert as_json(client.http.post(path_of(waiting["url"]), headers=JSON_BODY, body="{}"))[
        "error"] == "ContinuationAlreadyRedeemed"
    assert execution(client, document)["output"]["answer"] == {"decision": "approve", "comment": "first"}


def test_an_answer_racing_another_is_told_to_look_again(client, redis_client):
    document = start(client)
    waiting = waiting_of(document)
    make_service(settings(), Store(redis_client)).claim(waiting["id"])  # another request is answering
    response, page = post_form(client, path_of(waiting["url"]), {"decision": "approve"})
    assert response.status_code == 409 and h1(page) == "This request is being answered just now"
    assert execution(client, document)["status"] == "SUSPENDED"


def expire(redis_client, continuation: str) -> None:
    """Move the continuation's deadline into the past, as time passing would."""
    redis_client.hset(Store.continuation_key(tag_of(continuation), id_hash(continuation)), "expiresAt", "1.0")


def test_an_expired_continuation_explains_itself(client, redis_client):
    document = start(client)
    waiting = waiting_of(document)
    expire(redis_client, waiting["id"])
    for path in (path_of(waiting["url"]), path_of(waiting["decisions"]["approve"])):
        response, page = get_page(client, path)
        assert response.status_code == 410 and h1(page) == "This request has expired"
        assert "1 Jan 1970, 00:00 UTC" in visible_text(page)
    response, page = post_form(client, path_of(waiting["url"]), {"decision": "approve"})
    assert response.status_code == 410 and h1(page) == "This request has expired"
    response = client.http.post(path_of(waiting["url"]), headers=JSON_BODY, body='{"decision": "approve"}')
    assert response.status_code == 410 and as_json(response)["error"] == "ContinuationExpired"


def test_an_aborted_execution_explains_itself(client):
    document = start(client)
    waiting = waiting_of(document)
    client.http.delete(f"/executions/{document['executionId']}")
    response, page = get_page(client, path_of(waiting["url"]))
    assert response.status_code == 410 and h1(page) == "This request was cancelled"
    response, page = post_form(client, path_of(waiting["url"]), {"decision": "approve"})
    assert response.status_code == 410 and h1(page) == "This request was cancelled"
    response = client.http.post(path_of(waiting["decisions"]["approve"]), headers=JSON_BODY, body="{}")
    assert response.status_code == 410 and as_json(response)["error"] == "ContinuationExpired"


def test_an_unknown_continuation_explains_itself(client):
    for ident in ("A" * 26, "nope"):
        response, page = get_page(client, f"/continuations/{ident}")
        assert response.status_code == 404 and h1(page) == "This link does not lead to a request"
        response, page = post_form(client, f"/continuations/{ident}", {"decision": "approve"})
        assert response.status_code == 404
        response = client.http.get(f"/continuations/{ident}")
        assert response.status_code == 404 and as_json(response)["error"] == "ContinuationNotFound"


def test_a_continuation_passed_by_explains_itself(client):
    document = start(client, "parallel-approval", {"id": 1})
    first, second = document["continuations"]
    client.http.post(f"/continuations/{first['id']}/failure", headers=JSON_BODY, body='{"error": "Vetoed"}')
    response, page = get_page(client, path_of(second["url"]))
    assert response.status_code == 410 and h1(page) == "This request is no longer open"
    assert "The workflow has ended with an error." in visible_text(page)


# -- escaping -------------------------------------------------------------------------------

EVIL = "<script>alert('x')</script>"


def test_values_from_the_execution_are_escaped(client, quiet_local_settings):
    request = {"item": EVIL, "requester": '"><img src=x onerror=alert(1)>', "reason": EVIL}
    document = start(client, input=request)
    waiting = waiting_of(document)
    pages = [get_page(client, path_of(url))[1] for url in (waiting["url"], waiting["decisions"]["approve"])]
    pages.append(post_form(client, path_of(waiting["url"]), {"comment": EVIL})[1])  # 422: shown again
    pages.append(post_form(client, path_of(waiting["url"]), {"decision": "approve", "comment": EVIL})[1])
    pages.append(get_page(client, path_of(waiting["url"]))[1])  # already answered, with the comment
    for page in pages:
        assert "<script" not in page and "<img" not in page
        assert "&lt;script&gt;" in page
    assert h1(pages[0]) == f"Approve {EVIL} for {request['requester']}?"
    [message] = quiet_local_settings.glob("*.eml")
    parsed = email.message_from_bytes(message.read_bytes(), policy=email.policy.default)
    html = parsed.get_body(("html",)).get_content()
    assert "<script" not in html and "&lt;script&gt;" in html


def test_state_names_are_escaped_in_the_diagram(client):
    definition = {"StartAt": EVIL, "States": {EVIL: {"Type": "Task", "Resource": "module:suspend", "End": True}}}
    document = start(client, input={}, definition=definition)
    _, page = get_page(client, path_of(waiting_of(document)["url"]))
    assert "<script" not in page
    assert 'n1[&#34;#lt;script#gt;alert(\'x\')#lt;/script#gt;&#34;]' in page.replace("&#39;", "'")


# -- the diagram ----------------------------------------------------------------------------

def test_the_diagram_endpoint_serves_mermaid_text(client):
    response = client.http.get("/state-machines/approval/diagram?highlight=AskByEmail")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    chart = text(response)
    assert chart.startswith("flowchart TD\n")
    nodes = dict((name, node) for node, name in re.findall(r'^\s*(n\d+)[\[{(/]+"([^"]+)"', chart, re.M))
    assert set(nodes) == {"PrepareRequest", "Approver given?", "UseGivenApprover", "UseDefaultApprover",
                          "AskByEmail", "Decide", "Approved", "Rejected", "Expired"}
    assert f"startNode --> {nodes['PrepareRequest']}" in chart
    assert f"{nodes['AskByEmail']} --> {nodes['Decide']}" in chart
    assert f'{nodes["AskByEmail"]} -.->|"States.Timeout"| {nodes["Expired"]}' in chart
    assert f'{nodes["Decide"]} -->|"$.answer.decision == #quot;approve#quot;"| {nodes["Approved"]}' in chart
    assert f'{nodes["Decide"]} -->|"Default"| {nodes["Rejected"]}' in chart
    assert f"{nodes['Approved']} --> endNode" in chart
    assert f"class {nodes['AskByEmail']} waiting" in chart
    assert client.http.get("/state-machines/nope/diagram").status_code == 404


def test_the_diagram_draws_parallel_and_map_as_subgraphs():
    definition = {"StartAt": "Both", "States": {
        "Both": {"Type": "Parallel", "Next": "Each", "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
            {"StartAt": "B", "States": {"B": {"Type": "Wait", "Seconds": 1, "Next": "C"},
                                        "C": {"Type": "Fail", "Error": "E"}}}]},
        "Each": {"Type": "Map", "End": True, "Iterator": {"StartAt": "D", "States": {
            "D": {"Type": "Task", "Resource": "module:suspend", "End": True}}}}}}
    chart = diagram.mermaid(definition, waiting=["D"], visited=["A"])
    lines = [line.strip() for line in chart.splitlines()]
    both = lines.index('subgraph n1["Both (Parallel)"]')
    each = lines.index('subgraph n2["Each (Map)"]')
    assert lines[both + 1] == 'subgraph n3["Branch 1"]' and lines[both + 2] == 'n4["A"]'
    assert 'n6[/"B"/]' in lines and 'n7(["C"])' in lines and "n6 --> n7" in lines
    assert lines[each + 1] == 'n8["D"]' and lines[each + 2] == "end"
    assert "startNode --> n1" in lines and "n1 --> n2" in lines and "n2 --> endNode" in lines
    assert "n4 --> endNode" not in lines  # a branch's end is not the machine's
    assert "class n8 waiting" in lines and "class n4 visited" in lines and "class n7 fail" in lines


def test_the_page_shows_the_diagram_with_the_waiting_state_marked(client):
    waiting = waiting_of(start(client))
    _, page = get_page(client, path_of(waiting["url"]))
    chart = unescape(re.search(r'<pre class="mermaid" id="diagram">(.*?)</pre>', page, re.S).group(1))
    node = re.search(r'(n\d+)\["AskByEmail"\]', chart).group(1)
    assert f"class {node} waiting" in chart
    assert "It waits for this answer at the step “AskByEmail”." in visible_text(page)


def test_the_diagram_script_is_loaded_only_when_configured(client, monkeypatch):
    monkeypatch.setenv("DIAGRAM_SCRIPT_URL", "https://cdn.example.org/mermaid.esm.min.mjs")
    response, page = get_page(client, path_of(waiting_of(start(client))["url"]))
    nonce = re.search(r'<script type="module" nonce="([^"]+)">', page).group(1)
    assert '"https://cdn.example.org/mermaid.esm.min.mjs"' in page
    assert f"script-src 'nonce-{nonce}' https://cdn.example.org" in response.headers["Content-Security-Policy"]


# -- the approval email ---------------------------------------------------------------------

def test_the_approval_email_is_written_to_the_outbox_with_its_links(client, quiet_local_settings):
    document = start(client)
    waiting = waiting_of(document)
    [message] = quiet_local_settings.glob("*.eml")
    parsed = email.message_from_bytes(message.read_bytes(), policy=email.policy.default)
    assert parsed["To"] == "boss@example.com" and parsed["From"] == "approvals@example.com"
    assert parsed["Subject"] == "Approve laptop for ann?"
    body = parsed.get_body(("plain",)).get_content()
    assert "the old one broke" in body and "Requested by: ann" in body
    assert f"  approve: {waiting['decisions']['approve']}\n" in body
    assert f"  reject: {waiting['decisions']['reject']}\n" in body
    assert f"  {waiting['url']}\n" in body
    assert f"Please answer by {friendly_time(waiting['expiresAt'])}." in body
    html = parsed.get_body(("html",)).get_content()
    for url in [waiting["url"], *waiting["decisions"].values()]:
        assert f'href="{url.replace("&", "&amp;")}"' in html
    # the link from the email works
    response, page = get_page(client, path_of(re.search(r"  reject: (\S+)", body).group(1)))
    assert response.status_code == 200 and "Confirm: reject" in page


def test_the_approver_defaults_when_the_input_names_none(client, quiet_local_settings):
    start(client, input={"item": "pen", "requester": "bo", "reason": "ink"})
    [message] = quiet_local_settings.glob("*.eml")
    assert email.message_from_bytes(message.read_bytes())["To"] == "approver@example.com"


class FakeSes:
    def __init__(self, error_code: str | None = None):
        self.calls = []
        self.error_code = error_code

    def send_email(self, **request):
        from botocore.exceptions import ClientError

        self.calls.append(request)
        if self.error_code:
            raise ClientError({"Error": {"Code": self.error_code, "Message": "Email address is not verified."}},
                              "SendEmail")
        return {"MessageId": "m-1"}


def fake_boto3(monkeypatch, ses: FakeSes) -> None:
    """boto3 with only ``client("sesv2")``: the mailer imports boto3 when it sends."""
    module = types.ModuleType("boto3")
    module.client = lambda service, **kwargs: ses if service == "sesv2" else None
    monkeypatch.setitem(sys.modules, "boto3", module)


def test_with_ses_the_email_is_sent_through_sesv2(client, monkeypatch, quiet_local_settings):
    ses = FakeSes()
    fake_boto3(monkeypatch, ses)
    monkeypatch.setenv("EMAIL_MODE", "ses")
    monkeypatch.setenv("EMAIL_FROM", "workflows@example.org")
    waiting = waiting_of(start(client))
    [request] = ses.calls
    assert request["FromEmailAddress"] == "workflows@example.org"
    assert request["Destination"] == {"ToAddresses": ["boss@example.com"]}
    content = request["Content"]["Simple"]
    assert content["Subject"] == {"Data": "Approve laptop for ann?", "Charset": "UTF-8"}
    assert waiting["decisions"]["approve"] in content["Body"]["Text"]["Data"]
    assert waiting["decisions"]["approve"].replace("&", "&amp;") in content["Body"]["Html"]["Data"]
    assert not quiet_local_settings.exists()


def test_an_ses_error_fails_the_task_with_its_code(client, monkeypatch):
    fake_boto3(monkeypatch, FakeSes("MessageRejected"))
    monkeypatch.setenv("EMAIL_MODE", "ses")
    document = start(client)
    assert (document["status"], document["error"]) == ("FAILED", "SesV2.MessageRejected")
    assert document["cause"] == "Email address is not verified."


def email_machine(parameters: dict) -> dict:
    return {"StartAt": "Ask", "States": {"Ask": {
        "Type": "Task", "Resource": "arn:aws:states:::email:send.waitForTaskToken",
        "Parameters": parameters, "ResultPath": "$.answer", "End": True}}}


@pytest.mark.parametrize("parameters, error", [
    ({"Title": "No address"}, "Email.InvalidParameters"),
    ({"To": "not-an-address", "Title": "x"}, "Email.InvalidParameters"),
    ({"To": "a@example.com", "Subject": "two\nlines"}, "Email.InvalidParameters"),
    ({"To": "a@example.com", "Choices": "approve"}, "Email.InvalidQuestion"),
    ({"To": "a@example.com", "Fields": [{"name": "n", "type": "colour"}]}, "Email.InvalidQuestion"),
])
def test_the_email_task_refuses_bad_parameters(client, monkeypatch, parameters, error):
    monkeypatch.setenv("ALLOWED_RESOURCES", "module:*,arn:aws:states:::email:send*")
    document = start(client, input={}, definition=email_machine(parameters))
    assert (document["status"], document["error"]) == ("FAILED", error)


def test_inline_definitions_need_the_email_resource_allowed(client):
    response = client.http.post("/executions", headers=JSON_BODY, body=json.dumps(
        {"definition": email_machine({"To": "a@example.com"})}))
    assert response.status_code == 403 and as_json(response)["error"] == "ResourceNotAllowed"


def test_the_email_task_without_the_suffix_waits_the_same_way(client, monkeypatch, quiet_local_settings):
    monkeypatch.setenv("ALLOWED_RESOURCES", "module:*,arn:aws:states:::email:send*")
    definition = email_machine({"To": ["a@example.com", "b@example.com"], "Title": "Go?", "Choices": ["go", "stop"]})
    definition["States"]["Ask"]["Resource"] = "arn:aws:states:::email:send"
    document = start(client, input={"n": 1}, definition=definition)
    waiting = waiting_of(document)
    assert waiting["kind"] == "task-token"
    [message] = quiet_local_settings.glob("*.eml")
    assert email.message_from_bytes(message.read_bytes())["To"] == "a@example.com, b@example.com"
    response = client.http.post(path_of(waiting["decisions"]["go"]), headers=JSON_BODY, body="{}")
    assert as_json(response)["output"] == {"n": 1, "answer": {"decision": "go"}}


# -- the conventions, directly --------------------------------------------------------------

def test_question_conventions():
    question = forms.question_of({"Title": "T", "Choices": ["yes", "no"], "ChoiceField": "answer",
                                  "Fields": [{"name": "why", "type": "textarea", "required": True}],
                                  "To": "x@example.com", "Amount": 5})
    assert (question.title, question.choices, question.choice_field) == ("T", ("yes", "no"), "answer")
    assert question.fields == (forms.Field("why", "why", "textarea", True),)
    assert question.data == {"Amount": 5} and question.problems == ()
    assert forms.check_answer(question, {"answer": "yes", "why": "because"}) == {}
    assert forms.check_answer(question, {"answer": "yes"}) == {"why": "This field is required."}
    assert forms.check_answer(question, [1]) == {"": "The answer must be an object."}
    assert forms.question_of({"value": 49}).data == {"value": 49}
    assert forms.question_of(49).data == 49 and not forms.question_of(49).has_rules
    assert forms.check_answer(forms.question_of({"value": 49}), "anything") == {}


def test_declaration_problems_are_listed():
    question = forms.question_of({"Choices": ["a", "a"], "ChoiceField": 3, "Fields": [
        {"name": "decision"}, {"type": "text"}, {"name": "c", "type": "choice"}, {"name": "d", "label": 4}]})
    assert question.problems == (
        "ChoiceField must be a non-empty string.", "Choices lists a value twice.",
        "Fields[0]: the name 'decision' is used twice.", "Fields[1] must be an object with a non-empty 'name'.",
        "Fields[2].options must be a list of non-empty strings.", "Fields[3]: label must be a string.")
    assert question.choices == ("a",) and [f.name for f in question.fields] == ["d"]


# -- the developer's pages: executions and one execution --------------------------------------

def rows_of(page: str, table: str) -> list[list[str]]:
    body = re.search(rf'<table id="{table}">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    return [[" ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split()) for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def links_of(page: str) -> list[str]:
    return [unescape(href) for href in re.findall(r'href="([^"]+)"', page)]


def test_the_list_page_shows_executions_newest_first_with_filters_and_pages(client):
    first = start(client)
    second = start(client, "incsquare", {"value": 2})
    done = as_json(client.http.post(f"/continuations/{waiting_of(second)['id']}", headers=JSON_BODY, body="{}"))
    assert done["status"] == "SUCCEEDED"
    third = start(client)
    response, page = get_page(client, "/executions")
    assert (response.status_code, eyebrow(page), h1(page)) == (200, "Executions", "Executions")
    rows = rows_of(page, "executions")
    assert [row[0] for row in rows] == [third["executionId"], second["executionId"], first["executionId"]]
    assert [row[1:3] for row in rows] == [["approval", "SUSPENDED"], ["incsquare", "SUCCEEDED"],
                                          ["approval", "SUSPENDED"]]
    assert rows[1][4] and not rows[0][4]  # ended, and not yet
    assert f"http://localhost/executions/{third['executionId']}" in links_of(page)
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")

    _, filtered = get_page(client, "/executions?stateMachine=approval&status=SUSPENDED&limit=1")
    assert [row[0] for row in rows_of(filtered, "executions")] == [third["executionId"]]
    assert '<option value="approval" selected>' in filtered and '<option value="SUSPENDED" selected>' in filtered
    [next_link] = [link for link in links_of(filtered) if "nextToken=" in link]
    query = parse_qs(urlsplit(next_link).query)
    assert (query["stateMachine"], query["status"]) == (["approval"], ["SUSPENDED"])
    _, following = get_page(client, path_of(next_link))
    assert [row[0] for row in rows_of(following, "executions")] == [first["executionId"]]
    assert not [link for link in links_of(following) if "nextToken=" in link]
    _, none = get_page(client, "/executions?status=FAILED")
    assert "No execution fits these filters." in visible_text(none)


def test_the_execution_page_shows_its_questions_history_and_diagram(client):
    document = start(client)
    waiting = waiting_of(document)
    response, page = get_page(client, f"/executions/{document['executionId']}")
    assert (response.status_code, eyebrow(page), h1(page)) == (200, "Execution", document["executionId"])
    words = visible_text(page)
    assert "SUSPENDED It now waits at: AskByEmail." in words
    assert "Approve laptop for ann? at “AskByEmail”" in words
    assert waiting["url"] in links_of(page)  # the question's own page
    assert "http://localhost/executions" in links_of(page)
    history = rows_of(page, "history")
    assert [row[1] for row in history] == [e["type"] for e in execution(client, document)["history"]]
    assert ["2", "StateEntered", "PrepareRequest"] == history[1][:3]
    chart = unescape(re.search(r'<pre class="mermaid" id="diagram">(.*?)</pre>', page, re.S).group(1))
    ask, prepare = (re.search(rf'(n\d+)\["{name}"\]', chart).group(1) for name in ("AskByEmail", "PrepareRequest"))
    marked = {cls: nodes.split(",") for nodes, cls in re.findall(r"^\s*class (\S+) (\w+)$", chart, re.M)}
    assert marked["waiting"] == [ask] and prepare in marked["visited"]
    _, question = get_page(client, path_of(waiting["url"]))
    assert h1(question) == "Approve laptop for ann?"

    post_form(client, path_of(waiting["url"]), {"decision": "approve"})
    _, ended = get_page(client, f"/executions/{document['executionId']}")
    assert "SUCCEEDED The workflow has finished." in visible_text(ended)
    assert "Nothing waits for an answer." in visible_text(ended)
    assert waiting["url"] not in links_of(ended)


def test_a_child_execution_is_linked_from_its_parent(client):
    parent = start(client, "purchase", {"item": "chair", "requester": "ria", "reason": "broken"})
    [waiting] = parent["continuations"]
    child = waiting["detail"]["executionId"]
    _, page = get_page(client, f"/executions/{parent['executionId']}")
    assert f"http://localhost/executions/{child}" in links_of(page)
    assert "Open the child execution" in visible_text(page)
    _, child_page = get_page(client, f"/executions/{child}")
    assert "Approve chair for ria?" in visible_text(child_page)


def test_the_developer_pages_escape_what_executions_hold(client):
    document = start(client, input={"item": EVIL, "requester": EVIL, "reason": EVIL})
    for path in ("/executions", f"/executions/{document['executionId']}"):
        _, page = get_page(client, path)
        assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;" in page


@pytest.mark.parametrize("path,status", [("/executions/no-such-execution", 404), ("/executions?limit=0", 400),
                                         ("/executions?status=<b>", 400), ("/executions?color=red", 400)])
def test_the_developer_pages_explain_errors_as_pages(client, path, status):
    response, page = get_page(client, path)
    assert response.status_code == status
    assert eyebrow(page) == "Something went wrong" and "<b>" not in page
    response = client.http.get(path)
    assert (response.status_code, response.headers["Content-Type"]) == (status, "application/json")
