"""Small builders shared by the interpreter's tests."""
from __future__ import annotations

import json
import subprocess
import sys

from chalicelib import run
from chalicelib.asl import VirtualClock

from .conftest import ROOT

START = 1_700_000_000.0  # 2023-11-14T22:13:20Z
#: How long a hostile case may run in its child process before the test fails (instead of hanging).
DEADLINE_SECONDS = 20


def run_in_child(definition: dict, input: object) -> dict:
    """``run(definition, input)`` in a child process killed after ``DEADLINE_SECONDS``."""
    code = ("import json, sys; from chalicelib import run; "
            "d, i = json.loads(sys.argv[1]), json.loads(sys.argv[2]); "
            "print(json.dumps(run(d, i)))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(definition), json.dumps(input)],
                          cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE_SECONDS, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def chain(*states: tuple[str, dict], **top) -> dict:
    """A definition chaining the given states in order (the last one ends)."""
    names = [name for name, _ in states]
    out = {}
    for i, (name, spec) in enumerate(states):
        spec = dict(spec)
        if spec["Type"] not in ("Choice", "Succeed", "Fail") and "Next" not in spec and "End" not in spec:
            if i + 1 < len(states):
                spec["Next"] = names[i + 1]
            else:
                spec["End"] = True
        out[name] = spec
    return {"StartAt": names[0], "States": out, **top}


def go(definition, input=None, **kw):
    """Run on a virtual clock that starts at START."""
    kw.setdefault("clock", VirtualClock(START))
    return run(definition, input, **kw)


def roundtrip(snapshot):
    """The snapshot as another process would get it back from storage."""
    return json.loads(json.dumps(snapshot))
