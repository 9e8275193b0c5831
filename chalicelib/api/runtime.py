"""How the service runs inside the app: building it per request, background runs, the local ticker."""
from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
import time
from typing import Callable

from ..approvals import make_service as approval_service
from ..config import Settings, settings
from ..service import Service
from ..store import Store
from ..store.connection import get_redis

log = logging.getLogger(__name__)

_stores: dict[int, Store] = {}


def store_for(config: Settings) -> Store:
    client = get_redis(config)
    store = _stores.get(id(client))
    if store is None:
        store = _stores[id(client)] = Store(client, history_limit=config.history_limit)
    return store


#: A host header as links may carry it: a DNS name or IPv4 address, or a bracketed IPv6 one, and a port.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
                   r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


class ConfigurationError(RuntimeError):
    """The stage's settings would make the service unsafe; it refuses to run until they are fixed."""


def configuration_problem(config: Settings) -> str | None:
    """What is wrong with the stage's settings, if anything: an API key with no source of links.

    A stage with ``API_KEY`` guards its executions, and its links (continuation URLs, decision
    links, emails) must not come from whatever ``Host`` a request sends: it needs
    ``PUBLIC_BASE_URL``, or ``TRUSTED_HOSTS`` to check the request's host against.
    """
    if os.environ.get("API_KEY") and not config.public_base_url and not config.trusted_hosts:
        return ("API_KEY is set but neither PUBLIC_BASE_URL nor TRUSTED_HOSTS is: links would be built from "
                "whatever Host a request sends. Set PUBLIC_BASE_URL to the stage's public URL, or TRUSTED_HOSTS "
                "to the host[:port] names it answers on (comma-separated).")
    return None


def check_configuration(config: Settings) -> None:
    """Raise :class:`ConfigurationError` for a stage that must not run (see :func:`configuration_problem`)."""
    problem = configuration_problem(config)
    if problem is not None:
        raise ConfigurationError(problem)


def check_deployed_configuration() -> None:
    """At import in the deployed function: a misconfigured stage fails its cold start, saying why."""
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and not os.environ.get("AWS_CHALICE_CLI_MODE"):
        check_configuration(settings())


def is_trusted(host: str, trusted: tuple[str, ...]) -> bool:
    """``host`` (``name`` or ``name:port``) is one of ``trusted``: ``name:port`` exactly, or ``name`` on any port."""
    host = host.lower()
    name = host.rsplit(":", 1)[0] if ":" in host and not host.endswith("]") else host
    return host in trusted or name in trusted


def link_host(request, config: Settings) -> str | None:
    """The host links take from ``request`` (when ``PUBLIC_BASE_URL`` is unset).

    With ``TRUSTED_HOSTS``: ``X-Forwarded-Host`` (its first name) or else ``Host``, if it is one
    of them; None if it is not (the request is refused). Without: a well-formed ``Host``, else
    ``localhost``.
    """
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    if config.trusted_hosts:
        host = (headers.get("x-forwarded-host", "").split(",")[0].strip() or headers.get("host", "")).strip()
        return host if _HOST.match(host) and is_trusted(host, config.trusted_hosts) else None
    host = headers.get("host", "localhost")
    return host if _HOST.match(host) else "localhost"


def base_url(request, config: Settings) -> str:
    """Where links point: ``PUBLIC_BASE_URL``, else the request's host as :func:`link_host` takes it.

    Only ``http``/``https`` and a well-formed host are taken from the request; anything else
    falls back to ``http://localhost`` rather than being written into links.
    """
    if config.public_base_url:
        return config.public_base_url
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    host = link_host(request, config) or "localhost"
    proto = headers.get("x-forwarded-proto", "http").split(",")[0].strip().lower()
    if proto not in ("http", "https"):
        proto = "http"
    context = request.context or {}
    prefix = ""
    if context.get("domainName", "").endswith(".amazonaws.com") and context.get("stage"):
        prefix = "/" + context["stage"]
    return f"{proto}://{host}{prefix}"


def _continue_function() -> str | None:
    """The asynchronous function that runs work on after a request, when deployed."""
    function = os.environ.get("CONTINUE_FUNCTION_NAME")
    return function if function and os.environ.get("AWS_LAMBDA_FUNCTION_NAME") else None


def _invoke_async(function: str, payload: dict) -> None:
    import boto3

    boto3.client("lambda").invoke(FunctionName=function, InvocationType="Event",
                                  Payload=json.dumps(payload).encode())


def dispatcher(config: Settings) -> Callable[[str], None]:
    """How a RUNNING execution goes on after the request: Lambda async or a thread."""
    function = _continue_function()
    if function:
        return lambda execution_id: _invoke_async(function, {"executionId": execution_id})

    def in_thread(execution_id: str) -> None:
        threading.Thread(target=continue_in_background, args=(execution_id,), daemon=True).start()

    return in_thread


def worker_dispatcher(config: Settings) -> Callable[[str], None]:
    """How a map run's worker runs: an asynchronous invocation of the continue function, or one of
    ``LOCAL_MAP_WORKERS`` threads under ``chalice local`` (workers beyond them wait their turn)."""
    function = _continue_function()
    if function:
        return lambda run_id: _invoke_async(function, {"mapRun": run_id})
    return lambda run_id: _local_workers(config.local_map_workers).put(run_id)


