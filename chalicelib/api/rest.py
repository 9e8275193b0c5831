"""The REST routes' handlers: parse requests, call the service, shape JSON responses.

``app.py`` only declares routes and calls the functions here.
"""
from __future__ import annotations

import json
from typing import Any

from chalice import Response

from ..approvals import diagram, forms, links, views
from ..asl import validate
from ..config import settings
from ..service import FINISHED, STATUSES, Service, ServiceError, answer_digest, catalog, events
from .http import (JSON_NUMBERS_ONLY, browser_endpoint, endpoint, error_response, is_form, page_endpoint,
                   parse_json, read_form, read_json, require_object, wants_html)
from .runtime import make_service


# -- executions ---------------------------------------------------------------------------

@endpoint
def start_execution(request) -> tuple[int, dict]:
    config = settings()
    body = require_object(read_json(request, config))
    unknown = set(body) - {"stateMachine", "definition", "input", "name"}
    if unknown:
        raise ServiceError(400, "InvalidRequest", f"Unknown fields: {', '.join(sorted(unknown))}.")
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= 80):
        raise ServiceError(400, "InvalidRequest", "'name' must be a string of 1 to 80 characters.")
    service = make_service(request)
    definition, machine, trusted = definition_from(body, service)
    document = service.start(definition, body.get("input", {}), state_machine=machine, trusted=trusted, name=name)
    if document.get("alreadyExisted"):
        return 200, document
    return (200 if document["status"] in FINISHED else 202 if document["status"] == "RUNNING" else 200), document


def definition_from(body: dict, service: Service) -> tuple[Any, str | None, bool]:
    """(definition, state machine name, trusted) from a request body: a shipped or registered
    state machine's, or the inline definition (untrusted)."""
    has_name, has_inline = "stateMachine" in body, "definition" in body
    if has_name == has_inline:
        raise ServiceError(400, "InvalidRequest", "Give exactly one of 'stateMachine' or 'definition'.")
    if has_name:
        name = body["stateMachine"]
        if not isinstance(name, str):
            raise ServiceError(400, "InvalidRequest", "'stateMachine' must be a string.")
        found = service.machines.definition(name.removesuffix(".json"))
        if found is None:
            raise ServiceError(404, "StateMachineNotFound", f"There is no state machine named {name!r}.",
                               available=catalog.names())
        text, trusted = found
        return text, name.removesuffix(".json"), trusted
    definition = body["definition"]
    if not isinstance(definition, (dict, str)):
        raise ServiceError(400, "InvalidRequest", "'definition' must be an ASL object (or its JSON text).")
    return definition, None, False


LIST_PARAMETERS = ("stateMachine", "status", "limit", "nextToken")


def list_query(request) -> dict:
    """The filters and page of ``GET /executions?stateMachine=&status=&limit=&nextToken=``.

    An empty parameter is no filter (a form sends its empty fields); anything unknown is 400.
    """
    params = request.query_params or {}
    unknown = set(params) - set(LIST_PARAMETERS)
    if unknown:
        raise ServiceError(400, "InvalidRequest", f"Unknown parameters: {', '.join(sorted(unknown))}; "
                           f"the list takes {', '.join(LIST_PARAMETERS)}.")
    given = {name: params.get(name) or None for name in LIST_PARAMETERS}
    return {"state_machine": given["stateMachine"], "status": given["status"],
            "limit": _whole_number(params, "limit"), "next_token": given["nextToken"]}


def _whole_number(params, name: str) -> int | None:
    value = params.get(name)
    if value is not None and not (value.isascii() and value.isdigit() and len(value) <= 6):
        raise ServiceError(400, "InvalidRequest", f"'{name}' must be a whole number from 1 to 1000.")
    return None if value is None else int(value)


DESCRIBE_PARAMETERS = ("limit", "nextToken", "historyLimit", "historyToken")


def describe_query(request) -> dict:
    """The pages of ``GET /executions/{id}?limit=&nextToken=&historyLimit=&historyToken=``."""
    params = request.query_params or {}
    unknown = set(params) - set(DESCRIBE_PARAMETERS)
    if unknown:
        raise ServiceError(400, "InvalidRequest", f"Unknown parameters: {', '.join(sorted(unknown))}; "
                           f"an execution takes {', '.join(DESCRIBE_PARAMETERS)}.")
    return {"limit": _whole_number(params, "limit"), "next_token": params.get("nextToken") or None,
            "history_limit": _whole_number(params, "historyLimit"),
            "history_token": params.get("historyToken") or None}


