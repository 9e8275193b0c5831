"""The approver's pages: what a continuation asks, the answer, and why a link no longer works; and the
developer's: the executions, and one execution with its questions, history and diagram.

Each function reads through the service and returns a :class:`pages.Page`.
None of them changes anything except :func:`submit`, which redeems.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from . import diagram, forms, pages
from .pages import Page
from ..service import Service, ServiceError

STATUS_TEXT = {
    "SUCCEEDED": "The workflow has finished.",
    "FAILED": "The workflow has ended with an error.",
    "TIMED_OUT": "The workflow has ended: it ran out of time.",
    "ABORTED": "The workflow was cancelled.",
    "RUNNING": "The workflow is still running.",
    "EXPIRED": "The workflow's record is no longer kept.",
}


def _page(service: Service, template: str, status: int = 200, **context: Any) -> Page:
    return pages.page(template, status, script_url=service.settings.diagram_script_url, **context)


def page_url(service: Service, continuation: str) -> str:
    """Where the continuation's page is, for a service whose questions are approval questions."""
    return service.questions.page_url(continuation)


def _heading(question: forms.Question, info: dict) -> str:
    return question.title or f"The workflow is waiting for an answer at “{info.get('state')}”"


def _expires(info: dict) -> str:
    return pages.friendly_time(info.get("expiresAt"))


def _diagram(service: Service, execution_id: str, waiting=(), visited=()) -> str:
    try:
        return diagram.mermaid(service.definition_of(execution_id), waiting, visited)
    except ServiceError:
        return ""


def status_text(status: str, waiting: list[str]) -> str:
    if status == "SUSPENDED":
        return "It now waits at: " + ", ".join(waiting) + "." if waiting else "It is waiting."
    return STATUS_TEXT.get(status, f"The workflow's status is {status}.")


# -- the question -------------------------------------------------------------------------

def question_page(service: Service, info: dict, *, form: dict | None = None,
                  errors: dict[str, str] | None = None, status: int = 200) -> Page:
    """The question and its form; with ``form`` and ``errors``, as submitted, with the errors."""
    question = forms.question_of(info["parameters"])
    choice, inputs, summary = form_view(question, form or {}, errors or {})
    return _page(service, "question.html", status, heading=_heading(question, info), question=question,
                 data=pages.data_rows(question.data), expires=_expires(info), choice=choice,
                 inputs=inputs, summary=summary, execution_id=info["executionId"],
                 diagram=_diagram(service, info["executionId"], waiting=[info["state"]]),
                 where=f"It waits for this answer at the step “{info['state']}”.")


def form_view(question: forms.Question, form: dict[str, list[str]], errors: dict[str, str]):
    """The form's controls with their values and errors, and the error summary."""
    def value(name: str) -> str:
        values = form.get(name)
        return values[0] if values else ""

    choice = None
    summary = []
    if question.choices:
        choice = {"name": question.choice_field, "options": question.choices,
                  "value": value(question.choice_field), "error": errors.get(question.choice_field)}
        if choice["error"]:
            summary.append({"id": "choice-1", "label": "Decision", "message": choice["error"]})
    inputs = []
    for index, field in enumerate(question.fields, 1):
        entry = {"id": f"field-{index}", "name": field.name, "label": field.label, "type": field.type,
                 "required": field.required, "options": field.options, "value": value(field.name),
                 "checked": bool(form.get(field.name)), "error": errors.get(field.name)}
        inputs.append(entry)
        if entry["error"]:
            summary.append({"id": entry["id"], "label": field.label, "message": entry["error"]})
    known = {question.choice_field} | {f.name for f in question.fields}
    summary += [{"id": "", "label": name or "Answer", "message": message}
                for name, message in errors.items() if name not in known]
    return choice, inputs, summary


def confirm_page(service: Service, info: dict, choice: str) -> Page:
    """A decision link's page: the question and one button that sends ``choice``."""
    question = forms.question_of(info["parameters"])
    _, inputs, _ = form_view(question, {}, {})
    return _page(service, "confirm.html", heading=_heading(question, info), question=question,
                 data=pages.data_rows(question.data), choice=choice, inputs=inputs,
                 expires=_expires(info), page_url=page_url(service, info["id"]),
                 execution_id=info["executionId"],
                 diagram=_diagram(service, info["executionId"], waiting=[info["state"]]),
                 where=f"It waits for this answer at the step “{info['state']}”.")


# -- answering ----------------------------------------------------------------------------

