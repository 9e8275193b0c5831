"""Execution statuses as the service reports them."""
from ..store import STATUSES  # every status an execution can have (the store's index lists them)

__all__ = ["FINISHED", "STATUSES"]

#: An execution in one of these has ended: it keeps no snapshot and answers nothing more.
FINISHED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
