"""HTTP handlers: parse requests, call the service, shape JSON responses.

``app.py`` only declares routes and calls the functions here. Every handler
answers errors as ``{"error": "<Code>", "message": "..."}`` with a 4xx/5xx
status; nothing returns a traceback.
"""
from __future__ import annotations

import functools
import hmac
import json
import logging
import threading
from typing import Any, Callable
from urllib.parse import parse_qs

from chalice import Response
from redis.exceptions import RedisClusterException, RedisError

from . import catalog, diagram, forms, links, views
from .asl import validate
from .config import Settings, settings
from .redis_connection import get_redis
from .service import FINISHED, Service, ServiceError
from .store import Store

log = logging.getLogger(__name__)

_stores: dict[int, Store] = {}


def store_for(config: Settings) -> Store:
    client = get_redis(config)
    store = _stores.get(id(client))
    if store is None:
        store = _stores[id(client)] = Store(client, history_limit=config.history_limit)
    return store


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(body=json.dumps(body, ensure_ascii=False), status_code=status,
                    headers={"Content-Type": "application/json", **(headers or {})})


def error_response(error: ServiceError) -> Response:
    return json_response(error.to_json(), error.status)


def page_response(page: views.Page) -> Response:
    return Response(body=page.body, status_code=page.status, headers=page.headers)


def wants_html(request) -> bool:
    """Content negotiation: browsers (``Accept`` naming text/html) get pages, others JSON."""
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    return "text/html" in headers.get("accept", "").lower()


def endpoint(handler: Callable[..., Any]) -> Callable[..., Response]:
    """Turn a handler's result or error into a JSON response."""
    return _answering(handler, lambda args, error: error_response(error))


def page_endpoint(handler: Callable[..., Any]) -> Callable[..., Response]:
    """As :func:`endpoint`; for a browser, errors about the continuation are friendly pages.

    The handler is ``handler(request, continuation, ...)``.
    """
    def on_error(args: tuple, error: ServiceError) -> Response:
        request, continuation = args[0], args[1]
        if not wants_html(request):
            return error_response(error)
        service = make_service(request)
        try:
            return page_response(views.refusal_page(service, continuation, error))
        except ServiceError as again:  # the store failed again while explaining
            return page_response(views.error_page(service, again))
        except STORE_ERRORS:
            return page_response(views.error_page(service, _store_unavailable()))

    return _answering(handler, on_error)


# What redis-py raises when Redis cannot answer; a cluster client's own errors are not RedisErrors.
STORE_ERRORS = (RedisError, RedisClusterException)


def _store_unavailable() -> ServiceError:
    return ServiceError(503, "StoreUnavailable", "The continuation store is not reachable; try again.")


def _answering(handler: Callable[..., Any], on_error: Callable[[tuple, ServiceError], Response]):
    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            result = handler(*args, **kwargs)
        except ServiceError as error:
            return on_error(args, error)
        except STORE_ERRORS as exc:
            log.warning("store unavailable: %s", type(exc).__name__)
            return on_error(args, _store_unavailable())
        except Exception:  # noqa: BLE001 - logged, answered without details
            log.exception("unexpected error")
            return on_error(args, ServiceError(500, "InternalError", "The service failed unexpectedly."))
        if isinstance(result, Response):
            return result
        if isinstance(result, views.Page):
            return page_response(result)
        status, body = result if isinstance(result, tuple) else (200, result)
        return json_response(body, status)

    return wrapper


# -- request helpers ----------------------------------------------------------------------

def base_url(request, config: Settings) -> str:
    if config.public_base_url:
        return config.public_base_url
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    host = headers.get("host", "localhost")
    proto = headers.get("x-forwarded-proto", "http")
    context = request.context or {}
    prefix = ""
    if context.get("domainName", "").endswith(".amazonaws.com") and context.get("stage"):
        prefix = "/" + context["stage"]
    return f"{proto}://{host}{prefix}"


def dispatcher(config: Settings) -> Callable[[str], None]:
    """How a RUNNING execution goes on after the request: Lambda async or a thread."""
    import os

    function = os.environ.get("CONTINUE_FUNCTION_NAME")
    if function and os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        def invoke(execution_id: str) -> None:
            import boto3

            boto3.client("lambda").invoke(FunctionName=function, InvocationType="Event",
                                          Payload=json.dumps({"executionId": execution_id}).encode())

        return invoke

    def in_thread(execution_id: str) -> None:
        threading.Thread(target=continue_in_background, args=(execution_id,), daemon=True).start()

    return in_thread


def continue_in_background(execution_id: str, seconds: float | None = None) -> None:
    """Run an execution on (a thread locally; the continue_execution function when deployed)."""
    try:
        make_service(None).continue_running(execution_id, seconds)
    except Exception:  # noqa: BLE001 - a background worker must not die silently
        log.exception("continuing execution %s failed", execution_id)


def make_service(request) -> Service:
    config = settings()
    if request is not None:
        ensure_local_ticker(config)
    return Service(config, store_for(config), dispatch=dispatcher(config),
                   base_url=base_url(request, config) if request is not None else (config.public_base_url or ""))


def fire_timers() -> dict:
    """One tick: fire every due timer (the scheduled function, the local ticker, the CLI)."""
    return make_service(None).tick()


_ticker: threading.Thread | None = None


def ensure_local_ticker(config: Settings) -> None:
    """Under ``chalice local`` (which runs no schedules), fire timers from a background thread."""
    global _ticker
    import os

    if _ticker is not None or not os.environ.get("AWS_CHALICE_CLI_MODE") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return

    def loop() -> None:
        import time

        while True:
            try:
                fire_timers()
            except Exception:  # noqa: BLE001 - keep ticking; the next tick retries
                log.exception("timer tick failed")
            time.sleep(config.tick_seconds)

    _ticker = threading.Thread(target=loop, name="timer-ticker", daemon=True)
    _ticker.start()


