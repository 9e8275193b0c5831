"""Interpreter throughput: state transitions per second on four workloads.

Run from the project root::

    python bench/interpreter.py [--repeat 5]

Each workload is run ``--repeat`` times on a virtual clock after one warm-up
run (so compilation is cached, as it is for a service serving one definition);
the best run is reported. As a reference measured in the same process, the
``baseline`` line times a plain Python loop doing what one Pass transition
with InputPath/ResultPath does at the least (a dict lookup and a dict copy):
the ratio says how many such minimal steps one interpreted transition costs,
a figure that holds better across machines than the absolute rate.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from chalicelib.asl import VirtualClock, load, run  # noqa: E402


def pass_chain(length: int = 1000) -> tuple[dict, dict, int]:
    states = {}
    for i in range(length):
        state = {"Type": "Pass", "InputPath": "$", "Result": i, "ResultPath": "$.last"}
        if i + 1 < length:
            state["Next"] = f"S{i + 1}"
        else:
            state["End"] = True
        states[f"S{i}"] = state
    return {"StartAt": "S0", "States": states}, {"payload": {"a": 1}}, length


def map_items(count: int = 10_000) -> tuple[dict, dict, int]:
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {"StartAt": "Inner", "States": {"Inner": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }
    return definition, {"items": list(range(count))}, count + 1


def choice_loop(limit: int = 10_000) -> tuple[dict, dict, int]:
    definition = {
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": limit, "Next": "Done"}],
                "Default": "Increment",
            },
            "Increment": {
                "Type": "Pass",
                "Parameters": {"n.$": "States.MathAdd($.n, 1)"},
                "Next": "Check",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    return definition, {"n": 0}, 2 * limit + 1


def nested_intrinsics(length: int = 1000) -> tuple[dict, dict, int]:
    states = {}
    for i in range(length):
        state = {
            "Type": "Pass",
            "Parameters": {
                "name.$": "$.name",
                "greeting.$": "States.Format('Hello {} #{}', $.name, States.JsonToString(States.ArrayLength($.tags)))",
                "tags.$": "States.ArrayUnique(States.Array('a', 'b', 'a', $.name))",
                "sum.$": "States.MathAdd(States.ArrayGetItem($.numbers, 1), 10)",
                "numbers.$": "$.numbers",
            },
            "Next": f"S{i + 1}" if i + 1 < length else None,
        }
        if state["Next"] is None:
            del state["Next"]
            state["End"] = True
        states[f"S{i}"] = state
    return {"StartAt": "S0", "States": states}, {"name": "x", "tags": [1, 2], "numbers": [1, 2, 3]}, length


WORKLOADS = {
    "pass-chain-1000 (InputPath/ResultPath)": pass_chain,
    "map-10000-items (Pass inside)": map_items,
    "choice-loop-to-10000": choice_loop,
    "parameters-nested-intrinsics-1000": nested_intrinsics,
}


def baseline_rate(steps: int = 200_000) -> float:
    """Minimal Python work of one transition: a lookup and a shallow copy."""
    data = {"payload": {"a": 1}}
    keys = ("payload",)
    started = time.perf_counter()
    for i in range(steps):
        value = data
        for key in keys:
            value = value[key]
        data = dict(data)
        data["last"] = i
    return steps / (time.perf_counter() - started)


def measure(definition: dict, payload: dict, repeat: int) -> float:
    compiled = load(definition)
    run(compiled, payload, clock=VirtualClock())  # warm-up
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = run(compiled, payload, clock=VirtualClock())
        best = min(best, time.perf_counter() - started)
        assert result["status"] == "SUCCEEDED", result
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    reference = baseline_rate()
    print(f"python {sys.version.split()[0]}, best of {args.repeat} runs after a warm-up, one process, virtual clock")
    print(f"{'workload':42s} {'transitions':>11s} {'seconds':>8s} {'transitions/s':>14s} {'baseline/x':>10s}")
    for name, build in WORKLOADS.items():
        definition, payload, transitions = build()
        seconds = measure(definition, payload, args.repeat)
        rate = transitions / seconds
        print(f"{name:42s} {transitions:11d} {seconds:8.4f} {rate:14,.0f} {reference / rate:10.1f}")
    print(f"{'baseline (dict lookup + copy per step)':42s} {'':11s} {'':8s} {reference:14,.0f} {1.0:10.1f}")


if __name__ == "__main__":
    main()
