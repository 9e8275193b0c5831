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

from chalice import Response
from redis.exceptions import RedisError

from . import catalog
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


def endpoint(handler: Callable[..., Any]) -> Callable[..., Response]:
    """Turn a handler's result or error into a JSON response."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            result = handler(*args, **kwargs)
        except ServiceError as error:
            return error_response(error)
        except RedisError as exc:
            log.warning("store unavailable: %s", type(exc).__name__)
            return error_response(ServiceError(503, "StoreUnavailable",
                                               "The continuation store is not reachable; try again."))
        except Exception:  # noqa: BLE001 - logged, answered without details
            log.exception("unexpected error")
            return error_response(ServiceError(500, "InternalError", "The service failed unexpectedly."))
        if isinstance(result, Response):
            return result
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


def continue_in_background(execution_id: str) -> None:
    try:
        make_service(None).continue_running(execution_id)
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


def read_json(request, config: Settings, *, required: bool = True) -> Any:
    raw = request.raw_body or b""
    if len(raw) > config.max_body_bytes:
        raise ServiceError(413, "PayloadTooLarge",
                           f"The request body is larger than {config.max_body_bytes} bytes.")
    if not raw.strip():
        if required:
            raise ServiceError(400, "InvalidRequest", "The request needs a JSON body.")
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError(400, "MalformedJSON", f"The request body is not valid JSON: {exc}") from None


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

@endpoint
def redeem_continuation(request, continuation: str) -> dict:
    config = settings()
    body = read_json(request, config, required=False)
    payload = {} if body is None else require_object(body, "The answer")
    return make_service(request).redeem(continuation, result=payload)


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
    return make_service(request).heartbeat(continuation)


@endpoint
def describe_continuation(request, continuation: str) -> dict:
    return make_service(request).describe_continuation(continuation)


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
        value = json.loads(raw_input)
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

