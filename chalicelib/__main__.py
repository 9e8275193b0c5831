"""Command line: python -m chalicelib run|resume|validate|test-state|tick|events|worker ...

Run a state machine, resume a suspended one from the JSON that run printed,
validate a definition, test one state, fire the service's due timers, publish events to a running service,
or run activity workers.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from . import resume, run
from .asl import InvalidDefinition, SystemClock, UnknownSuspension, VirtualClock, load, validate
from .asl.interpreter import open_points


class UsageError(Exception):
    """Bad input on the command line: reported as one line on stderr, exit status 2."""


def _read_json(text_or_file: str, what: str) -> Any:
    """JSON given inline, or the contents of a file named ``@path``."""
    source, where = text_or_file, what
    if text_or_file.startswith("@"):
        path = text_or_file[1:]
        source, where = _read_file(path), f"{what} file {path}"
    try:
        return json.loads(source)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{where} is not valid JSON: {exc}") from None


def _read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {path}: it is not UTF-8 text") from None


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _invalid(exc: InvalidDefinition) -> int:
    _print({"status": "INVALID", "problems": [p.to_json() for p in exc.problems]})
    return 2


def _clock(args: argparse.Namespace):
    return VirtualClock() if args.virtual_time else SystemClock()


def _exit_status(result: dict) -> int:
    return 0 if result["status"] in ("SUCCEEDED", "SUSPENDED") else 1


def cmd_run(args: argparse.Namespace) -> int:
    definition = _read_file(args.definition)
    input = _read_json(args.input, "--input")
    try:
        result = run(definition, input, clock=_clock(args))
    except InvalidDefinition as exc:
        return _invalid(exc)
    _print(result)
    return _exit_status(result)


def _snapshot_of(given: Any) -> dict:
    """The snapshot in what ``--snapshot`` gave: a whole result of run/resume, or its snapshot."""
    if isinstance(given, dict) and "snapshot" in given and "root" not in given:
        given = given["snapshot"]
    elif isinstance(given, dict) and "status" in given and "root" not in given:
        raise UsageError(f"--snapshot is a {given['status']} result, which has no snapshot to resume")
    if not (isinstance(given, dict) and isinstance(given.get("root"), dict) and "definition" in given):
        raise UsageError("--snapshot is not a snapshot: give the JSON that run printed, or its 'snapshot'")
    return given


def _open_points_text(points: list[str]) -> str:
    return f"open points: {', '.join(points)}" if points else "no point is open"


def _choose_point(args: argparse.Namespace, points: list[str]) -> str:
    if args.point and args.point_option and args.point != args.point_option:
        raise UsageError(f"two suspension points given: {args.point} and {args.point_option}")
    point = args.point or args.point_option
    if point is None:
        if len(points) != 1:
            raise UsageError(f"name the suspension point to answer; {_open_points_text(points)}")
        point = points[0]
    if point not in points:
        raise UsageError(f"suspension point {point!r} is not open; {_open_points_text(points)}")
    return point


def cmd_resume(args: argparse.Namespace) -> int:
    definition = _read_file(args.definition)
    given = _read_json(args.snapshot, "--snapshot")
    answer = _read_json(args.result, "--result")
    snapshot = _snapshot_of(given)
    try:
        compiled = load(definition)
    except InvalidDefinition as exc:
        return _invalid(exc)
    if snapshot["definition"] != compiled.hash:
        raise UsageError(f"the snapshot belongs to a different definition than {args.definition}")
    point = _choose_point(args, open_points(snapshot))
    options: dict = {"clock": _clock(args)}
    if args.error:
        options.update(error=args.error, cause=args.cause)
    try:
        result = resume(compiled, snapshot, point, answer, **options)
    except UnknownSuspension:  # listed as open, yet not found: the snapshot is inconsistent
        raise UsageError(f"suspension point {point!r} is not open") from None
    _print(result)
    return _exit_status(result)


def cmd_validate(args: argparse.Namespace) -> int:
    problems = validate(_read_file(args.definition))
    for problem in problems:
        print(problem.message)
    if not problems:
        print("no problems found")
    return 1 if problems else 0


def cmd_test_state(args: argparse.Namespace) -> int:
    """One state run once, as TestState: prints status, output or error, nextState, inspectionData."""
    from .asl.one_state import StateTestRefused, run_one_state
    from .resources import default_handlers

    definition = _read_json("@" + args.definition, "the definition")
    mock = None
    if args.mock_result is not None and args.mock_error is not None:
        raise UsageError("give --mock-result or --mock-error, not both")
    if args.mock_result is not None:
        mock = {"result": _read_json(args.mock_result, "--mock-result")}
    elif args.mock_error is not None:
        mock = {"errorOutput": {"error": args.mock_error, "cause": args.mock_cause}}
    elif args.mock_cause is not None:
        raise UsageError("--mock-cause goes with --mock-error")
    options: dict = {"state_name": args.state_name, "inspection_level": args.inspection_level, "mock": mock,
                     "retrier_retry_count": args.retrier_retry_count}
    if args.variables is not None:
        options["variables"] = _read_json(args.variables, "--variables")
    if args.context is not None:
        options["context"] = _read_json(args.context, "--context")
    try:
        result = run_one_state(definition, _read_json(args.input, "--input"), handlers=default_handlers(),
                               **options)
    except InvalidDefinition as exc:
        return _invalid(exc)
    except StateTestRefused as exc:
        raise UsageError(str(exc)) from None
    _print(result)
    return 1 if result["status"] == "FAILED" else 0


def cmd_tick(args: argparse.Namespace) -> int:
    import time

    from .api.runtime import fire_timers

    while True:
        print(json.dumps(fire_timers()), flush=True)
        if not args.loop:
            return 0
        time.sleep(args.loop)


def simulation_steps(given: Any) -> list[tuple[float, dict]]:
    """(delay in seconds, event) of a simulation file: a list of events, each optionally
    ``{"delaySeconds": N, "event": {...}}`` to wait N seconds before sending it."""
    if not isinstance(given, list):
        raise UsageError("a simulation is a list of events (or {\"delaySeconds\": N, \"event\": {...}})")
    steps = []
    for index, step in enumerate(given):
        if isinstance(step, dict) and "event" in step:
            delay = step.get("delaySeconds", 0)
            if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0 or set(step) - {
                    "event", "delaySeconds"}:
                raise UsageError(f"step {index}: give 'event' and a 'delaySeconds' of 0 or more")
            step = (float(delay), step["event"])
        elif isinstance(step, dict):
            step = (0.0, step)
        else:
            raise UsageError(f"step {index} is not an event")
        steps.append(step)
    return steps


def cmd_events(args: argparse.Namespace) -> int:
    """Publish a simulation's events, one POST /events each, after its delay; print each answer."""
    import os
    import time
    import urllib.error
    import urllib.request

    steps = simulation_steps(_read_json("@" + args.file, "the simulation"))
    key = args.api_key if args.api_key is not None else os.environ.get("API_KEY")
    status = 0
    for delay, event in steps:
        time.sleep(delay * args.speed)
        request = urllib.request.Request(args.url.rstrip("/") + "/events", data=json.dumps(event).encode(),
                                         method="POST", headers={"Content-Type": "application/json",
                                                                 **({"x-api-key": key} if key else {})})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            answer, status = json.loads(error.read() or b"{}"), 1
        except OSError as error:
            raise UsageError(f"cannot reach {args.url}: {error}") from None
        print(json.dumps(answer, ensure_ascii=False), flush=True)
        if answer.get("failedEntryCount"):
            status = 1
    return status


