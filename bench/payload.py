"""The payload size check on a large payload: a 250 KB input through 1,000 Pass states.

Run from the project root::

    python bench/payload.py [--repeat 3]

Each Pass sets ``$.last`` (ResultPath), so every output is a new object that
shares the rest of the input. Measured in the same run, best of ``--repeat``:
the run as shipped (``SizeCache``: exact sizes of what was measured before, so a
check costs what changed), and the same run with the full-size check every
transition (``payload_size``, the old check, kept here only as the reference).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from chalicelib.asl import VirtualClock, load, limits, run  # noqa: E402
from bench.timing import best  # noqa: E402


def chain(length: int = 1000) -> dict:
    states = {f"S{i}": {"Type": "Pass", "Result": i, "ResultPath": "$.last",
                        **({"Next": f"S{i + 1}"} if i + 1 < length else {"End": True})} for i in range(length)}
    return {"StartAt": "S0", "States": states}


def payload() -> dict:
    rows = [{"id": i, "name": f"item {i}", "tags": ["a", "b"], "note": "x" * 40} for i in range(2_650)]
    return {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    compiled, data = load(chain()), payload()
    size = limits.payload_size(data, float("inf"))

    def go():
        assert run(compiled, data, clock=VirtualClock())["status"] == "SUCCEEDED"

    shipped = best(go, args.repeat)
    original = limits.cached_size
    limits.cached_size = lambda value, cache, max_depth=None: limits.payload_size(value)  # the old check
    try:
        full = best(go, args.repeat)
    finally:
        limits.cached_size = original
    print(f"{size:,}-byte payload through 1,000 Pass states (ResultPath), best of {args.repeat}")
    print(f"{'incremental check (shipped)':34s} {shipped * 1000:9.1f} ms")
    print(f"{'full-size check each transition':34s} {full * 1000:9.1f} ms")
    print(f"{'speed-up (target >= 20)':34s} {full / shipped:9.1f}")


if __name__ == "__main__":
    main()
