"""Command line: ``python -m chalicelib run|resume|validate|tick ...``."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from . import resume, run
from .asl import InvalidDefinition, SystemClock, VirtualClock, validate


def _read_json(text_or_file: str, what: str) -> Any:
    """JSON given inline, or ``@file`` / a file path."""
    source = text_or_file
    if text_or_file.startswith("@"):
        source = open(text_or_file[1:], encoding="utf-8").read()
    try:
        return json.loads(source)
    except ValueError as exc:
        raise SystemExit(f"error: {what} is not valid JSON: {exc}")


def _read_definition(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise SystemExit(f"error: cannot read {path}: {exc.strerror}")


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _invalid(exc: InvalidDefinition) -> int:
    _print({"status": "INVALID", "problems": [p.to_json() for p in exc.problems]})
    return 2


def cmd_run(args: argparse.Namespace) -> int:
    clock = VirtualClock() if args.virtual_time else SystemClock()
    try:
        result = run(_read_definition(args.definition), _read_json(args.input, "--input"), clock=clock)
    except InvalidDefinition as exc:
        return _invalid(exc)
    _print(result)
    return 0 if result["status"] in ("SUCCEEDED", "SUSPENDED") else 1


def cmd_resume(args: argparse.Namespace) -> int:
    clock = VirtualClock() if args.virtual_time else SystemClock()
    snapshot = _read_json(args.snapshot, "--snapshot")
    options: dict = {"clock": clock}
    if args.error:
        options.update(error=args.error, cause=args.cause)
    try:
        result = resume(_read_definition(args.definition), snapshot, args.point,
                        _read_json(args.result, "--result"), **options)
    except InvalidDefinition as exc:
        return _invalid(exc)
    except KeyError:
        raise SystemExit(f"error: suspension point {args.point!r} is not open in the snapshot")
    _print(result)
    return 0 if result["status"] in ("SUCCEEDED", "SUSPENDED") else 1


def cmd_validate(args: argparse.Namespace) -> int:
    problems = validate(_read_definition(args.definition))
    for problem in problems:
        print(problem.message)
    if not problems:
        print("no problems found")
    return 1 if problems else 0


def cmd_tick(args: argparse.Namespace) -> int:
    import time

    from .api.runtime import fire_timers

    while True:
        print(json.dumps(fire_timers()), flush=True)
        if not args.loop:
            return 0
        time.sleep(args.loop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("run", help="run a state machine and print the result as JSON")
    p.add_argument("definition", help="path of the ASL definition (JSON)")
    p.add_argument("--input", default="{}", help="execution input: JSON text or @file")
    p.add_argument("--virtual-time", action="store_true", help="skip Wait states and Retry intervals")
    p.set_defaults(func=cmd_run)

    p = commands.add_parser("resume", help="resume a suspended execution from its result JSON")
    p.add_argument("definition")
    p.add_argument("--snapshot", required=True, help="the 'snapshot' of a SUSPENDED result: JSON or @file")
    p.add_argument("--point", required=True, help="the id of the suspension point to answer")
    p.add_argument("--result", default="{}", help="the answer: JSON text or @file")
    p.add_argument("--error", help="fail the waiting task with this error instead")
    p.add_argument("--cause", help="the cause that goes with --error")
    p.add_argument("--virtual-time", action="store_true")
    p.set_defaults(func=cmd_resume)

    p = commands.add_parser("validate", help="print the problems found in a definition")
    p.add_argument("definition")
    p.set_defaults(func=cmd_validate)

    p = commands.add_parser("tick", help="fire the service's due timers (uses REDIS_URL)")
    p.add_argument("--loop", type=float, metavar="SECONDS", help="keep ticking every SECONDS")
    p.set_defaults(func=cmd_tick)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
