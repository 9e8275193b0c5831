"""The HTTP API as an OpenAPI 3.1 document, served at ``GET /openapi.json``.

Written by hand from what the handlers in ``rest.py`` really answer: every
status a route produces, with its body. ``tests/api/test_openapi.py`` checks
that it names exactly the routes ``app.py`` declares, that it is valid OpenAPI,
and runs generated (also malformed) requests against a real server to check
that every answer is one the document describes.

It is long because it is one document: the schemas and the paths that use them
read best side by side, and splitting them would only add imports between halves.
"""
from __future__ import annotations

import copy
import functools
from typing import Any

from ..service import STATUSES, catalog
from .stepfunctions import OPERATIONS as AWS_OPERATIONS

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
HTML = "text/html"
AWS_JSON = "application/x-amz-json-1.0"
EVENTS_JSON = "application/x-amz-json-1.1"  # EventBridge's protocol (PutEvents)


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


STRING = {"type": "string"}
TIMESTAMP = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object",
        "description": "Every 4xx/5xx the service itself answers with JSON.",
        "required": ["error", "message"],
        "additionalProperties": False,
        "properties": {
            "error": STRING,
            "message": STRING,
            "executionId": STRING,
            "problems": {"type": "array", "items": _ref("Problem")},
            "available": {"type": "array", "items": STRING,
                          "description": "With StateMachineNotFound: the names that exist."},
            "fieldErrors": {"type": "object", "additionalProperties": STRING,
                            "description": "With InvalidAnswer: a message per field (\"\" for the whole answer)."},
        },
    },
    "AwsError": {
        "type": "object",
        "description": "An error of the Step Functions API (X-Amz-Target), as AWS answers it; the code is also "
                       "in the x-amzn-ErrorType header.",
        "required": ["__type", "message"],
        "additionalProperties": False,
        "properties": {"__type": STRING, "message": STRING},
    },
    "UnsupportedMediaType": {
        "type": "object",
        "description": "Chalice's own answer to a Content-Type the route does not take (before any handler runs).",
        "required": ["Code", "Message"],
        "additionalProperties": False,
        "properties": {"Code": {"const": "UnsupportedMediaType"}, "Message": STRING},
    },
    "Problem": {
        "type": "object",
        "description": "One problem of a definition: the innermost state and field it is in, and what.",
        "required": ["state", "field", "message"],
        "additionalProperties": False,
        "properties": {
            "state": _nullable(STRING),
            "field": _nullable(STRING),
            "location": STRING,
            "message": STRING,
        },
    },
    "Continuation": {
        "type": "object",
        "description": "An open suspension point of an execution, answered through its ID.",
        "required": ["id", "state", "branch", "kind", "url", "expiresAt", "parameters"],
        "additionalProperties": False,
        "properties": {
            "id": STRING,
            "state": STRING,
            "branch": _nullable(STRING),
            "kind": {"type": "string", "description": "What waits: a Suspend task, a task token, a child execution."},
            "url": {"type": "string", "description": "The continuation's page (and its JSON at the same URL)."},
            "decisions": {"type": "object", "additionalProperties": STRING,
                          "description": "For a question with Choices: a signed decision link per choice."},
            "expiresAt": TIMESTAMP,
            "parameters": {"description": "What the task asks (its Parameters); any JSON value."},
            "detail": {"type": "object", "description": (
                "For a child execution: which one. For a task waiting for an event (kind event): waitsFor, what "
                "it waits for: correlationKey, pattern (null: any event of that key), answer (detail or event).")},
        },
    },
    "Timer": {
        "type": "object",
        "required": ["state", "branch", "purpose", "due"],
        "additionalProperties": False,
        "properties": {
            "state": STRING,
            "branch": _nullable(STRING),
            "purpose": {"type": "string", "description": "A Wait state, or a Retry interval."},
            "due": TIMESTAMP,
        },
    },
    "MapRun": {
        "type": "object",
        "required": ["mapRunArn", "state", "branch", "status", "counts"],
        "additionalProperties": False,
        "properties": {
            "mapRunArn": STRING,
            "state": STRING,
            "branch": _nullable(STRING),
            "status": {"enum": ["STARTING", "RUNNING", "SUCCEEDED", "FAILED", "ABORTED"]},
            "counts": {"type": "object", "description": (
                "Children by status: pending, running, succeeded, failed, timedOut, aborted, and total.")},
        },
    },
    "Execution": {
        "type": "object",
        "description": "The execution document.",
        "required": ["executionId", "name", "stateMachine", "status", "input", "startDate", "continuations",
                     "continuationsCount"],
        "properties": {
            "executionId": STRING,
            "name": STRING,
            "stateMachine": _nullable(STRING),
            "status": {"enum": list(STATUSES)},
            "input": {"description": "The execution's input; any JSON value."},
            "output": {"description": "With SUCCEEDED: the output; any JSON value."},
            "error": STRING,
            "cause": _nullable(STRING),
            "startDate": TIMESTAMP,
            "stopDate": TIMESTAMP,
            "continuations": {"type": "array", "items": _ref("Continuation"), "description": (
                "Its open continuations in branch order, at most a page (100 by default; the limit parameter "
                "of GET /executions/{id}).")},
            "continuationsCount": {"type": "integer", "minimum": 0,
                                   "description": "How many continuations are open, listed or not."},
            "continuationsNextToken": {**STRING, "description": (
                "When more are open than listed: pass as nextToken to GET /executions/{id} for the next page.")},
            "continuationsNext": {**STRING, "description": "The URL of that next page."},
            "timers": {"type": "array", "items": _ref("Timer")},
            "parent": {"type": "object", "description": "For a child execution: the parent and its waiting task."},
            "mapRun": {"type": "object", "description": (
                "For a child execution of a Distributed Map: its map run (runId) and its index in the run.")},
            "mapRuns": {"type": "array", "items": _ref("MapRun"), "description": (
                "The Distributed Maps it waits on: each map run's ARN and its children's counters.")},
            "redriveCount": {"type": "integer", "minimum": 1, "description": "How many times it was redriven."},
            "redriveDate": {**TIMESTAMP, "description": "When it was last redriven."},
            "alreadyExisted": {"type": "boolean", "description": (
                "On a start: true when an execution with this name, state machine and input already existed "
                "and this is it.")},
        },
        "additionalProperties": False,
    },
    "Answered": {
        "type": "object",
        "description": ("What the holder of a continuation is told after answering it: what became of the answer. "
                        "Never another continuation's ID or link, nor the execution's input or history."),
        "required": ["executionId", "status", "continuation", "state", "branch", "answered", "answeredAt",
                     "replay", "waitingAt"],
        "properties": {
            "executionId": STRING,
            "status": {"enum": list(STATUSES), "description": "The execution's status now."},
            "continuation": {"type": "string", "description": "This continuation's ID."},
            "state": _nullable(STRING),
            "branch": _nullable(STRING),
            "answered": {"enum": ["result", "failure"], "description": "Answered with a result, or failed."},
            "answeredAt": {**TIMESTAMP, "description": "When the answer was committed."},
            "replay": {"type": "boolean", "description": (
                "True when the continuation had already been redeemed with this same answer (byte for byte); "
                "nothing resumed again, this is the execution as it stands.")},
            "waitingAt": {"type": "array", "items": STRING,
                          "description": "The states the execution waits at now (names only)."},
            "output": {"description": "Once SUCCEEDED, unless the task marked it private: the output."},
            "error": STRING,
            "cause": _nullable(STRING),
            "outputPrivate": {"const": True, "description": (
                "The waiting task's Parameters said PrivateOutput: output, error and cause are not shown.")},
        },
        "additionalProperties": False,
    },
    "ExecutionSummary": {
        "type": "object",
        "description": "One execution in a list: no input, output or continuations (GET /executions/{id} has them).",
        "required": ["executionId", "name", "stateMachine", "status", "startDate", "stopDate"],
        "additionalProperties": False,
        "properties": {
            "executionId": STRING,
            "name": STRING,
            "stateMachine": {**_nullable(STRING), "description": "Null for an inline definition."},
            "status": {"enum": list(STATUSES)},
            "startDate": TIMESTAMP,
            "stopDate": {**_nullable(TIMESTAMP), "description": "Null while it has not ended."},
        },
    },
    "ExecutionList": {
        "type": "object",
        "required": ["executions", "nextToken"],
        "additionalProperties": False,
        "properties": {
            "executions": {"type": "array", "items": _ref("ExecutionSummary"),
                           "description": "Newest first (start time, then ID)."},
            "nextToken": {**_nullable(STRING),
                          "description": "Pass as nextToken for the next page; null on the last page."},
        },
    },
    "ContinuationInfo": {
        "type": "object",
        "description": "What a continuation waits for, and whether it still does.",
        "required": ["id", "status", "executionId", "executionStatus", "state", "branch", "kind",
                     "parameters", "expiresAt"],
        "properties": {
            "id": STRING,
            "status": {"enum": ["waiting", "redeemed", "closed", "expired"]},
            "executionId": STRING,
            "executionStatus": {"enum": [*STATUSES, "EXPIRED"]},
            "state": _nullable(STRING),
            "branch": _nullable(STRING),
            "kind": _nullable(STRING),
            "parameters": {"description": "What the task asks; any JSON value."},
            "expiresAt": TIMESTAMP,
            "url": {"type": "string", "description": "While waiting: the continuation's page."},
            "decisions": {"type": "object", "additionalProperties": STRING},
            "answer": {"type": "object", "description": "Once redeemed: the answer and when (at)."},
            "reason": {"type": "string", "description": "Once closed: why (aborted, timeout, ...)."},
        },
        "additionalProperties": False,
    },
    "PrototypeResult": {
        "type": "object",
        "description": ("The prototype's answer. A start: the execution document with the values it waits with "
                        "(or its output, when that is an object) at the top level, and CONTINUATION while it "
                        "waits. A redemption: the holder's view (Answered) with the output, when shown and an "
                        "object, at the top level."),
        "required": ["executionId", "status"],
        "properties": {
            "executionId": STRING,
            "status": {"enum": list(STATUSES)},
            "continuations": {"type": "array", "items": _ref("Continuation")},
            "CONTINUATION": STRING,
            "continuation": STRING,
            "replay": {"type": "boolean"},
        },
    },
    "StartRequest": {
        "type": "object",
        "description": "Exactly one of stateMachine and definition.",
        "oneOf": [{"required": ["stateMachine"]}, {"required": ["definition"]}],
        "additionalProperties": False,
        "properties": {
            "stateMachine": {"type": "string", "description": "A name from GET /state-machines."},
            "definition": {"type": ["object", "string"], "description": "An ASL definition (or its JSON text)."},
            "input": {"description": "The execution's input (default {}); any JSON value."},
            "name": {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 80}, {"type": "null"}],
                     "description": "The execution's name (default: its ID); null is no name."},
        },
        "examples": [{"stateMachine": "incsquare", "input": {"value": 6}}],
    },
    "Answer": {
        "type": ["object", "null"],
        "description": ("The answer: merged into the waiting state's input (or its result with a ResultPath). "
                        "It must fit the question's Choices and Fields when it has them. null, like no body, "
                        "is the empty answer."),
    },
    "FailureRequest": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "minLength": 1}, "cause": _nullable(STRING)},
    },
    "ValidationResult": {
        "type": "object",
        "required": ["valid", "problems"],
        "additionalProperties": False,
        "properties": {"valid": {"type": "boolean"}, "problems": {"type": "array", "items": _ref("Problem")}},
    },
    "StateMachineList": {
        "type": "object",
        "required": ["stateMachines"],
        "additionalProperties": False,
        "properties": {"stateMachines": {"type": "array", "items": {
            "type": "object", "required": ["name"], "additionalProperties": False, "properties": {"name": STRING}}}},
    },
    "StateMachine": {
        "type": "object",
        "required": ["name", "definition"],
        "additionalProperties": False,
        "properties": {"name": STRING, "definition": {"type": "object"}},
    },
}