_worker_queue: "queue.Queue[str] | None" = None
_worker_lock = threading.Lock()


def _local_workers(threads: int) -> "queue.Queue[str]":
    """The queue the local worker threads take map runs' workers from (started on first use)."""
    global _worker_queue
    with _worker_lock:
        if _worker_queue is None:
            _worker_queue = queue.Queue()
            for number in range(threads):
                threading.Thread(target=_take_workers, args=(_worker_queue,), name=f"map-worker-{number}",
                                 daemon=True).start()
    return _worker_queue


def _take_workers(work: "queue.Queue[str]") -> None:
    while True:
        work_in_background(work.get())


def work_in_background(run_id: str, seconds: float | None = None) -> None:
    """Be one worker of a map run (a local thread; the continue_execution function when deployed)."""
    try:
        make_service(None).work_map_run(run_id, seconds)
    except Exception:  # noqa: BLE001 - a worker must not die silently; the run's sweep replaces it
        log.exception("a worker of map run %s failed", run_id)


def continue_in_background(execution_id: str, seconds: float | None = None) -> None:
    """Run an execution on (a thread locally; the continue_execution function when deployed)."""
    try:
        make_service(None).continue_running(execution_id, seconds)
    except Exception:  # noqa: BLE001 - a background worker must not die silently
        log.exception("continuing execution %s failed", execution_id)


def make_service(request) -> Service:
    config = settings()
    return approval_service(config, store_for(config), dispatch=dispatcher(config),
                            dispatch_worker=worker_dispatcher(config),
                            base_url=base_url(request, config) if request is not None else (config.public_base_url or ""))


def fire_timers() -> dict:
    """One tick: fire every due timer (the scheduled function, the local ticker, the CLI)."""
    return make_service(None).tick()


def prepare_local_server() -> None:
    """Under ``chalice local`` only: tune its sockets, and start Redis and the ticker as it starts serving.

    ``chalice deploy`` and ``chalice package`` import the app too, so nothing starts here:
    ``LocalDevServer.serve_forever`` is wrapped, which only ``chalice local`` calls.
    """
    if not os.environ.get("AWS_CHALICE_CLI_MODE") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return
    try:
        from chalice import local as chalice_local
        from chalice.local import ChaliceRequestHandler, LocalDevServer
    except ImportError:  # a deployed package has no chalice.local
        return
    tune_local_server(ChaliceRequestHandler, chalice_local)
    serve = LocalDevServer.serve_forever
    if getattr(serve, "starts_local_runtime", False):
        return

    def serve_forever(server) -> None:
        start_local_runtime()
        serve(server)

    serve_forever.starts_local_runtime = True
    LocalDevServer.serve_forever = serve_forever


def tune_local_server(handler, local_module=None) -> None:
    """Answer without the 40 ms stall of Nagle's algorithm plus delayed ACK, and route as API Gateway.

    Chalice's handler writes the headers and then the body in two sends; with Nagle on, the kernel
    holds the body until the client ACKs the headers, and the client delays that ACK by about
    40 ms. ``TCP_NODELAY`` on every accepted socket (``disable_nagle_algorithm``) sends at once.

    ``chalice local``'s route matcher takes ``{proxy+}`` for one path segment; API Gateway takes
    a greedy last segment for the rest of the path, however many segments it has, when no other
    route matches. The matcher in ``local_module`` (``chalice.local``) is made to do the same.
    """
    handler.disable_nagle_algorithm = True
    if local_module is not None and not getattr(local_module.RouteMatcher, "greedy", False):
        local_module.RouteMatcher = greedy_route_matcher(local_module.RouteMatcher, local_module.MatchResult)


def greedy_route_matcher(matcher, match_result):
    """A subclass of Chalice's local ``RouteMatcher`` that matches a last segment ``{name+}`` greedily."""
    from urllib.parse import parse_qs, urlparse

    class GreedyRouteMatcher(matcher):
        greedy = True

        def __init__(self, route_urls):
            super().__init__([url for url in route_urls if not url.endswith("+}")])
            self.greedy_urls = sorted((url for url in route_urls if url.endswith("+}")), key=len, reverse=True)

        def match_route(self, url):
            try:
                return super().match_route(url)
            except ValueError:
                parsed = urlparse(url)
                path = parsed.path
                for route in self.greedy_urls:
                    prefix, name = route.rsplit("/", 1)
                    prefix += "/"
                    if path.startswith(prefix) and len(path) > len(prefix):
                        return match_result(route, {name[1:-2]: path[len(prefix):]},
                                            parse_qs(parsed.query, keep_blank_values=True))
                raise

    return GreedyRouteMatcher


_ticker: threading.Thread | None = None


def start_local_runtime() -> None:
    """Before the first request: connect to Redis (starting the embedded one with the server, in
    its main thread) and start the ticker that fires timers, since ``chalice local`` runs no schedules."""
    global _ticker

    problem = configuration_problem(settings())
    if problem is not None:
        raise SystemExit(f"chalice local: refusing to start: {problem}")
    store_for(settings())
    if _ticker is not None:
        return

    def loop() -> None:
        while True:
            try:
                fire_timers()
            except Exception:  # noqa: BLE001 - keep ticking; the next tick retries
                log.exception("timer tick failed")
            time.sleep(settings().tick_seconds)

    _ticker = threading.Thread(target=loop, name="timer-ticker", daemon=True)
    _ticker.start()
