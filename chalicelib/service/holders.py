"""What the holder of one continuation ID is told: the one place every holder route's answer is built.

A continuation ID (or a decision link) lets its holder read one question, answer it
once, fail it and heartbeat it, and nothing else. So a holder is never given the
execution document, which lists every open continuation with its ID and links:

* :func:`description` is what the continuation asks (``GET /continuations/{id}``,
  a heartbeat, a decision link opened, the question page): its own state, branch,
  kind, parameters, expiry and links, its status and, once answered, its answer.
* :func:`answer_view` is the answer to an answer (``POST /continuations/{id}``,
  ``/failure``, a decision link's button, ``POST /?continuation=K``, the approval
  pages' outcome page), a fresh one or a replay: what became of this answer.
  The execution's ID and status; the continuation's ID, state and branch; whether
  it was answered with a result or a failure, when, and whether this request was
  a replay; the state names the execution waits at now (no IDs, no links, no
  parameters); and the execution's ``output`` (or ``error`` and ``cause``) once it
  ended, unless the waiting task marked them private.

A task marks them private with ``"PrivateOutput": true`` in its Parameters (its
Arguments in JSONata): a payload-template key, which AWS and statelint accept
anywhere, where a top-level field of the definition would be refused. The
holder's answer then says ``"outputPrivate": true`` instead; the caller with the
API key still sees everything (``GET /executions/{id}``).
"""
from __future__ import annotations

from typing import Any

__all__ = ["PRIVATE_OUTPUT", "answer_view", "description", "output_private"]

#: The key of a waiting task's Parameters (or Arguments) that keeps the execution's outcome from its holder.
PRIVATE_OUTPUT = "PrivateOutput"
OUTCOME_FIELDS = ("output", "error", "cause")


def output_private(parameters: Any) -> bool:
    """Whether the question ``parameters`` asks keeps the execution's output from its holder."""
    return isinstance(parameters, dict) and parameters.get(PRIVATE_OUTPUT) is True


def description(continuation: str, *, status: str, execution_id: str, execution_status: str, about: dict,
                expires_at: str, links: dict, answer: Any = None, reason: str = "") -> dict:
    """What one continuation asks, and what became of it; ``links`` only while it waits."""
    info = {
        "id": continuation,
        "status": status,
        "executionId": execution_id,
        "executionStatus": execution_status,
        "state": about.get("state"),
        "branch": about.get("branch"),
        "kind": about.get("kind"),
        "parameters": about.get("parameters"),
        "expiresAt": expires_at,
    }
    if status == "waiting":
        info.update(links)
    if answer is not None:
        info["answer"] = answer
    if reason:
        info["reason"] = reason
    return info


def answer_view(continuation: str, about: dict, document: dict, *, failed: bool, answered_at: str,
                replay: bool = False) -> dict:
    """The answer to the holder who answered ``continuation`` (which asked ``about``).

    ``document`` is the execution document as it stands after the answer; only
    the fields named in the module's docstring are taken from it.
    """
    view = {
        "executionId": document["executionId"],
        "status": document["status"],
        "continuation": continuation,
        "state": about.get("state"),
        "branch": about.get("branch"),
        "answered": "failure" if failed else "result",
        "answeredAt": answered_at,
        "replay": replay,
        "waitingAt": [waiting["state"] for waiting in document.get("continuations", ())],
    }
    if output_private(about.get("parameters")):
        view["outputPrivate"] = True
    else:
        view.update({field: document[field] for field in OUTCOME_FIELDS if field in document})
    return view