def _extend(base: str, description: str, **properties: dict) -> dict:
    """``base``'s schema with more required properties (still closed to any others)."""
    schema = copy.deepcopy(SCHEMAS[base])
    schema["description"] = description
    schema["required"] = [*schema["required"], *properties]
    schema["properties"].update(properties)
    return schema


SCHEMAS["ExecutionWithHistory"] = _extend("Execution", "The execution document plus its history.", history={
    "type": "array", "description": "Its history events, oldest first: a page (historyLimit, historyToken).",
    "items": {"type": "object", "required": ["type", "timestamp"],
              "properties": {"type": STRING, "timestamp": TIMESTAMP, "state": STRING}}})
SCHEMAS["ExecutionWithHistory"]["properties"]["historyNextToken"] = {**STRING, "description": (
    "When more events follow this page: pass as historyToken for the next one.")}
SCHEMAS["Heartbeat"] = _extend("ContinuationInfo", "The continuation and its new heartbeat deadline.", heartbeatAt={
    "anyOf": [TIMESTAMP, {"type": "null"}], "description": "Null when the task has no HeartbeatSeconds."})
SCHEMAS["DecisionPreview"] = _extend("ContinuationInfo", "What a decision link would answer.", decision={
    "type": "object", "additionalProperties": STRING, "description": "What pressing the link's button sends."})