def read_answer(service: Service, continuation: str, form: dict[str, list[str]],
                choice: str | None = None) -> tuple[dict, dict]:
    """The typed answer a submitted form gives (``choice`` fixed by a decision link).

    Raises 422 ``InvalidAnswer`` when it does not fit; ``detail`` carries what a
    page needs to show the form again. Nothing is claimed.
    """
    info = service.describe_continuation(continuation)
    if info["status"] != "waiting":
        return {}, info  # the redemption says why it cannot be answered
    question = forms.question_of(info["parameters"])
    if choice is not None:
        form = {**form, question.choice_field: [choice]}
    answer, errors = forms.read_form(question, form)
    if errors:
        raise InvalidForm(info, form, errors)
    return answer, info


class InvalidForm(ServiceError):
    """A submitted form that does not fit the question: 422, and the form to show again."""

    def __init__(self, info: dict, form: dict, errors: dict[str, str]):
        super().__init__(422, "InvalidAnswer", "The answer does not fit the question.", fieldErrors=errors)
        self.info = info
        self.form = form


def outcome_page(service: Service, continuation: str, info: dict, answer: dict, answered: dict) -> Page:
    """After an answer: what was answered and where the workflow went.

    ``answered`` is what the redemption told the holder (``holders.answer_view``): the page
    shows nothing more than that, the question and the definition's diagram.
    """
    question = forms.question_of(info.get("parameters"))
    waiting = answered["waitingAt"]
    trail = service.answer_trail(continuation)
    return _page(service, "outcome.html", heading=_heading(question, info),
                 answer=pages.answer_rows(question, answer), trail=trail,
                 status_text=status_text(answered["status"], waiting), execution_id=answered["executionId"],
                 diagram=_diagram(service, answered["executionId"], waiting=waiting,
                                  visited=[info["state"], *trail]), where="")


# -- when a continuation cannot be answered -----------------------------------------------

def refusal_page(service: Service, continuation: str, error: ServiceError) -> Page:
    """The friendly page for an error about a continuation (unknown, answered, expired...)."""
    if isinstance(error, InvalidForm):
        return question_page(service, error.info, form=error.form, errors=error.extra["fieldErrors"],
                             status=422)
    if error.code == "InvalidAnswer":
        info = service.describe_continuation(continuation)
        return question_page(service, info, errors=error.extra.get("fieldErrors"), status=422)
    if error.code == "ContinuationNotFound":
        return unknown_page(service)
    if error.code in ("ContinuationAlreadyRedeemed", "ContinuationBusy", "ContinuationExpired"):
        try:
            info = service.describe_continuation(continuation)
        except ServiceError:
            return unknown_page(service)
        return status_page(service, info, error.status)
    if error.code == "InvalidSignature":
        return message_page(service, error.status, "Link changed", "This decision link does not work",
                            ["The link was changed or cut short, so it cannot decide anything. Use the link "
                             "exactly as it came, or open the request and answer there."],
                            link={"url": page_url(service, continuation), "text": "Open the request"})
    return error_page(service, error)


def status_page(service: Service, info: dict, status: int | None = None) -> Page:
    """A continuation that no longer waits: answered, expired, cancelled or passed by."""
    question = forms.question_of(info.get("parameters"))
    subject = f"“{question.title}”" if question.title else "This request"
    if info["status"] == "redeemed":
        answer = info.get("answer") or {}
        failure = answer.get("error")
        return _page(service, "answered.html", status or 200,
                     heading=question.title or "This request has already been answered",
                     answered_at=pages.friendly_time(answer.get("at")),
                     answer=[] if failure else pages.answer_rows(question, answer.get("result")),
                     failure=failure, status_text=status_text(info["executionStatus"], []),
                     execution_id=info["executionId"], diagram="")
    if info["status"] == "waiting" and status == 409:  # another request holds it this moment
        return message_page(service, 409, "Busy", "This request is being answered just now",
                            ["Another answer is being recorded at this moment, so yours was not sent. "
                             "Reload the page in a few seconds to see the result."],
                            execution_id=info["executionId"])
    reason = info.get("reason", "")
    if reason == "aborted" or info["executionStatus"] == "ABORTED":
        return message_page(service, status or 410, "Cancelled", "This request was cancelled",
                            [f"{subject} no longer needs an answer: the workflow that asked it was "
                             "stopped. Nothing was changed."], execution_id=info["executionId"])
    if info["status"] == "expired" or reason in ("timeout", "heartbeat-timeout"):
        return message_page(service, status or 410, "Expired", "This request has expired",
                            [f"{subject} could be answered until {pages.friendly_time(info['expiresAt'])}. "
                             "That time has passed, so the link no longer works and nothing was changed.",
                             status_text(info["executionStatus"], [])], execution_id=info["executionId"])
    return message_page(service, status or 410, "Closed", "This request is no longer open",
                        [f"{subject} is no longer open: the workflow has moved on without this answer. "
                         "Nothing was changed.", status_text(info["executionStatus"], [])],
                        execution_id=info["executionId"])


