"""HTML pages and email bodies, rendered with Jinja2 from ``templates/`` beside this module.

Autoescaping is on for everything but ``.txt`` templates (plain-text email),
so every value from an execution's data is escaped. Pages need no JavaScript:
the only script loads mermaid.js (``DIAGRAM_SCRIPT_URL``) to draw the
workflow diagram, which is otherwise shown as Mermaid text.
"""
from __future__ import annotations

import datetime
import json
import os
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), disabled_extensions=("txt",), default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, **context: Any) -> str:
    return _env.get_template(template).render(**context)


@dataclass
class Page:
    status: int
    body: str
    headers: dict = field(default_factory=dict)


def page(template: str, status: int = 200, *, script_url: str = "", **context: Any) -> Page:
    """A page with headers that keep it private: not cached, not framed, no referrer sent."""
    nonce = secrets.token_urlsafe(12)
    script_src = f"'nonce-{nonce}'"
    if script_url:
        parts = urlsplit(script_url)
        if parts.scheme in ("http", "https"):
            script_src += f" {parts.scheme}://{parts.netloc}"
    policy = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
              f"frame-ancestors 'none'; base-uri 'none'; script-src {script_src}")
    body = render(template, nonce=nonce, script_url=script_url, **context)
    return Page(status, body, {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    })


# -- formatting helpers (also used by templates) -------------------------------------------

def friendly_time(iso: str | None) -> str:
    """``2027-01-22T08:00:00.000Z`` as ``22 Jan 2027, 08:00 UTC``."""
    if not iso:
        return ""
    try:
        moment = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.astimezone(datetime.timezone.utc).strftime("%d %b %Y, %H:%M UTC").lstrip("0")


def shown(value: Any) -> str:
    """A value as an approver reads it: text as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def data_rows(data: Any) -> list[dict]:
    """``Data`` as rows of a definition list: ``{"label", "value", "block"}``."""
    if data is None:
        return []
    items = data.items() if isinstance(data, dict) else [("", data)]
    return [{"label": str(label), "value": shown(value), "block": isinstance(value, (dict, list))}
            for label, value in items]


def answer_rows(question, result: Any) -> list[dict]:
    """An answer's fields, labelled as the question labels them."""
    if not isinstance(result, dict):
        return data_rows(result)
    rows = []
    for name, value in result.items():
        label = "Decision" if question.choices and name == question.choice_field else question.label(name)
        if isinstance(value, bool):
            value = "yes" if value else "no"
        rows.append({"label": label, "value": shown(value), "block": isinstance(value, (dict, list))})
    return rows


_env.filters["friendly_time"] = friendly_time