_TEXT = {"type": "string", "minLength": 1, "maxLength": 256}
SCHEMAS["Event"] = {
    "type": "object",
    "description": ("An event in EventBridge's envelope. Without id one is made (and duplicates cannot be told); "
                    "its detail.id is the correlation value waiting tasks are matched by."),
    "required": ["source", "detail-type"],
    "additionalProperties": False,
    "properties": {
        "id": _TEXT, "source": _TEXT, "detail-type": _TEXT, "time": _TEXT, "account": _TEXT, "region": _TEXT,
        "version": _TEXT, "detail": {"type": "object"}, "resources": {"type": "array", "items": STRING},
    },
}
SCHEMAS["PutEventsEntry"] = {
    "type": "object",
    "description": "An entry of EventBridge's PutEvents; Detail is a JSON object as text.",
    "required": ["Source", "DetailType", "Detail"],
    "additionalProperties": False,
    "properties": {"Source": _TEXT, "DetailType": _TEXT, "Detail": STRING, "Time": _TEXT,
                   "Resources": {"type": "array", "items": STRING}, "EventBusName": STRING, "TraceHeader": STRING},
}
SCHEMAS["EventsRequest"] = {"oneOf": [
    _ref("Event"),
    {"type": "array", "items": _ref("Event"), "minItems": 1, "maxItems": 100},
    {"type": "object", "required": ["Entries"], "additionalProperties": False,
     "properties": {"Entries": {"type": "array", "items": _ref("PutEventsEntry"), "minItems": 1, "maxItems": 100}}},
]}
SCHEMAS["EventOutcome"] = {
    "type": "object",
    "description": "What one event did, or its error (error, message) while the others went on.",
    "required": ["eventId"],
    "additionalProperties": False,
    "properties": {
        "eventId": STRING,
        "started": {"type": "array", "description": "The executions its start rules started (or had started).",
                    "items": {"type": "object", "required": ["executionId", "stateMachine", "status"],
                              "properties": {"executionId": STRING, "stateMachine": STRING,
                                             "status": {"enum": list(STATUSES)}, "alreadyExisted": {"const": True}}}},
        "resumed": {"type": "array", "description": "The waiting tasks it answered.",
                    "items": {"type": "object", "required": ["executionId", "point"],
                              "properties": {"executionId": STRING, "point": STRING, "state": STRING}}},
        "buffered": {"type": "boolean", "description": "Kept until a task waiting for it opens."},
        "duplicate": {"type": "boolean", "description": "Its id came before: nothing was delivered again."},
        "error": {"type": "string", "description": (
            "Why it was not delivered: EventBufferFull (its correlation key keeps 1,000 events no task has "
            "taken), EventBusy (its key or task changed too often: send it again), InvalidStartRules (a "
            "rules file cannot be used), or an error of starting an execution.")},
        "message": STRING,
    },
}
SCHEMAS["EventsResult"] = {
    "type": "object", "required": ["failedEntryCount", "entries"], "additionalProperties": False,
    "properties": {"failedEntryCount": {"type": "integer", "minimum": 0},
                   "entries": {"type": "array", "items": _ref("EventOutcome")}},
}

