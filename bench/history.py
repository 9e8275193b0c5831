"""What the history costs: a 100,000-transition loop with and without the service's listener.

Run from the project root::

    python bench/history.py [--transitions 100000] [--repeat 3]

The loop is a Choice and a Pass counting up (two transitions a round), on the
real clock as the service runs it. Measured in the same run, best of
``--repeat`` each: the pure interpreter (no listener); the same run with the
service's listener (``EventLog`` keeping the latest ``HISTORY_LIMIT`` events)
plus writing out and compressing what a commit stores of them (``pack_record``).
The ratio of the two is what history adds (target: at most 1.5). As a reference, a plain
listener function (a dict per event, what the service used before) in the same run.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from chalicelib.asl import SystemClock, load, run  # noqa: E402
from chalicelib.asl.history import EventLog  # noqa: E402
from chalicelib.store.records import ExecutionRecord, pack_record  # noqa: E402
from bench.timing import best  # noqa: E402

HISTORY_LIMIT = 1000


def loop(limit: int) -> dict:
    return {"StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": limit,
                                                 "Next": "Done"}], "Default": "Increment"},
        "Increment": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "Check"},
        "Done": {"Type": "Succeed"}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transitions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    compiled = load(loop(args.transitions // 2))

    def pure():
        assert run(compiled, {"n": 0}, clock=SystemClock())["status"] == "SUCCEEDED"

    def with_history():
        log = EventLog(HISTORY_LIMIT)
        result = run(compiled, {"n": 0}, clock=SystemClock(), listener=log)
        record = ExecutionRecord(id="x", version=0, status=result["status"], definition_hash="0",
                                 document={"output": result["output"]}, snapshot=None, open={})
        pack_record(record, log.events())

    def plain_listener():  # the reference: a dict per event, as a listener function gets them (the old way)
        events: list = []
        result = run(compiled, {"n": 0}, clock=SystemClock(), listener=events.append)
        record = ExecutionRecord(id="x", version=0, status=result["status"], definition_hash="0",
                                 document={"output": result["output"]}, snapshot=None, open={})
        pack_record(record, events[-HISTORY_LIMIT:])

    plain, listened = best(pure, args.repeat), best(with_history, args.repeat)
    reference = best(plain_listener, args.repeat)
    print(f"loop of {args.transitions:,} transitions, real clock, best of {args.repeat} after a warm-up")
    print(f"{'pure interpreter':40s} {plain:8.3f} s")
    print(f"{'with the history listener + encoding':40s} {listened:8.3f} s")
    print(f"{'ratio (target <= 1.5)':40s} {listened / plain:8.2f}")
    print(f"{'a plain listener (dict per event)':40s} {reference:8.3f} s   ratio {reference / plain:.2f}")


if __name__ == "__main__":
    main()