@browser_endpoint
def list_executions(request) -> dict | views.Page:
    """Executions newest first, filtered by state machine and status, a page at a time; for a browser,
    the page listing them (each linked to its own page)."""
    service = make_service(request)
    query = list_query(request)
    listing = service.list_executions(**query)
    if not wants_html(request):
        return listing
    machines = catalog.names()
    if query["state_machine"] and query["state_machine"] not in machines:
        machines.append(query["state_machine"])
    return views.executions_page(service, listing, state_machine=query["state_machine"], status=query["status"],
                                 machines=machines, statuses=STATUSES)


@browser_endpoint
def get_execution(request, execution_id: str) -> dict | views.Page:
    """The execution document and its history, each a page at a time; for a browser, its page."""
    service = make_service(request)
    document = service.describe(execution_id, **describe_query(request))
    return views.execution_page(service, document) if wants_html(request) else document


@endpoint
def stop_execution(request, execution_id: str) -> dict:
    return make_service(request).abort(execution_id)


@endpoint
def redrive_execution(request, execution_id: str) -> tuple[int, dict]:
    """Run a FAILED, TIMED_OUT or ABORTED execution again from where it stopped; an optional body
    ``{"clientToken": "..."}`` makes a retried request answer the same redrive."""
    body = read_json(request, settings(), required=False)
    body = {} if body is None else require_object(body)
    unknown = set(body) - {"clientToken"}
    if unknown:
        raise ServiceError(400, "InvalidRequest", f"Unknown fields: {', '.join(sorted(unknown))}.")
    token = body.get("clientToken")
    if token is not None and (not isinstance(token, str) or not 1 <= len(token) <= 64):
        raise ServiceError(400, "InvalidRequest", "'clientToken' must be a string of 1 to 64 characters.")
    document = make_service(request).redrive(execution_id, client_token=token)
    return (202 if document["status"] == "RUNNING" else 200), document


# -- events -------------------------------------------------------------------------------

MAX_EVENTS = 100


def event_entries(body: Any) -> list:
    """The events of ``POST /events``: one event, a list of them, or PutEvents' ``{"Entries": [...]}``."""
    if isinstance(body, dict) and "Entries" in body:
        if set(body) != {"Entries"}:
            raise ServiceError(400, "InvalidRequest", "A PutEvents body has only 'Entries'.")
        if not isinstance(body["Entries"], list):
            raise ServiceError(400, "InvalidRequest", "'Entries' must be a list.")
        entries = [events.from_put_events(entry, lambda text: json.loads(text, **JSON_NUMBERS_ONLY))
                   for entry in body["Entries"]]
    elif isinstance(body, list):
        entries = body
    elif isinstance(body, dict):
        entries = [body]
    else:
        raise ServiceError(400, "InvalidRequest", "Send an event, a list of events or {\"Entries\": [...]}.")
    if not 1 <= len(entries) <= MAX_EVENTS:
        raise ServiceError(400, "InvalidRequest", f"Send 1 to {MAX_EVENTS} events at a time.")
    return entries


@endpoint
def publish_events(request) -> dict:
    """Start, resume or buffer per event (see ``service/events.py``); what each event did."""
    entries = event_entries(read_json(request, settings()))
    results = make_service(request).publish(entries)
    return {"failedEntryCount": sum("error" in result for result in results), "entries": results}


# -- continuations ------------------------------------------------------------------------

@page_endpoint
def redeem_continuation(request, continuation: str) -> dict | views.Page:
    """Answer with JSON (merged in), or with the question's HTML form (checked and typed first)."""
    return _answer(request, continuation)


def _answer(request, continuation: str, choice: str | None = None) -> dict | views.Page:
    config = settings()
    service = make_service(request)
    info = None
    if is_form(request):
        payload, info = views.read_answer(service, continuation, read_form(request, config), choice)
    else:
        body = read_json(request, config, required=False)
        payload = {} if body is None else require_object(body, "The answer")
        if choice is not None:
            payload = {**payload, _choice_field(service, continuation): choice}
    answered = service.redeem(continuation, result=payload, digest=_digest(request, "result", choice))
    if not wants_html(request):
        return answered
    if info is None:
        info = service.describe_continuation(continuation)
    return views.outcome_page(service, continuation, info, payload, answered)


def _digest(request, kind: str, choice: str | None = None) -> str:
    """What identifies an answer on retries: the request's exact body (and a decision link's choice)."""
    body = request.raw_body or b""
    if choice is not None:
        body += b"\0choice=" + choice.encode()
    return answer_digest(kind, body)


def _choice_field(service: Service, continuation: str) -> str:
    return forms.question_of(service.describe_continuation(continuation)["parameters"]).choice_field


def _signed_choice(request, continuation: str) -> str:
    """The choice a decision link carries, if its signature holds (else 403)."""
    params = request.query_params or {}
    choice = params.get("choice") or ""
    if not choice or not links.verify(settings().signing_secret, continuation, choice, params.get("sig")):
        raise ServiceError(403, "InvalidSignature",
                           "This decision link is not valid: it was changed or cut short.")
    return choice