# -- responses -------------------------------------------------------------------------------

ERROR_TEXT = {
    400: "The request is malformed or wrong.", 403: "Refused.", 404: "Not found.",
    409: "Conflict.", 410: "No longer possible.", 413: "The request body is too large (MAX_BODY_BYTES).",
    415: "The Content-Type header (on any request, with a body or not) is not one this route takes.",
    422: "The answer does not fit the question.",
    500: "The stage's settings are unsafe: API_KEY without PUBLIC_BASE_URL or TRUSTED_HOSTS.",
    503: "The store is unreachable (StoreUnavailable), or the execution changes too often (Busy); try again.",
}


def _error_schema(codes: tuple[str, ...]) -> dict:
    return {"allOf": [_ref("Error"), {"properties": {"error": {"enum": list(codes)}}}]}


def error(status: int, *codes: str, html: bool = False) -> tuple[int, dict]:
    """A 4xx/5xx answered with the error body, ``error`` one of ``codes`` (and a page for browsers)."""
    content: dict[str, Any] = {JSON: {"schema": _error_schema(codes)}}
    if html:
        content[HTML] = {"schema": STRING}
    return status, {"description": f"{ERROR_TEXT[status]} Error: {', '.join(codes)}.", "content": content}


def retry_after(entry: tuple[int, dict], when: str) -> tuple[int, dict]:
    """``entry`` with a ``Retry-After`` header (seconds), sent ``when``."""
    status, response = entry
    return status, {**response, "headers": {"Retry-After": {
        "description": f"Seconds to wait before trying again; sent {when}.",
        "schema": {"type": "integer", "minimum": 1}}}}


#: A redemption refused: answered before with another answer, or held by another attempt's lease.
BUSY_WHEN = "with ContinuationBusy: until the other attempt's lease ends"
REDEEMED = retry_after(error(409, "ContinuationAlreadyRedeemed", "ContinuationBusy", html=True), BUSY_WHEN)


def unsupported_media_type() -> tuple[int, dict]:
    return 415, {"description": ERROR_TEXT[415], "content": {JSON: {"schema": _ref("UnsupportedMediaType")}}}


def ok(schema: dict, description: str, status: int = 200, *, html: bool = False) -> tuple[int, dict]:
    content: dict[str, Any] = {JSON: {"schema": schema}}
    if html:
        content[HTML] = {"schema": STRING}
    return status, {"description": description, "content": content}


def aws(status: int, schema: dict, description: str) -> tuple[int, dict]:
    """An answer of the Step Functions API (``application/x-amz-json-1.0``)."""
    return status, {"description": description, "content": {AWS_JSON: {"schema": schema}}}


def aws_error(status: int, description: str) -> tuple[int, dict]:
    return aws(status, _ref("AwsError"), description)


def events_api(status: int, schema: dict, description: str) -> tuple[int, dict]:
    """An answer of EventBridge's PutEvents (``application/x-amz-json-1.1``)."""
    return status, {"description": description, "content": {EVENTS_JSON: {"schema": schema}}}


def page_only(status: int, description: str) -> tuple[int, dict]:
    """A status only browsers get: an HTML page."""
    return status, {"description": description, "content": {HTML: {"schema": STRING}}}


def _error_codes(schema: dict) -> list[str] | None:
    """The codes an error body of :func:`error` may carry, or None for another schema."""
    parts = schema.get("allOf", [])
    if len(parts) == 2 and parts[0] == _ref("Error"):
        return parts[1]["properties"]["error"]["enum"]
    return None


def at_the_door() -> list[tuple[int, dict]]:
    """What every route may answer before its handler runs (``admission``): a header that is not HTTP's,
    an untrusted host (with TRUSTED_HOSTS), a stage whose settings are unsafe."""
    return [error(400, "InvalidHeader", "UntrustedHost"), error(500, "ConfigurationError")]