def cmd_worker(args: argparse.Namespace) -> int:
    """Run workers until SIGTERM or SIGINT: the function named, or the module's ``@worker`` functions."""
    import importlib
    import logging

    from .workers import REGISTERED, run_workers

    module_name, _, attribute = args.function.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name}: {exc}") from None
    if attribute:
        fn = getattr(module, attribute, None)
        if not callable(fn):
            raise UsageError(f"{module_name} has no function {attribute!r}")
        activity = args.activity or next((name for name, each in REGISTERED.items() if each is fn), None)
        if activity is None:
            raise UsageError(f"give --activity: {args.function} is not registered with @worker")
        pairs = [(activity, fn)]
    else:
        pairs = [(name, fn) for name, fn in REGISTERED.items() if args.activity in (None, name)]
        if not pairs:
            raise UsageError(f"{module_name} registers no worker" + (f" for {args.activity}" if args.activity else ""))
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    import os

    run_workers(pairs, endpoint_url=args.endpoint_url, concurrency=args.concurrency, worker_name=args.worker_name,
                heartbeat_seconds=args.heartbeat,
                api_key=args.api_key if args.api_key is not None else os.environ.get("API_KEY"))
    return 0


JSON_HELP = "JSON text, or @FILE to read it from FILE"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m chalicelib", description=__doc__.split("\n", 1)[1].strip(),
        epilog="Exit status: 0 when the execution succeeded or suspended, 1 when it failed or timed out "
               "(or validate found problems, or the tested state FAILED), 2 on bad input or an invalid definition.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser(
        "run", help="run a state machine and print the result as JSON",
        description="Run a state machine and print the result as JSON. A SUSPENDED result lists its open "
                    "suspension points and carries the snapshot that resume continues.")
    p.add_argument("definition", help="path of the ASL definition (JSON)")
    p.add_argument("--input", default="{}", help=f"execution input: {JSON_HELP} (default: {{}})")
    p.add_argument("--virtual-time", action="store_true", help="skip Wait states and Retry intervals")
    p.set_defaults(func=cmd_run)

    p = commands.add_parser(
        "resume", help="answer a suspension point of a suspended execution and run on",
        description="Answer one open suspension point of a SUSPENDED result and run on; prints the new "
                    "result as JSON.",
        epilog="Example: python -m chalicelib run flow.json > result.json; "
               "python -m chalicelib resume flow.json p1 --snapshot @result.json --result '{\"ok\": true}'")
    p.add_argument("definition", help="path of the ASL definition the snapshot was run with")
    p.add_argument("point", nargs="?",
                   help="id of the suspension point to answer, e.g. p1 (may be left out when one is open)")
    p.add_argument("--point", dest="point_option", metavar="POINT", help="the same as the point argument")
    p.add_argument("--snapshot", required=True,
                   help=f"the whole result that run or resume printed, or its snapshot: {JSON_HELP}")
    p.add_argument("--result", default="{}", help=f"the answer: {JSON_HELP} (default: {{}})")
    p.add_argument("--error", help="fail the waiting task with this error instead (Retry and Catch apply)")
    p.add_argument("--cause", help="the cause that goes with --error")
    p.add_argument("--virtual-time", action="store_true", help="skip Wait states and Retry intervals")
    p.set_defaults(func=cmd_resume)

    p = commands.add_parser("validate", help="print the problems found in a definition",
                            description="Print the problems found in a definition, one a line.")
    p.add_argument("definition", help="path of the ASL definition (JSON)")
    p.set_defaults(func=cmd_validate)

    p = commands.add_parser(
        "test-state", help="run one state once, as Step Functions' TestState, and print what it did",
        description="Run one state once (a state's JSON, or a state machine and --state-name) and print its "
                    "status (SUCCEEDED, FAILED, RETRIABLE, CAUGHT_ERROR), output or error and cause, nextState, "
                    "and with --inspection-level DEBUG the data after each input and output step. Wait states "
                    "take no time.",
        epilog="Example: python -m chalicelib test-state state.json --input '{\"value\": 6}' "
               "--inspection-level DEBUG --mock-result '{\"ok\": true}'")
    p.add_argument("definition", help="path of the state's JSON, or of a state machine (with --state-name)")
    p.add_argument("--input", default="{}", help=f"the state's input: {JSON_HELP} (default: {{}})")
    p.add_argument("--state-name", help="the state to test in a state machine (at any depth)")
    p.add_argument("--inspection-level", choices=("INFO", "DEBUG", "TRACE"), default="INFO",
                   help="INFO: the outcome; DEBUG and TRACE: also inspectionData (default: %(default)s)")
    p.add_argument("--mock-result", help=f"what the Task's resource, or the Parallel or Map, returns: {JSON_HELP}")
    p.add_argument("--mock-error", help="the error the Task's resource, or the Parallel or Map, fails with")
    p.add_argument("--mock-cause", help="the cause that goes with --mock-error")
    p.add_argument("--variables", help=f"the variables in scope: {JSON_HELP} (an object)")
    p.add_argument("--context", help=f"parts of the context object (with a mock only): {JSON_HELP}")
    p.add_argument("--retrier-retry-count", type=int, default=0, metavar="N",
                   help="retries already made by the Retrier that matches the error (default: 0)")
    p.set_defaults(func=cmd_test_state)

    p = commands.add_parser("tick", help="fire the service's due timers (uses REDIS_URL)",
                            description="Fire the service's due timers once, or every SECONDS with --loop.")
    p.add_argument("--loop", type=float, metavar="SECONDS", help="keep ticking every SECONDS")
    p.set_defaults(func=cmd_tick)

    p = commands.add_parser("events", help="publish events to a running service (simulate FILE)",
                            description="Publish the events of a simulation file to POST /events, each after "
                                        "its delay, printing each answer (exit status 1 if any was refused).")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = actions.add_parser("simulate", help="publish the events of FILE with their delays",
                           epilog="Example: python -m chalicelib events simulate "
                                  "state_machines/simulations/marketplace-order.json")
    s.add_argument("file", help="a JSON list of events, each optionally {\"delaySeconds\": N, \"event\": {...}}")
    s.add_argument("--url", default="http://127.0.0.1:8000", help="the service (default: %(default)s)")
    s.add_argument("--api-key", help="the x-api-key to send (default: $API_KEY)")
    s.add_argument("--speed", type=float, default=1.0, help="multiply every delay by this (0: no delays)")
    s.set_defaults(func=cmd_events)

    p = commands.add_parser(
        "worker", help="run activity workers (boto3; this service or AWS Step Functions)",
        description="Poll an activity for tasks and run FUNCTION on each task's input until SIGTERM or SIGINT, "
                    "which let the tasks running finish. The function's result (JSON) is the task's output; "
                    "an exception fails the task with its class name as the error.",
        epilog="Example: python -m chalicelib worker --activity add mymodule:add --endpoint-url "
               "http://127.0.0.1:8000 --concurrency 4")
    p.add_argument("function", help="module:function, or a module whose @worker functions all run")
    p.add_argument("--activity", help="the activity's name or ARN (default: the one @worker registered)")
    p.add_argument("--endpoint-url", help="the service (default: AWS, or $AWS_ENDPOINT_URL_SFN)")
    p.add_argument("--concurrency", type=int, default=1, help="tasks run at once, one thread each (default: 1)")
    p.add_argument("--worker-name", help="the workerName polls send (default: host-pid, -N per thread)")
    p.add_argument("--heartbeat", type=float, default=10.0, metavar="SECONDS",
                   help="send a heartbeat every SECONDS while a task runs (default: 10)")
    p.add_argument("--api-key", help="the x-api-key to send, for a stage with API_KEY (default: $API_KEY)")
    p.set_defaults(func=cmd_worker)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"python -m chalicelib {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