@page_endpoint
def show_decision(request, continuation: str) -> dict | views.Page:
    """A decision link opened: a page with one button (browsers) or what it would send. Changes nothing."""
    choice = _signed_choice(request, continuation)
    service = make_service(request)
    info = service.describe_continuation(continuation)
    if not wants_html(request):
        field = forms.question_of(info["parameters"]).choice_field
        return {**info, "decision": {field: choice}}
    if info["status"] != "waiting":
        return views.status_page(service, info)
    return views.confirm_page(service, info, choice)


@page_endpoint
def decide(request, continuation: str) -> dict | views.Page:
    """A decision link's button pressed: answer with its choice (and the form's other fields)."""
    return _answer(request, continuation, _signed_choice(request, continuation))


@endpoint
def fail_continuation(request, continuation: str) -> dict:
    config = settings()
    body = require_object(read_json(request, config))
    error, cause = body.get("error"), body.get("cause")
    if not isinstance(error, str) or not error:
        raise ServiceError(400, "InvalidRequest", "'error' must be a non-empty string.")
    if cause is not None and not isinstance(cause, str):
        raise ServiceError(400, "InvalidRequest", "'cause' must be a string.")
    return make_service(request).redeem(continuation, error=error, cause=cause, digest=_digest(request, "failure"))


@endpoint
def heartbeat_continuation(request, continuation: str) -> dict:
    read_json(request, settings(), required=False)  # no fields, but the same size and JSON rules
    return make_service(request).heartbeat(continuation)


@page_endpoint
def describe_continuation(request, continuation: str) -> dict | views.Page:
    """What a continuation waits for: JSON, or for a browser the question's page. Changes nothing."""
    service = make_service(request)
    info = service.describe_continuation(continuation)
    if not wants_html(request):
        return info
    if info["status"] != "waiting":
        return views.status_page(service, info)
    return views.question_page(service, info)


# -- state machines -----------------------------------------------------------------------

@endpoint
def list_state_machines(request) -> dict:
    return {"stateMachines": [{"name": name} for name in catalog.names()]}


@endpoint
def get_state_machine(request, name: str) -> dict:
    definition = catalog.load(name)
    if definition is None:
        raise ServiceError(404, "StateMachineNotFound", f"There is no state machine named {name!r}.")
    return {"name": name, "definition": definition}


def state_machine_diagram(request, name: str) -> Response:
    """The definition as a Mermaid flowchart (text/plain); ``?highlight=State`` marks states."""
    definition = catalog.load(name)
    if definition is None:
        return error_response(ServiceError(404, "StateMachineNotFound", f"There is no state machine named {name!r}."))
    params = request.query_params or {}
    marked = [s for s in (params.get("highlight") or "").split(",") if s]
    return Response(body=diagram.mermaid(definition, waiting=marked), status_code=200,
                    headers={"Content-Type": "text/plain; charset=utf-8"})


@endpoint
def validate_state_machine(request) -> dict:
    body = read_json(request, settings())
    definition = body.get("definition", body) if isinstance(body, dict) else body
    problems = [p.to_json() for p in validate(definition)]
    return {"valid": not problems, "problems": problems}


# -- the prototype's calls: POST /?input=6 (definition in the body), POST /?continuation=K --

@endpoint
def prototype(request) -> dict:
    params = request.query_params or {}
    service = make_service(request)
    config = settings()
    if "continuation" in params:
        body = read_json(request, config, required=False)
        payload = {} if body is None else require_object(body, "The answer")
        return _flatten(service.redeem(params["continuation"], result=payload, digest=_digest(request, "result")))
    definition = require_object(read_json(request, config), "The definition")
    raw_input = params.get("input", "{}")
    try:
        value = parse_json(raw_input, "'input'")
    except ValueError:
        raise ServiceError(400, "InvalidRequest", "'input' must be a number or JSON.") from None
    payload = value if isinstance(value, dict) else {"value": value}
    return _flatten(service.start(definition, payload, state_machine=None, trusted=False))


def _flatten(document: dict) -> dict:
    """The prototype's answer: the current values at the top level, plus CONTINUATION.

    A start (by the API key's caller) has the execution document, whose first open
    continuation is the CONTINUATION; a redemption (by a continuation's holder) has the
    holder's view, which names no other continuation: its values are the output, if shown.
    """
    values: Any = document.get("output")
    if document.get("continuations"):
        first = document["continuations"][0]
        values = first["parameters"]
        document = {**document, "CONTINUATION": first["id"]}
    if isinstance(values, dict):
        return {**values, **document}
    return document

