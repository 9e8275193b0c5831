"""Execution statuses as the service reports them."""

#: An execution in one of these has ended: it keeps no snapshot and answers nothing more.
FINISHED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
