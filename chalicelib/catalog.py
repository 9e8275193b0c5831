"""The state machines shipped in ``state_machines/`` (trusted definitions)."""
from __future__ import annotations

import json
import os
import re

_HERE = os.path.dirname(os.path.abspath(__file__))
#: Where definitions are looked for: a copy inside the package (what a Lambda
#: deployment has, see the README's "Deploy to AWS"), then the project's folder.
SEARCH_PATH = (
    os.path.join(_HERE, "state_machines"),
    os.path.join(os.path.dirname(_HERE), "state_machines"),
)
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def folder() -> str | None:
    override = os.environ.get("STATE_MACHINES_DIR")
    for path in ((override,) if override else SEARCH_PATH):
        if path and os.path.isdir(path):
            return path
    return None


def names() -> list[str]:
    path = folder()
    if path is None:
        return []
    return sorted(f[:-5] for f in os.listdir(path) if f.endswith(".json"))


def load_text(name: str) -> str | None:
    """The definition text of ``name`` (with or without ``.json``), or None."""
    if name.endswith(".json"):
        name = name[:-5]
    path = folder()
    if path is None or not _NAME.match(name) or name.startswith("."):
        return None
    file = os.path.join(path, name + ".json")
    if not os.path.isfile(file):
        return None
    with open(file, encoding="utf-8") as handle:
        return handle.read()


def load(name: str) -> dict | None:
    text = load_text(name)
    return None if text is None else json.loads(text)
