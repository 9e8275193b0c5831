"""State machines by name: the shipped ``state_machines/`` and the ones registered in Redis.

A shipped machine (trusted) is read-only: it cannot be updated or deleted, and creating one
with its name succeeds only with its own definition. A registered machine came from a caller,
so its definition is checked against the stage's ``ALLOWED_RESOURCES`` when it is created or
updated, and again at each start. Creating is idempotent: the same name with the same
definition, role and type answers the machine that exists; anything else is
``StateMachineAlreadyExists``. Its ``revisionId`` is its definition's content hash, which is
also what each execution keeps: an update changes what new executions run, never a running one.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ..config import Settings
from ..store import Store
from . import catalog
from .definitions import compile_definition
from .errors import ServiceError

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
TYPES = ("STANDARD", "EXPRESS")


@dataclass
class Machine:
    name: str
    definition: str
    role_arn: str | None
    type: str
    created: float
    updated: float
    revision: str
    shipped: bool
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


def not_found(name: str) -> ServiceError:
    return ServiceError(404, "StateMachineNotFound", f"There is no state machine named {name!r}.")


class StateMachines:
    def __init__(self, settings: Settings, store: Store, clock):
        self.settings = settings
        self.registry = store.machines
        self.clock = clock

    def _compile(self, text: str):
        return compile_definition(text, trusted=False, allowed_resources=self.settings.allowed_resources)

    def get(self, name: str) -> Machine | None:
        text = catalog.load_text(name)
        if text is not None:
            path = os.path.join(catalog.folder() or "", name.removesuffix(".json") + ".json")
            when = os.path.getmtime(path)
            compiled = compile_definition(text, trusted=True, allowed_resources=())
            return Machine(name.removesuffix(".json"), text, None, "STANDARD", when, when, compiled.hash, True,
                           tags=self.registry.tags(name))
        if not NAME.match(name):
            return None
        fields = self.registry.get(name)
        if fields is None:
            return None
        return Machine(name, fields["definition"], fields.get("roleArn") or None, fields["type"],
                       float(fields["created"]), float(fields["updated"]), fields["revision"], False,
                       fields.get("description", ""), tags=self.registry.tags(name))

    def require(self, name: str) -> Machine:
        machine = self.get(name)
        if machine is None:
            raise not_found(name)
        return machine

    def definition(self, name: str) -> tuple[str, bool] | None:
        """What a start by name runs: (definition text, trusted), or None."""
        text = catalog.load_text(name)
        if text is not None:
            return text, True
        fields = self.registry.get(name) if NAME.match(name) else None
        return None if fields is None else (fields["definition"], False)

    def create(self, name: str, definition: str, *, role_arn: str, type: str = "STANDARD",
               tags: dict[str, str] | None = None, description: str = "") -> tuple[Machine, bool]:
        """(the machine, whether it was created now)."""
        if not NAME.match(name):
            raise ServiceError(400, "InvalidName", f"Invalid Name: '{name}'")
        compiled = self._compile(definition)
        existing = self.get(name)
        if existing is None:
            now = self.clock.now()
            fields = {"definition": definition, "roleArn": role_arn, "type": type, "created": repr(now),
                      "updated": repr(now), "revision": compiled.hash, "description": description}
            if self.registry.create(name, fields, tags or {}) is None:
                return self.require(name), True
            existing = self.require(name)  # created by a request at the same moment
        same = (existing.revision == compiled.hash and existing.type == type
                and (existing.shipped or existing.role_arn == role_arn))
        if not same:
            raise ServiceError(409, "StateMachineAlreadyExists",
                               f"State Machine Already Exists: '{name}' (with another definition, role or type).")
        return existing, False

    def update(self, name: str, *, definition: str | None = None, role_arn: str | None = None) -> Machine:
        machine = self.require(name)
        if machine.shipped:
            raise ServiceError(400, "StateMachineReadOnly",
                               f"'{name}' is shipped in state_machines/ and cannot be changed here.")
        changes = {"updated": repr(self.clock.now())}
        if definition is not None:
            changes.update(definition=definition, revision=self._compile(definition).hash)
        if role_arn is not None:
            changes["roleArn"] = role_arn
        if not self.registry.update(name, changes):
            raise not_found(name)
        return self.require(name)

    def delete(self, name: str) -> None:
        machine = self.get(name)
        if machine is None:
            return  # deleting is idempotent
        if machine.shipped:
            raise ServiceError(400, "StateMachineReadOnly",
                               f"'{name}' is shipped in state_machines/ and cannot be deleted here.")
        self.registry.delete(name)

    def names(self, after: str | None, limit: int) -> tuple[list[str], bool]:
        """Shipped and registered names in order after ``after``: (at most ``limit``, whether more follow)."""
        shipped = [n for n in catalog.names() if after is None or n > after]
        registered = self.registry.names(after, limit + 1)
        merged = sorted(set(shipped[:limit + 1]) | set(registered))
        return merged[:limit], len(merged) > limit

    def tag(self, name: str, tags: dict[str, str]) -> None:
        machine = self.require(name)
        if not self.registry.tag(name, tags, shipped=machine.shipped):
            raise not_found(name)

    def untag(self, name: str, keys: list[str]) -> None:
        self.require(name)
        self.registry.untag(name, keys)
