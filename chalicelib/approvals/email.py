"""The approval email: ``arn:aws:states:::email:send.waitForTaskToken``.

A Task with this resource sends one email and waits, like any
``.waitForTaskToken`` task, until its continuation is answered. Parameters:
``To`` (an address or a list), ``Subject`` (default: the Title), and the
question (``Title``, ``Description``, ``Data``, ``Choices``, ``ChoiceField``,
``Fields``: see ``forms.py``), which is also what the continuation's page
shows. The message links to that page and, for each choice, to a signed
one-click decision link. The spelling without ``.waitForTaskToken`` waits the
same way: an approval email whose links could never be answered is no use.

Delivery: Amazon SES (``sesv2.send_email``) when ``EMAIL_MODE=ses``, the
default when deployed; otherwise (``EMAIL_MODE=outbox``, the default under
``chalice local``) the message is logged and written as a ``.eml`` file to
``OUTBOX_DIR``, so a developer can open its links.

Sending happens after the commit that stores the continuation, whichever way
the resource is spelled (``send.waits_for_token``), through the execution's
pending calls (``chalicelib/service/calls.py``): an email goes out only for a
stored execution, and one whose sender died is sent again. Every try of one
email carries the same idempotency key: the outbox names its file and
Message-ID after it (and writes it once), SES gets it as the ``call`` tag.
"""
from __future__ import annotations

import datetime
import logging
import os
import re
import secrets
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from ..asl import Suspend, TaskContext, TaskFailed
from ..asl.clock import iso_timestamp
from ..config import Settings
from ..service import continuation_expiry
from . import forms, links, pages

RESOURCE = "arn:aws:states:::email:send"
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")

log = logging.getLogger(__name__)


class ApprovalEmails:
    """A resolver for the email resource (the service consults it before the other handlers)."""

    def __init__(self, settings: Settings, base_url: str, clock):
        self.settings = settings
        self.base_url = base_url
        self.clock = clock

    def resolve(self, resource: str):
        return self.send if resource == RESOURCE else None

    def at_base(self, base_url: str) -> "ApprovalEmails":
        """The same emails with links at ``base_url`` (for a call made again outside its request)."""
        return self if base_url == self.base_url else ApprovalEmails(self.settings, base_url, self.clock)

    def send(self, payload: Any, context: TaskContext) -> Suspend:
        settings = self.settings
        if not self.base_url:  # outside a request (a timer, a background run) and no PUBLIC_BASE_URL
            if settings.email_mode == "ses":
                raise TaskFailed("Email.NoBaseUrl",
                                 "Links need PUBLIC_BASE_URL when the task runs outside a request.")
            log.warning("PUBLIC_BASE_URL is not set: the email's links are relative")
        now = self.clock.now()
        timeout_at = now + context.timeout_seconds if context.timeout_seconds else None
        message = compose(payload, context.token, self.base_url, settings.signing_secret,
                          continuation_expiry(settings, now, timeout_at))
        deliver(message, settings, context.idempotency_key)
        return Suspend("task-token")

    send.waits_for_token = True  # sent after the commit, with either spelling of the resource


def compose(payload: Any, token: str, base_url: str, secret: str, expires_at: float) -> dict:
    """The message (addresses, subject, text and HTML bodies) for one waiting task."""
    if not isinstance(payload, dict):
        raise TaskFailed("Email.InvalidParameters", "The Parameters must be an object with To.")
    recipients = payload.get("To")
    recipients = [recipients] if isinstance(recipients, str) else recipients
    if not isinstance(recipients, list) or not recipients or not all(
            isinstance(r, str) and _ADDRESS.match(r) for r in recipients):
        raise TaskFailed("Email.InvalidParameters", "To must be an email address or a list of them.")
    question = forms.question_of(payload)
    if question.problems:
        raise TaskFailed("Email.InvalidQuestion", " ".join(question.problems))
    subject = payload.get("Subject") or question.title or "A workflow is waiting for your answer"
    if not isinstance(subject, str) or "\n" in subject or "\r" in subject:
        raise TaskFailed("Email.InvalidParameters", "Subject must be one line of text.")
    context = {
        "question": question,
        "data": pages.data_rows(question.data),
        "page_url": links.page_url(base_url, token),
        "decisions": links.decision_urls(base_url, token, question.choices, secret),
        "expires": pages.friendly_time(iso_timestamp(expires_at)),
    }
    return {
        "to": recipients,
        "subject": subject,
        "text": pages.render("email.txt", **context),
        "html": pages.render("email.html", **context),
        "links": {"page": context["page_url"], **context["decisions"]},
    }


def deliver(message: dict, settings, key: str | None = None) -> str:
    """Send (SES) or keep (outbox) the message; returns its message ID. ``key``: the same on every try."""
    if settings.email_mode == "ses":
        return _send_with_ses(message, settings.email_from, key)
    if settings.email_mode == "outbox":
        return _write_to_outbox(message, settings.email_from, settings.outbox_dir, key)
    raise TaskFailed("Email.NotConfigured", f"EMAIL_MODE must be 'ses' or 'outbox', not {settings.email_mode!r}.")


def _send_with_ses(message: dict, sender: str, key: str | None = None) -> str:
    import boto3  # in the Lambda runtime; only needed when sending for real
    from botocore.exceptions import ClientError

    def part(text: str) -> dict:
        return {"Data": text, "Charset": "UTF-8"}

    tags = {"EmailTags": [{"Name": "call", "Value": key}]} if key else {}
    try:
        response = boto3.client("sesv2").send_email(
            FromEmailAddress=sender,
            Destination={"ToAddresses": message["to"]},
            Content={"Simple": {"Subject": part(message["subject"]),
                                "Body": {"Text": part(message["text"]), "Html": part(message["html"])}}},
            **tags,
        )
    except ClientError as error:
        details = error.response.get("Error", {})
        raise TaskFailed(f"SesV2.{details.get('Code', 'ClientError')}", details.get("Message", str(error))) from None
    return response["MessageId"]


def _write_to_outbox(message: dict, sender: str, folder: str, key: str | None = None) -> str:
    """Write the message to ``folder``; with ``key``, as ``<key>.eml`` and only once (a retry finds it there)."""
    email = EmailMessage()
    email["From"] = sender
    email["To"] = ", ".join(message["to"])
    email["Subject"] = message["subject"]
    email["Message-ID"] = message_id = f"<{key}@outbox.local>" if key else make_msgid(domain="outbox.local")
    try:  # unwrapped, so the links in the file can be clicked
        email.set_content(message["text"], cte="8bit")
    except ValueError:  # a line too long for 8bit
        email.set_content(message["text"])
    email.add_alternative(message["html"], subtype="html")
    os.makedirs(folder, exist_ok=True)
    if key:
        path = os.path.join(folder, f"{key}.eml")
        if os.path.exists(path):
            return message_id  # this call was made before: the message is there
    else:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        path = os.path.join(folder, f"{stamp}-{secrets.token_hex(4)}.eml")
    partial = f"{path}.{secrets.token_hex(4)}.part"
    with open(partial, "wb") as handle:
        handle.write(bytes(email))
    os.replace(partial, path)  # whole or not at all, even if the sender dies while writing
    lines = [f"email to {email['To']}: {message['subject']!r} (saved to {path})"]
    lines += [f"  {name}: {url}" for name, url in message["links"].items()]
    _outbox_log().info("\n".join(lines))
    return message_id


def _outbox_log() -> logging.Logger:
    """The outbox's log: the console of ``chalice local``, whatever the root logger's level."""
    logger = logging.getLogger("outbox")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("outbox: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger
