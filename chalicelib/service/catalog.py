"""The state machines shipped in ``state_machines/`` (trusted definitions)."""
from __future__ import annotations

import json
import os
import re

#: The project's ``state_machines/`` folder, next to ``chalicelib/`` at the project's root. The Lambda
#: package has it at the same place: ``vendor/state_machines`` is a symlink to
#: it, and Chalice copies what ``vendor/`` holds (following symlinks) into the
#: package's root. ``STATE_MACHINES_DIR`` overrides it.
DEFAULT_FOLDER = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "state_machines")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def folder() -> str | None:
    path = os.environ.get("STATE_MACHINES_DIR") or DEFAULT_FOLDER
    return path if os.path.isdir(path) else None


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
