"""Worst-case regexes: Python's backtracking ``re`` (the old engine) against RE2 (the engine in use).

Run from the project root::

    python bench/regexes.py [--cap 10] [--repeat 3]

For each hostile pattern and text size N (10 ... 5,000 characters, and 256 KiB, the largest string a payload
holds), the time of one operation on each engine, measured in the same run:

* ``re``: ``re.search`` in a child process (a backtracking search cannot be interrupted in the process that
  runs it), killed after ``--cap`` seconds; a killed run prints as ``> cap``. Best of ``--repeat`` below 1 s.
* ``RE2``: the same operation through ``chalicelib.asl.regexes.compile_pattern``, best of ``--repeat``.

The last rows time the whole state through the interpreter (``run``: a Pass whose JSONPath filter or JSONata
``$match`` uses the pattern), and RE2's own worst case: all matches of ``[a-z]*X|a`` (every match's search reads
the rest of the text, so the sum grows with N squared), bounded by the JSONata time limit.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from chalicelib import run  # noqa: E402
from chalicelib.asl import VirtualClock, regexes  # noqa: E402
from chalicelib.asl.limits import MAX_PAYLOAD_BYTES  # noqa: E402
from bench.timing import best  # noqa: E402

SIZES = [10, 20, 25, 28, 100, 1_000, 5_000]
#: (name, pattern, text of N characters)
CASES = [
    ("nested repetition", r"(a+)+$", lambda n: "a" * (n - 1) + "!"),
    ("alternation under repetition", r"(a|aa)+$", lambda n: "a" * (n - 1) + "!"),
    ("stacked stars", r"a*a*a*b", lambda n: "a" * n),
]

CHILD = r"""
import re, sys, time
pattern, text, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
best = float("inf")
for _ in range(repeat):
    started = time.perf_counter()
    re.search(pattern, text)
    best = min(best, time.perf_counter() - started)
    if best > 1:
        break
print(best)
"""


def old_engine(pattern: str, text: str, cap: float, repeat: int) -> float | None:
    """Seconds for one ``re.search``, or None when it ran past ``cap``."""
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, pattern, text, str(repeat)],
                              capture_output=True, text=True, timeout=cap, check=True)
    except subprocess.TimeoutExpired:
        return None
    return float(done.stdout)


def seconds(value: float | None, cap: float) -> str:
    if value is None:
        return f"> {cap:g} s"
    return f"{value * 1e3:.3f} ms" if value < 1 else f"{value:.2f} s"


def ratio(old: float | None, new: float, cap: float) -> str:
    return f"> {cap / new:,.0f}" if old is None else f"{old / new:,.0f}"


def state_time(definition: dict, input: dict, repeat: int) -> float:
    def go():
        assert run(definition, input, clock=VirtualClock())["status"] == "SUCCEEDED"
    return best(go, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cap", type=float, default=10.0, help="seconds before a re search is killed")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print("| case | N | re | RE2 | re / RE2 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, pattern, make in CASES:
        compiled = regexes.compile_pattern(pattern)
        skip_old = False
        for size in [*SIZES, MAX_PAYLOAD_BYTES]:
            text = make(size)
            new = best(lambda: compiled.search(text), args.repeat)
            old = None if skip_old else old_engine(pattern, text, args.cap, args.repeat)
            skip_old = skip_old or old is None  # longer texts take longer still
            print(f"| {name} `{pattern}` | {size:,} | {seconds(old, args.cap)} | {seconds(new, args.cap)} "
                  f"| {ratio(old, new, args.cap)} |")

    print()
    print("| whole state on RE2 | N | time |")
    print("| --- | ---: | ---: |")
    jsonpath = {"StartAt": "F", "States": {"F": {"Type": "Pass", "End": True,
                                                 "Parameters": {"kept.$": "$.items[?(@.s =~ '(a+)+$')].s"}}}}
    jsonata = {"QueryLanguage": "JSONata", "StartAt": "P", "States": {"P": {
        "Type": "Pass", "End": True, "Output": "{% $count($match($states.input.s, /(a+)+$/)) %}"}}}
    all_matches = {"QueryLanguage": "JSONata", "StartAt": "P", "States": {"P": {
        "Type": "Pass", "End": True, "Output": "{% $count($match($states.input.s, /[a-z]*X|a/)) %}"}}}
    for size in [10, 1_000, 5_000, 50_000, MAX_PAYLOAD_BYTES - 100]:
        hostile = "a" * (size - 1) + "!"
        items = max(1, min(10, MAX_PAYLOAD_BYTES // 2 // size))  # the input fits in a payload
        print(f"| JSONPath `=~ '(a+)+$'`, {items} items | {size:,} | "
              f"{seconds(state_time(jsonpath, {'items': [{'s': hostile}] * items}, args.repeat), args.cap)} |")
        print(f"| JSONata `$match(/(a+)+$/)` | {size:,} | "
              f"{seconds(state_time(jsonata, {'s': hostile}, args.repeat), args.cap)} |")
        started = time.perf_counter()
        result = run(all_matches, {"s": "a" * size}, clock=VirtualClock())
        elapsed = time.perf_counter() - started
        outcome = "" if result["status"] == "SUCCEEDED" else f" ({result['error']}: stopped at the time limit)"
        print(f"| JSONata all matches of `[a-z]*X\\|a` | {size:,} | {seconds(elapsed, args.cap)}{outcome} |")


if __name__ == "__main__":
    main()
