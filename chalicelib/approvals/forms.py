"""The question a suspended task asks, and the checks its answer must pass.

A waiting task's Parameters (its continuation's ``parameters``) may follow
these conventions::

    {
      "Title": "Approve laptop for ann?",          # the page's heading
      "Description": "The old one broke.",        # text under it
      "Data": {"Item": "laptop", "Price": 1200},  # what the approver needs to see
      "Choices": ["approve", "reject"],           # one of them is the answer...
      "ChoiceField": "decision",                  # ...written into this field (default "decision")
      "Fields": [                                 # more inputs
        {"name": "comment", "label": "Comment", "type": "textarea"},
        {"name": "budget", "type": "number", "required": true},
        {"name": "team", "type": "choice", "options": ["a", "b"]}
      ],
      "PrivateOutput": true                       # the approver is not shown the workflow's output
    }

Field types: text, textarea, number, boolean, choice (one of ``options``) and
date (``YYYY-MM-DD``). A required text must not be blank; a required boolean
must be true (a box to tick, as HTML's ``required`` means). With ``Choices``,
the choice field is required and must be one of them.

:func:`check_answer` checks a JSON answer; :func:`read_form` turns a submitted
HTML form into the same typed answer and checks it. Both report errors as
``{field name: message}``. Fields the question does not declare pass through
unchecked, as JSON redemptions always could add them.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

from ..service import PRIVATE_OUTPUT

TYPES = ("text", "textarea", "number", "boolean", "choice", "date")
DEFAULT_CHOICE_FIELD = "decision"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRUE = ("on", "true", "1", "yes")
#: Keys with a meaning of their own, not shown as data (To and Subject are the email task's;
#: PrivateOutput the service's, see ``chalicelib.service.holders``).
CONVENTIONS = frozenset({"Title", "Description", "Data", "Choices", "ChoiceField", "Fields", "To", "Subject",
                         PRIVATE_OUTPUT})


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: str = "text"
    required: bool = False
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Question:
    title: str | None = None
    description: str | None = None
    data: Any = None
    choices: tuple[str, ...] = ()
    choice_field: str = DEFAULT_CHOICE_FIELD
    fields: tuple[Field, ...] = ()
    problems: tuple[str, ...] = ()  # what is wrong with the declaration itself

    @property
    def has_rules(self) -> bool:
        return bool(self.choices or self.fields)

    def label(self, name: str) -> str:
        for field in self.fields:
            if field.name == name:
                return field.label
        return name


def question_of(parameters: Any) -> Question:
    """Read the conventions from a task's Parameters; other values ask nothing.

    Declarations that do not fit are listed in ``problems`` and left out, so a
    page can still be shown; the email task refuses such a question.
    """
    if not isinstance(parameters, dict):
        return Question(data=parameters)
    problems: list[str] = []
    title = _text(parameters.get("Title"), "Title", problems)
    description = _text(parameters.get("Description"), "Description", problems)
    choice_field = parameters.get("ChoiceField", DEFAULT_CHOICE_FIELD)
    if not isinstance(choice_field, str) or not choice_field:
        problems.append("ChoiceField must be a non-empty string.")
        choice_field = DEFAULT_CHOICE_FIELD
    choices = _strings(parameters.get("Choices", []), "Choices", problems)
    fields = []
    raw_fields = parameters.get("Fields", [])
    if not isinstance(raw_fields, list):
        problems.append("Fields must be a list.")
        raw_fields = []
    names = {choice_field} if choices else set()
    for index, spec in enumerate(raw_fields):
        field = _field(spec, index, problems)
        if field is None:
            continue
        if field.name in names:
            problems.append(f"Fields[{index}]: the name {field.name!r} is used twice.")
            continue
        names.add(field.name)
        fields.append(field)
    if "Data" in parameters:
        data = parameters["Data"]
    else:  # what else the Parameters hold is what the approver sees
        data = {k: v for k, v in parameters.items() if k not in CONVENTIONS} or None
    return Question(title, description, data, tuple(choices), choice_field, tuple(fields), tuple(problems))


def _text(value: Any, name: str, problems: list[str]) -> str | None:
    if value is None or isinstance(value, str):
        return value
    problems.append(f"{name} must be a string.")
    return str(value)


def _strings(value: Any, name: str, problems: list[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(f"{name} must be a list of non-empty strings.")
        return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []
    if len(set(value)) != len(value):
        problems.append(f"{name} lists a value twice.")
        return list(dict.fromkeys(value))
    return value


def _field(spec: Any, index: int, problems: list[str]) -> Field | None:
    where = f"Fields[{index}]"
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        problems.append(f"{where} must be an object with a non-empty 'name'.")
        return None
    kind = spec.get("type", "text")
    if kind not in TYPES:
        problems.append(f"{where}: type must be one of {', '.join(TYPES)}.")
        return None
    options: list[str] = []
    if kind == "choice":
        options = _strings(spec.get("options"), f"{where}.options", problems)
        if not options:
            return None
    label = spec.get("label", spec["name"])
    if not isinstance(label, str):
        problems.append(f"{where}: label must be a string.")
        label = spec["name"]
    return Field(spec["name"], label, kind, spec.get("required") is True, tuple(options))


# -- checking answers -------------------------------------------------------------------

def check_answer(question: Question, answer: Any) -> dict[str, str]:
    """The errors of a JSON answer, ``{field: message}``; empty when it fits."""
    if not question.has_rules:
        return {}
    if not isinstance(answer, dict):
        return {"": "The answer must be an object."}
    errors: dict[str, str] = {}
    if question.choices:
        value = answer.get(question.choice_field)
        if value not in question.choices:
            errors[question.choice_field] = "Choose one of: " + ", ".join(question.choices) + "."
    for field in question.fields:
        message = _check_value(field, answer.get(field.name), field.name in answer)
        if message:
            errors[field.name] = message
    return errors


def _check_value(field: Field, value: Any, present: bool) -> str | None:
    if not present or value is None:
        return "This field is required." if field.required else None
    if field.type in ("text", "textarea"):
        if not isinstance(value, str):
            return "Enter text."
        if field.required and not value.strip():
            return "This field is required."
    elif field.type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "Enter a number."
    elif field.type == "boolean":
        if not isinstance(value, bool):
            return "Must be true or false."
        if field.required and not value:
            return "This box must be ticked."
    elif field.type == "choice":
        if value not in field.options:
            return "Choose one of: " + ", ".join(field.options) + "."
    elif field.type == "date":
        if not isinstance(value, str) or not _is_date(value):
            return "Enter a date as YYYY-MM-DD."
    return None


def _is_date(text: str) -> bool:
    if not _DATE.match(text):
        return False
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


# -- reading HTML forms -----------------------------------------------------------------

def read_form(question: Question, form: dict[str, list[str]]) -> tuple[dict, dict[str, str]]:
    """A submitted form (``parse_qs`` shape) as a typed answer, and its errors.

    Only the declared fields (and the choice field) are taken; empty optional
    inputs are left out of the answer; an unticked box is ``false``.
    """
    answer: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def first(name: str) -> str | None:
        values = form.get(name)
        return values[0] if values else None

    if question.choices:
        choice = first(question.choice_field)
        if choice is not None:
            answer[question.choice_field] = choice
    for field in question.fields:
        raw = first(field.name)
        if field.type == "boolean":
            answer[field.name] = raw is not None and raw.strip().lower() in _TRUE
            continue
        text = (raw or "").strip() if field.type != "textarea" else (raw or "").rstrip()
        if not text.strip():
            continue
        if field.type == "number":
            number = _number(text)
            if number is None:
                errors[field.name] = "Enter a number."
                continue
            answer[field.name] = number
        else:
            answer[field.name] = text
    for name, message in check_answer(question, answer).items():
        errors.setdefault(name, message)
    return answer, errors


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None