def _merge(*entries: tuple[int, dict]) -> dict[str, dict]:
    """Responses by status; two entries for one status merge their content (JSON and a page), and
    two error bodies their codes.

    Every route can answer 415: Chalice checks the Content-Type header, also on a GET, before the handler
    runs; and every route what :func:`at_the_door` lists.
    """
    merged: dict[str, dict] = {}
    for status, response in (*entries, *at_the_door(), unsupported_media_type()):
        if str(status) in merged:
            existing = merged[str(status)]
            existing["description"] += " " + response["description"]
            old, new = existing["content"].get(JSON), response["content"].get(JSON)
            codes = _error_codes(old["schema"]) if old and new else None
            more = _error_codes(new["schema"]) if old and new else None
            if codes is not None and more is not None:
                codes.extend(code for code in more if code not in codes)
                response = {**response, "content": {k: v for k, v in response["content"].items() if k != JSON}}
            existing["content"].update(response["content"])
            existing.setdefault("headers", {}).update(response.get("headers", {}))
        else:
            merged[str(status)] = copy.deepcopy(response)
    return merged


STORE = error(503, "StoreUnavailable", "Busy")
STORE_PAGE = error(503, "StoreUnavailable", "Busy", html=True)
TOO_LARGE = error(413, "PayloadTooLarge")
API_KEY = error(403, "Forbidden")

# -- parameters and bodies ---------------------------------------------------------------------


def path_parameter(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1}}