def unknown_page(service: Service) -> Page:
    return message_page(service, 404, "Unknown link", "This link does not lead to a request",
                        ["No request has this address. Check that the whole link was copied: links from "
                         "emails are sometimes cut across lines. Links of old requests stop working some "
                         "time after they are answered."])


def error_page(service: Service, error: ServiceError) -> Page:
    if error.status == 503:
        text = "The service cannot reach its storage just now. Nothing was changed: please try again in a minute."
    elif error.status >= 500:
        text = "The service failed unexpectedly. Nothing was changed: please try again later."
    else:
        text = error.message
    return message_page(service, error.status, "Something went wrong", "The request could not be shown", [text])


def message_page(service: Service, status: int, eyebrow: str, heading: str, paragraphs: list[str], *,
                 link: dict | None = None, execution_id: str = "") -> Page:
    return _page(service, "message.html", status, eyebrow=eyebrow, heading=heading, paragraphs=paragraphs,
                 link=link, execution_id=execution_id, diagram="")


# -- the developer's pages: executions and one execution ------------------------------------

def executions_page(service: Service, listing: dict, *, state_machine: str | None, status: str | None,
                    machines: list[str], statuses: tuple[str, ...]) -> Page:
    """A page of ``GET /executions``: the filters, the executions and a link to the next page."""
    base = service.questions.base_url
    executions = [{**item, "link": execution_link(base, item["executionId"])} for item in listing["executions"]]
    filters = {"stateMachine": state_machine or "", "status": status or ""}
    next_link = ""
    if listing["nextToken"]:
        next_link = f"{base}/executions?" + urlencode({**{k: v for k, v in filters.items() if v},
                                                       "nextToken": listing["nextToken"]})
    described = " ".join(part for part in (status, state_machine) if part)
    return _page(service, "executions.html", heading="Executions" + (f": {described}" if described else ""),
                 executions=executions, machines=machines, statuses=statuses,
                 machine_filter=state_machine or "", status_filter=status or "", next_link=next_link,
                 execution_id="", diagram="", wide=True,
                 summary=f"{len(executions)} shown, newest first" + (" (more on the next page)" if next_link else ""))


def execution_link(base: str, execution_id: str) -> str:
    return f"{base}/executions/{quote(execution_id, safe='')}"


def execution_page(service: Service, document: dict) -> Page:
    """One execution for its developer: status, open questions (linked to their pages), timers,
    history and the diagram with the states it waits at and those it went through."""
    base = service.questions.base_url
    history = document.get("history") or []
    questions = []
    for waiting in document["continuations"]:
        question = forms.question_of(waiting.get("parameters"))
        child = (waiting.get("detail") or {}).get("executionId")
        link, text = waiting.get("url"), "Open the question"
        if waiting["kind"] == "child":
            link, text = (execution_link(base, child), "Open the child execution") if child else ("", "")
        questions.append({"title": question.title or ("A child execution" if waiting["kind"] == "child"
                                                      else "An answer"),
                          "state": waiting["state"], "branch": waiting.get("branch"),
                          "expiresAt": waiting["expiresAt"], "link": link, "link_text": text})
    timers = document.get("timers") or []
    waiting_at = [c["state"] for c in document["continuations"]] + [t["state"] for t in timers]
    visited = [e["state"] for e in history if e.get("type") == "StateEntered" and e.get("state")]
    facts = [{"label": label, "value": value, "block": False} for label, value in (
        ("ID", document["executionId"]), ("State machine", document.get("stateMachine") or "inline definition"),
        ("Started", pages.friendly_time(document.get("startDate"))),
        ("Ended", pages.friendly_time(document.get("stopDate")))) if value]
    for label, key in (("Input", "input"), ("Output", "output"), ("Error", "error"), ("Cause", "cause")):
        if key in document and document[key] is not None:
            value = document[key]
            facts.append({"label": label, "value": pages.shown(value), "block": isinstance(value, (dict, list))})
    events = [{"id": e.get("id", ""), "type": e.get("type", ""), "state": e.get("state") or "",
               "timestamp": e.get("timestamp", "")} for e in history]
    return _page(service, "execution.html", heading=document.get("name") or document["executionId"],
                 execution=document, status_text=status_text(document["status"], waiting_at), facts=facts,
                 questions=questions, timers=timers, history=events, list_link=f"{base}/executions", wide=True,
                 execution_id=document["executionId"],
                 diagram=_diagram(service, document["executionId"], waiting=waiting_at, visited=visited),
                 where="Highlighted: where it waits, and the states it went through.")
