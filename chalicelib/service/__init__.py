"""The service: executions and their continuations, on top of the interpreter and the store.

- ``runs``: the core every operation shares: load, run the interpreter, commit;
- ``executions``: start, run on in the background, stop, describe;
- ``listing``: executions a page at a time, newest first, filtered (the store keeps the index);
- ``redemption``: claim and answer continuations, heartbeats, what a continuation asks;
- ``fanout``: the root Parallel's or Map's open branches stored apart, and put back together;
  ``branches``: answering a point in one of them by reading and writing that branch alone;
  ``points``: one point of an execution read alone (its branch, when it is in one stored apart);
- ``holders``: what the holder of one continuation ID is told (never the execution document);
- ``machines``: state machines by name, shipped and registered;
- ``timers``: durable time (Waits, timeouts, heartbeats, children that ended);
- ``children``: ``states:startExecution`` tasks; ``catalog``: the shipped ``state_machines/``;
- ``map_runs``: a Distributed Map's children as child executions, run in chunks by workers;
- ``events``: executions started and resumed by events (``patterns``: EventBridge's event patterns);
- ``activities``: activity tasks, queued for workers that poll for them;
- ``calls``: the outbox of task-token calls; ``names``: who holds an execution name;
- ``state_tests``: one state run on its own (TestState); ``redrives``: executions run again where they stopped;
- ``definitions``, ``ids``, ``tokens``, ``waits``, ``errors``, ``questions``, ``statuses``: their parts.

It knows nothing of HTTP or pages: whoever presents questions passes a
:class:`Questions` in. May import: ``chalicelib.asl``, ``chalicelib.resources``,
``chalicelib.store``, ``chalicelib.config``.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from ..config import Settings
from ..store import Claim, Store
from .activities import Activities
from .branches import Branches
from .definitions import disallowed_resources
from .errors import ServiceError
from .events import Events
from .executions import Executions
from .holders import PRIVATE_OUTPUT
from .machines import StateMachines
from .points import Points
from .map_runs import MapRuns
from .listing import list_executions
from .questions import Questions
from .redemption import Redemptions, answer_digest
from .redrives import Redrives
from .runs import Runs, continuation_expiry
from .state_tests import run_state_test
from .statuses import FINISHED, STATUSES
from .timers import Timers

__all__ = ["FINISHED", "PRIVATE_OUTPUT", "STATUSES", "Questions", "Service", "ServiceError", "answer_digest",
           "continuation_expiry", "disallowed_resources"]


class Service:
    """One object for callers: each method is carried out by the part that owns it."""

    def __init__(self, settings: Settings, store: Store, *, clock=None, handlers=None,
                 dispatch: Callable[[str], None] | None = None, questions: Questions | None = None,
                 resolvers: Iterable = (), dispatch_worker: Callable[[str], None] | None = None):
        """``dispatch`` runs an execution on elsewhere, ``dispatch_worker`` one worker of a map run."""
        self.runs = Runs(settings, store, clock=clock, handlers=handlers, dispatch=dispatch,
                         questions=questions, resolvers=resolvers)
        self.executions = Executions(self.runs)
        self.runs.branches = Branches(self.runs)
        self.runs.points = Points(self.runs)
        self.redemptions = Redemptions(self.runs)
        self.redrives = Redrives(self.runs, self.executions)
        self.map_runs = self.runs.map_runs = MapRuns(self.runs, self.executions, self.redemptions)
        if dispatch_worker is not None:
            self.map_runs.dispatch_worker = dispatch_worker
        self.timers = Timers(self.runs, self.executions, self.redemptions, self.map_runs)
        self.machines = StateMachines(settings, store, self.runs.clock)
        self.runs.start_child = self.executions.start
        self.runs.on_finished = self.timers.child_finished
        self.events = self.runs.events = Events(self.runs, self.executions, self.redemptions)
        self.activities = self.runs.activities = Activities(self.runs)

    @property
    def settings(self) -> Settings:
        return self.runs.settings

    @property
    def store(self) -> Store:
        return self.runs.store

    @property
    def clock(self):
        return self.runs.clock

    @property
    def questions(self) -> Questions:
        return self.runs.questions

    # -- executions -------------------------------------------------------------

    def start(self, definition: Any, input: Any, *, state_machine: str | None, trusted: bool,
              name: str | None = None, parent: dict | None = None, dispatch: bool = True) -> dict:
        return self.executions.start(definition, input, state_machine=state_machine, trusted=trusted,
                                     name=name, parent=parent, dispatch=dispatch)

    def describe(self, execution_id: str, with_history: bool = True, **page) -> dict:
        """``page``: ``limit``, ``next_token``, ``history_limit``, ``history_token`` (see ``Executions.describe``)."""
        return self.executions.describe(execution_id, with_history, **page)

    def abort(self, execution_id: str) -> dict:
        return self.executions.abort(execution_id)

    def redrive(self, execution_id: str, client_token: str | None = None) -> dict:
        """Run an execution that ended FAILED, TIMED_OUT or ABORTED again from where it stopped (see ``redrives``)."""
        return self.redrives.redrive(execution_id, client_token)

    def redrive_status(self, execution_id: str) -> tuple[str, str | None]:
        """``REDRIVABLE``, or ``NOT_REDRIVABLE`` and why."""
        return self.redrives.status(execution_id)

    def continue_running(self, execution_id: str, seconds: float | None = None) -> dict | None:
        return self.executions.continue_running(execution_id, seconds)

    def work_map_run(self, run_id: str, seconds: float | None = None) -> int:
        """Be one worker of a map run (see ``map_runs``): how many children it ran."""
        return self.map_runs.work(run_id, seconds)

    def definition_of(self, execution_id: str) -> dict:
        return self.executions.definition_of(execution_id)

    def list_executions(self, *, state_machine: str | None = None, status: str | None = None,
                        limit: int | None = None, next_token: str | None = None) -> dict:
        """A page of executions, newest first (see ``listing``)."""
        return list_executions(self.store, self.clock.now(), state_machine=state_machine, status=status,
                               next_token=next_token, **({} if limit is None else {"limit": limit}))

    def test_state(self, definition: Any, input: Any, *, trusted: bool = False, **options) -> dict:
        """TestState: one state run once (``chalicelib.asl.one_state``), calling the stage's task resources
        unless ``mock`` stands in for them; an untrusted definition may call only the allowed ones."""
        return run_state_test(self.runs, definition, input, trusted=trusted, **options)

    # -- continuations ----------------------------------------------------------

    def redeem(self, continuation: str, *, result: Any = None, error: str | None = None,
               cause: str | None = None, digest: str | None = None) -> dict:
        return self.redemptions.redeem(continuation, result=result, error=error, cause=cause, digest=digest)

    def claim(self, continuation: str) -> Claim:
        return self.redemptions.claim(continuation)

    def heartbeat(self, continuation: str) -> dict:
        return self.redemptions.heartbeat(continuation)

    def describe_continuation(self, continuation: str) -> dict:
        return self.redemptions.describe_continuation(continuation)

    def answer_trail(self, continuation: str) -> list[str]:
        return self.redemptions.answer_trail(continuation)

    def continuation_links(self, continuation: str, parameters: Any) -> dict:
        return self.questions.links(continuation, parameters)

    # -- events -----------------------------------------------------------------

    def publish(self, entries: list) -> list[dict]:
        """Deliver events (EventBridge's envelope or PutEvents entries); per event, what it did."""
        return self.events.publish(entries)

    # -- time -------------------------------------------------------------------

    def tick(self, limit: int = 500) -> dict[str, int]:
        return self.timers.tick(limit)
