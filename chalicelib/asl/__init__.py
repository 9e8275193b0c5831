"""A pure interpreter for the Amazon States Language: no network, no storage.

It imports nothing outside this package: a Task calls only the handlers its
caller passes in (``chalicelib.run`` passes the built-in task resources)::

    from chalicelib.asl import run, resume, VirtualClock

    result = run(definition, {"value": 6}, handlers={"module:double": double})
    if result["status"] == "SUSPENDED":
        point = result["suspensions"][0]["id"]
        result = resume(definition, result["snapshot"], point, {"approved": True})
"""
from .clock import SystemClock, VirtualClock
from .errors import StatesError
from .interpreter import InvalidDefinition, UnknownSuspension, load, proceed, redrive, resume, run, run_virtual
from .tasks import Suspend, TaskContext, TaskFailed
from .validation import Problem, validate

__all__ = [
    "InvalidDefinition",
    "Problem",
    "StatesError",
    "Suspend",
    "SystemClock",
    "TaskContext",
    "TaskFailed",
    "UnknownSuspension",
    "VirtualClock",
    "load",
    "proceed",
    "redrive",
    "resume",
    "run",
    "run_virtual",
    "validate",
]