def query_parameter(name: str, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": STRING}


EXECUTION_ID = path_parameter("execution_id", "The execution's ID.")
CONTINUATION = path_parameter("continuation", "The continuation ID.")
STATE_MACHINE = path_parameter("name", "A state machine's name (with or without .json).")
DECISION_QUERY = [
    query_parameter("choice", "The choice the link decides."),
    query_parameter("sig", "The link's signature over the continuation ID and the choice."),
]
LIST_QUERY = [
    {"name": "stateMachine", "in": "query", "required": False, "description": "Only this state machine's.",
     "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{0,100}$"}},
    {"name": "status", "in": "query", "required": False, "description": "Only executions with this status.",
     "schema": {"enum": [*STATUSES, ""]}},
    {"name": "limit", "in": "query", "required": False, "description": "At most this many (default 50).",
     "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
    {"name": "nextToken", "in": "query", "required": False, "schema": STRING,
     "description": "The nextToken of the page before (opaque)."},
]
PAGE_NOTE = (" Browsers (an Accept header naming text/html) get the developer's HTML page instead: the list with "
             "its filters, or the execution with its open questions, history and diagram; errors are pages too.")
DESCRIBE_QUERY = [
    {"name": "limit", "in": "query", "required": False,
     "description": "At most this many open continuations (default 100).",
     "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
    {"name": "nextToken", "in": "query", "required": False, "schema": STRING,
     "description": "The continuationsNextToken of the page before (opaque)."},
    {"name": "historyLimit", "in": "query", "required": False,
     "description": "At most this many history events (default: all it keeps, HISTORY_LIMIT).",
     "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
    {"name": "historyToken", "in": "query", "required": False, "schema": STRING,
     "description": "The historyNextToken of the page before (opaque)."},
]
ACCEPT_NOTE = (" Browsers (an Accept header naming text/html) get HTML pages instead of JSON, errors about the "
               "continuation included.")


def json_body(schema: dict, *, required: bool = True, form: bool = False) -> dict:
    content: dict[str, Any] = {JSON: {"schema": schema}}
    if form:
        content[FORM] = {"schema": {"type": "object", "additionalProperties": STRING,
                                    "description": "An HTML form: the question's fields (and its choice field)."}}
    return {"required": required, "content": content}


ANSWER_ERRORS = (
    error(400, "MalformedJSON", "InvalidRequest", html=True),
    error(404, "ContinuationNotFound", html=True),
    REDEEMED,
    error(410, "ContinuationExpired", "ExecutionExpired", html=True),
    error(413, "PayloadTooLarge", html=True),
    error(422, "InvalidAnswer", html=True),
    STORE_PAGE,
)

# -- operations --------------------------------------------------------------------------------

OPERATIONS: dict[str, dict[str, dict]] = {
    "/executions": {
        "post": {
            "operationId": "start_execution",
            "summary": "Start an execution",
            "description": ("Runs until the execution ends, suspends or uses up the request's budget "
                            "(then 202: it goes on in the background)."),
            "security": [{}, {"apiKey": []}],
            "requestBody": json_body(_ref("StartRequest")),
            "responses": _merge(
                ok(_ref("Execution"), "The execution ended or suspended."),
                ok(_ref("Execution"), "The execution goes on in the background (RUNNING).", 202),
                error(400, "MalformedJSON", "InvalidRequest", "InvalidDefinition"),
                error(403, "ResourceNotAllowed", "Forbidden"),
                error(404, "StateMachineNotFound"),
                error(409, "ExecutionAlreadyExists", "ExecutionStarting"),
                TOO_LARGE, STORE,
            ),
        },
        "get": {
            "operationId": "list_executions",
            "summary": "List executions, newest first, filtered by state machine and status, a page at a time",
            "description": ("Read from an index: a page costs what it holds, not how many executions are stored. "
                            "An empty filter parameter is no filter; other parameters are refused." + PAGE_NOTE),
            "security": [{}, {"apiKey": []}],
            "parameters": LIST_QUERY,
            "responses": _merge(ok(_ref("ExecutionList"), "A page of executions.", html=True),
                                error(400, "InvalidRequest", html=True), API_KEY, STORE_PAGE),
        },
    },
    "/events": {
        "post": {
            "operationId": "publish_events",
            "summary": "Publish events: start executions by rule, answer the tasks waiting for them, or keep them",
            "description": ("One event, a list of up to 100, or PutEvents' {\"Entries\": [...]}. An event matching a "
                            "start rule (state_machines/rules/) starts that state machine with the event as input, "
                            "once per event id; it answers every task waiting for its detail.id that takes it; an "
                            "event that did neither is buffered (EVENT_BUFFER_SECONDS) for the first such task to "
                            "open, in arrival order. An id seen before is delivered once."),
            "security": [{}, {"apiKey": []}],
            "requestBody": json_body(_ref("EventsRequest")),
            "responses": _merge(ok(_ref("EventsResult"), "What each event did."),
                                error(400, "MalformedJSON", "InvalidRequest"), API_KEY, TOO_LARGE, STORE),
        },
    },
    "/executions/{execution_id}": {
        "parameters": [EXECUTION_ID],
        "get": {
            "operationId": "get_execution",
            "summary": "The execution document and its history (by ID, or by the name it was started with)",
            "description": PAGE_NOTE.strip(),
            "security": [{}, {"apiKey": []}],
            "parameters": DESCRIBE_QUERY,
            "responses": _merge(ok(_ref("ExecutionWithHistory"), "The execution.", html=True), API_KEY,
                                error(400, "InvalidRequest", html=True), error(404, "ExecutionNotFound", html=True),
                                STORE_PAGE),
        },
        "delete": {
            "operationId": "stop_execution",
            "summary": "Stop an execution (ABORTED); its continuations stop working",
            "security": [{}, {"apiKey": []}],
            "responses": _merge(ok(_ref("Execution"), "The execution, ABORTED."), API_KEY,
                                error(404, "ExecutionNotFound"), error(409, "ExecutionAlreadyFinished"), STORE),
        },
    },
    "/executions/{execution_id}/redrive": {
        "parameters": [EXECUTION_ID],
        "post": {
            "operationId": "redrive_execution",
            "summary": "Run a FAILED, TIMED_OUT or ABORTED execution again from where it stopped",
            "description": ("The states that failed or were stopped run again with the input they had; Parallel "
                            "branches and Map iterations that succeeded keep their results. The same execution "
                            "(ID, name), redriveCount + 1, an ExecutionRedriven event. Refused when it succeeded, "
                            "is still running, ended more than 14 days ago, or its state where it ended was not "
                            "kept (REDRIVE_MAX_BYTES). A clientToken sent again within 15 minutes answers the same "
                            "redrive. It runs until it ends or waits (202 when it goes on in the background)."),
            "security": [{}, {"apiKey": []}],
            "requestBody": json_body({"type": "object", "additionalProperties": False, "properties": {
                "clientToken": {"type": "string", "minLength": 1, "maxLength": 64}}}, required=False),
            "responses": _merge(ok(_ref("Execution"), "The execution, redriven."),
                                ok(_ref("Execution"), "The execution, going on in the background.", status=202),
                                API_KEY, error(400, "MalformedJSON", "InvalidRequest"),
                                error(404, "ExecutionNotFound"), error(409, "ExecutionNotRedrivable"), TOO_LARGE,
                                STORE),
        },
    },
    "/continuations/{continuation}": {
        "parameters": [CONTINUATION],
        "get": {
            "operationId": "describe_continuation",
            "summary": "What a continuation waits for; changes nothing",
            "description": "Browsers get the question's form, or a page saying why it no longer waits." + ACCEPT_NOTE,
            "responses": _merge(
                ok(_ref("ContinuationInfo"), "What it waits for.", html=True),
                error(404, "ContinuationNotFound", html=True),
                page_only(410, "A browser's page for an expired or closed continuation."),
                STORE_PAGE,
            ),
        },
        "post": {
            "operationId": "redeem_continuation",
            "summary": "Redeem a continuation: resume the execution with this answer (at most once)",
            "description": "A JSON object, or the question's HTML form (typed and checked first)." + ACCEPT_NOTE,
            "requestBody": json_body(_ref("Answer"), required=False, form=True),
            "responses": _merge(ok(_ref("Answered"), "What became of the answer.", html=True),
                                error(403, "ContinuationInternal", html=True), *ANSWER_ERRORS),
        },
    },
    "/continuations/{continuation}/decide": {
        "parameters": [CONTINUATION],
        "get": {
            "operationId": "show_decision",
            "summary": "A decision link opened: what it would send; changes nothing",
            "description": "Browsers get a page with one button that sends the choice." + ACCEPT_NOTE,
            "parameters": DECISION_QUERY,
            "responses": _merge(
                ok(_ref("DecisionPreview"), "What the link would answer.", html=True),
                error(403, "InvalidSignature", html=True),
                error(404, "ContinuationNotFound", html=True),
                page_only(410, "A browser's page for an expired or closed continuation."),
                STORE_PAGE,
            ),
        },
        "post": {
            "operationId": "decide",
            "summary": "A decision link's button: redeem with the link's choice (and the form's other fields)",
            "description": ACCEPT_NOTE.strip(),
            "parameters": DECISION_QUERY,
            "requestBody": json_body(_ref("Answer"), required=False, form=True),
            "responses": _merge(ok(_ref("Answered"), "What became of the answer.", html=True),
                                error(403, "InvalidSignature", "ContinuationInternal", html=True), *ANSWER_ERRORS),
        },
    },
    "/continuations/{continuation}/failure": {
        "parameters": [CONTINUATION],
        "post": {
            "operationId": "fail_continuation",
            "summary": "Fail the waiting task with this error (like SendTaskFailure); Retry and Catch apply",
            "requestBody": json_body(_ref("FailureRequest")),
            "responses": _merge(
                ok(_ref("Answered"), "What became of the failure."),
                error(400, "MalformedJSON", "InvalidRequest"),
                error(403, "ContinuationInternal"),
                error(404, "ContinuationNotFound"),
                retry_after(error(409, "ContinuationAlreadyRedeemed", "ContinuationBusy"), BUSY_WHEN),
                error(410, "ContinuationExpired", "ExecutionExpired"),
                TOO_LARGE, STORE,
            ),
        },
    },
    "/continuations/{continuation}/heartbeat": {
        "parameters": [CONTINUATION],
        "post": {
            "operationId": "heartbeat_continuation",
            "summary": "Extend the waiting task's HeartbeatSeconds deadline (like SendTaskHeartbeat)",
            "requestBody": json_body({"description": "Ignored; any JSON value, or no body."}, required=False),
            "responses": _merge(
                ok(_ref("Heartbeat"), "The continuation and its new deadline."),
                error(400, "MalformedJSON"),
                error(403, "ContinuationInternal"),
                error(404, "ContinuationNotFound"),
                error(409, "ContinuationAlreadyRedeemed"),
                error(410, "ContinuationExpired"),
                TOO_LARGE, STORE,
            ),
        },
    },
    "/state-machines": {
        "get": {
            "operationId": "list_state_machines",
            "summary": "The definitions in state_machines/",
            "responses": _merge(ok(_ref("StateMachineList"), "Their names.")),
        },
    },
    "/state-machines/validate": {
        "post": {
            "operationId": "validate_state_machine",
            "summary": "Validate a definition",
            "requestBody": json_body({"description": (
                "{\"definition\": ...} or the definition itself. Any JSON value is judged: what is not an ASL "
                "definition gets problems.")}),
            "responses": _merge(ok(_ref("ValidationResult"), "Valid, or its problems."),
                                error(400, "MalformedJSON", "InvalidRequest"), TOO_LARGE),
        },
    },
    "/state-machines/{name}": {
        "parameters": [STATE_MACHINE],
        "get": {
            "operationId": "get_state_machine",
            "summary": "One definition",
            "responses": _merge(ok(_ref("StateMachine"), "The definition."), error(404, "StateMachineNotFound")),
        },
    },
    "/state-machines/{name}/diagram": {
        "parameters": [STATE_MACHINE],
        "get": {
            "operationId": "state_machine_diagram",
            "summary": "The definition as a Mermaid flowchart",
            "parameters": [query_parameter("highlight", "State names to mark, comma-separated.")],
            "responses": _merge(
                (200, {"description": "Mermaid flowchart text.", "content": {"text/plain": {"schema": STRING}}}),
                error(404, "StateMachineNotFound"),
            ),
        },
    },
    "/": {
        "post": {
            "operationId": "prototype",
            "summary": ("The Step Functions API and EventBridge's PutEvents (with X-Amz-Target), or the prototype's "
                        "calls: POST /?input=N with a definition, POST /?continuation=K"),
            "description": ("With X-Amz-Target: AWSStepFunctions.<Operation> (Content-Type "
                            "application/x-amz-json-1.0): the AWS Step Functions JSON 1.0 protocol; the body is the "
                            "operation's input and the answer its output, as in botocore's stepfunctions model, and "
                            "errors are AWS's ({\"__type\": code, \"message\": ...}). Needs the API key or an AWS "
                            "Signature Version 4 when the stage sets API_KEY or AWS_ACCESS_KEYS, except "
                            "SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat (the token is enough). "
                            "With X-Amz-Target: AWSEvents.PutEvents: EventBridge's PutEvents (JSON 1.1 protocol; "
                            "each entry is published as POST /events publishes it; the answer is "
                            "{FailedEntryCount, Entries: [{EventId} | {ErrorCode, ErrorMessage}]}), with the same "
                            "rule, a signature being for service events. "
                            "Without X-Amz-Target, with continuation: redeem it (the body, if any, is the answer "
                            "object). Otherwise start the definition in the body with input (a number becomes "
                            "{\"value\": N})."),
            "parameters": [
                query_parameter("input", "The input: JSON, or a number (default {})."),
                query_parameter("continuation", "A continuation ID to redeem."),
                {"name": "X-Amz-Target", "in": "header", "required": False,
                 "description": ("AWSStepFunctions.<Operation>: the request is the Step Functions API's; "
                                 "AWSEvents.PutEvents: EventBridge's."),
                 "schema": {"type": "string", "enum": [f"AWSStepFunctions.{name}" for name in AWS_OPERATIONS]
                            + ["AWSEvents.PutEvents"]}},
            ],
            "requestBody": {"required": False, "content": {
                JSON: {"schema": {"type": ["object", "null"], "description": (
                    "With input: the definition (required). With continuation: the answer (null, like no body, is "
                    "the empty answer).")}},
                AWS_JSON: {"schema": {"type": "object", "description": "The operation's input members."}},
                EVENTS_JSON: {"schema": {"type": "object", "description": "PutEvents' input: Entries."}},
            }},
            "responses": _merge(
                ok(_ref("PrototypeResult"), "The current values and the execution."),
                aws(200, {"type": "object", "description": "The operation's output members."},
                    "The Step Functions operation's output."),
                error(400, "MalformedJSON", "InvalidRequest", "InvalidDefinition"),
                aws_error(400, "The Step Functions API's errors: ValidationException, SerializationException, "
                               "UnknownOperationException, InvalidArn, InvalidName, InvalidExecutionInput, "
                               "InvalidDefinition, InvalidToken, InvalidOutput, StateMachineDoesNotExist, "
                               "ExecutionDoesNotExist, ExecutionAlreadyExists, ExecutionNotRedrivable, TaskDoesNotExist, "
                               "TaskTimedOut, "
                               "StateMachineAlreadyExists, MissingRequiredParameter, ResourceNotFound, TooManyTags, "
                               "ThrottlingException, ActivityDoesNotExist, ActivityAlreadyExists, "
                               "InvalidEncryptionConfiguration."),
                error(403, "ResourceNotAllowed", "Forbidden", "ContinuationInternal"),
                aws_error(403, "Not authenticated: MissingAuthenticationTokenException, "
                               "IncompleteSignatureException, UnrecognizedClientException, InvalidSignatureException."),
                error(404, "ContinuationNotFound"),
                retry_after(error(409, "ContinuationAlreadyRedeemed", "ContinuationBusy"), BUSY_WHEN),
                error(410, "ContinuationExpired", "ExecutionExpired"),
                TOO_LARGE,
                error(422, "InvalidAnswer"),
                STORE,
                aws_error(503, "ServiceUnavailable: the store is unreachable; try again."),
                events_api(200, {"type": "object", "required": ["FailedEntryCount", "Entries"]},
                           "PutEvents' output: an EventId or an ErrorCode and ErrorMessage per entry."),
                events_api(400, _ref("AwsError"), "PutEvents refused: ValidationException, SerializationException, "
                                                  "UnknownOperationException."),
                events_api(403, _ref("AwsError"), "Not authenticated, as for the Step Functions API."),
                events_api(503, _ref("AwsError"), "ServiceUnavailable: the store is unreachable; try again."),
            ),
        },
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi_document",
            "summary": "This document",
            "responses": _merge(ok({"type": "object", "required": ["openapi", "info", "paths"]},
                                   "The OpenAPI document.")),
        },
    },
}


@functools.lru_cache(maxsize=1)
def _document() -> dict:
    """The document; the shipped state machines' names are the examples of a name."""
    names = catalog.names()
    paths = copy.deepcopy(OPERATIONS)
    schemas = copy.deepcopy(SCHEMAS)
    schemas["StartRequest"]["properties"]["stateMachine"]["examples"] = names
    for item in paths.values():
        for parameter in item.get("parameters", []):
            if parameter["name"] == "name":
                parameter["schema"]["examples"] = names
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ASL continuations",
            "version": "1.0.0",
            "description": ("Runs Amazon States Language state machines; a Suspend task stores the execution and "
                            "answers with a continuation ID that resumes it once. Every error is a 4xx/5xx with "
                            "{\"error\": code, \"message\": ...}, except Chalice's own 415 (UnsupportedMediaType). "
                            "A method a path does not list answers 405 MethodNotAllowed with an Allow header, and "
                            "a path not listed answers 404 RouteNotFound, both with the Error body and whatever "
                            "the request's Content-Type."),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {
                "type": "apiKey", "in": "header", "name": "x-api-key",
                "description": ("Needed to start (also POST /?input=), list, read and stop executions, and to "
                                "publish events, when the stage sets API_KEY."),
            }},
        },
    }


def response(request):
    """``GET /openapi.json``: the document, its server being where this request arrived."""
    from ..config import settings
    from .http import json_response
    from .runtime import base_url

    return json_response(document(base_url(request, settings())))


def document(server_url: str | None = None) -> dict:
    """The OpenAPI document; with ``server_url``, naming where this service answers."""
    doc = copy.deepcopy(_document())
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