def read_body(request, config: Settings) -> bytes:
    raw = request.raw_body or b""
    if len(raw) > config.max_body_bytes:
        raise ServiceError(413, "PayloadTooLarge",
                           f"The request body is larger than {config.max_body_bytes} bytes.")
    return raw


def is_form(request) -> bool:
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    return headers.get("content-type", "").lower().startswith("application/x-www-form-urlencoded")


def read_form(request, config: Settings) -> dict[str, list[str]]:
    """An HTML form's fields, ``{name: [values]}``."""
    try:
        return parse_qs(read_body(request, config).decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise ServiceError(400, "InvalidRequest", "The form is not UTF-8.") from None


def _not_a_json_number(text: str) -> float:
    """NaN, Infinity and numbers beyond a float's range parse in Python but are not JSON."""
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} is not a JSON number")
    return value


#: ``json.loads`` options refusing what no JSON answer could carry back (``NaN``, ``1e400``).
JSON_NUMBERS_ONLY = {"parse_constant": _not_a_json_number, "parse_float": _not_a_json_number}


def read_json(request, config: Settings, *, required: bool = True) -> Any:
    raw = read_body(request, config)
    if not raw.strip():
        if required:
            raise ServiceError(400, "InvalidRequest", "The request needs a JSON body.")
        return None
    try:
        value = json.loads(raw, **JSON_NUMBERS_ONLY)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError(400, "MalformedJSON", f"The request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ServiceError(400, "MalformedJSON", "The request body is nested too deeply.") from None
    try:  # a lone surrogate ("\ud800") parses, but could never be written out again
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeError:
        raise ServiceError(400, "MalformedJSON", "The request body holds text that is not valid Unicode.") from None
    except RecursionError:
        raise ServiceError(400, "MalformedJSON", "The request body is nested too deeply.") from None
    return value


def require_object(value: Any, what: str = "The request body") -> dict:
    if not isinstance(value, dict):
        raise ServiceError(400, "InvalidRequest", f"{what} must be a JSON object.")
    return value


def check_api_key(request) -> None:
    """When API_KEY is set for the stage, starting and reading executions needs it."""
    import os

    expected = os.environ.get("API_KEY")
    if not expected:
        return
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    if not hmac.compare_digest(headers.get("x-api-key", ""), expected):
        raise ServiceError(403, "Forbidden", "A valid x-api-key header is required.")


# -- executions ---------------------------------------------------------------------------

@endpoint
def start_execution(request) -> tuple[int, dict]:
    check_api_key(request)
    config = settings()
    body = require_object(read_json(request, config))
    unknown = set(body) - {"stateMachine", "definition", "input", "name"}
    if unknown:
        raise ServiceError(400, "InvalidRequest", f"Unknown fields: {', '.join(sorted(unknown))}.")
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= 80):
        raise ServiceError(400, "InvalidRequest", "'name' must be a string of 1 to 80 characters.")
    service = make_service(request)
    definition, machine, trusted = definition_from(body)
    document = service.start(definition, body.get("input", {}), state_machine=machine, trusted=trusted, name=name)
    return (200 if document["status"] in FINISHED else 202 if document["status"] == "RUNNING" else 200), document


def definition_from(body: dict) -> tuple[Any, str | None, bool]:
    """(definition, state machine name, trusted) from a request body."""
    has_name, has_inline = "stateMachine" in body, "definition" in body
    if has_name == has_inline:
        raise ServiceError(400, "InvalidRequest", "Give exactly one of 'stateMachine' or 'definition'.")
    if has_name:
        name = body["stateMachine"]
        if not isinstance(name, str):
            raise ServiceError(400, "InvalidRequest", "'stateMachine' must be a string.")
        text = catalog.load_text(name)
        if text is None:
            raise ServiceError(404, "StateMachineNotFound", f"There is no state machine named {name!r}.",
                               available=catalog.names())
        return text, name.removesuffix(".json"), True
    definition = body["definition"]
    if not isinstance(definition, (dict, str)):
        raise ServiceError(400, "InvalidRequest", "'definition' must be an ASL object (or its JSON text).")
    return definition, None, False


@endpoint
def get_execution(request, execution_id: str) -> dict:
    check_api_key(request)
    return make_service(request).describe(execution_id)


@endpoint
def stop_execution(request, execution_id: str) -> dict:
    check_api_key(request)
    return make_service(request).abort(execution_id)


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
    document = service.redeem(continuation, result=payload)
    if not wants_html(request):
        return document
    if info is None:
        info = service.describe_continuation(continuation)
    return views.outcome_page(service, continuation, info, payload, document)


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
    return make_service(request).redeem(continuation, error=error, cause=cause)


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
        return _flatten(service.redeem(params["continuation"], result=payload))
    definition = require_object(read_json(request, config), "The definition")
    raw_input = params.get("input", "{}")
    try:
        value = json.loads(raw_input, **JSON_NUMBERS_ONLY)
    except ValueError:
        raise ServiceError(400, "InvalidRequest", "'input' must be a number or JSON.") from None
    payload = value if isinstance(value, dict) else {"value": value}
    return _flatten(service.start(definition, payload, state_machine=None, trusted=False))


def _flatten(document: dict) -> dict:
    """The prototype's answer: the current values at the top level, plus CONTINUATION."""
    values: Any = document.get("output")
    if document["continuations"]:
        first = document["continuations"][0]
        values = first["parameters"]
        document = {**document, "CONTINUATION": first["id"]}
    if isinstance(values, dict):
        return {**values, **document}
    return document

