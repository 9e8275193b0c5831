"""Approval questions for the service: which answers fit a question, and its links."""
from __future__ import annotations

from typing import Any

from ..service import Questions
from . import forms, links


class ApprovalQuestions(Questions):
    """Questions as ``forms`` reads them, with pages and signed decision links at ``base_url``."""

    def __init__(self, base_url: str, secret: str):
        self.base_url = base_url
        self.secret = secret

    def check(self, parameters: Any, answer: Any) -> list[dict]:
        return forms.check_answer(forms.question_of(parameters), answer)

    def page_url(self, continuation: str) -> str:
        return links.page_url(self.base_url, continuation)

    def links(self, continuation: str, parameters: Any) -> dict:
        """``url`` (the continuation's page) and, for a question with Choices, signed ``decisions``."""
        out: dict[str, Any] = {"url": self.page_url(continuation)}
        choices = forms.question_of(parameters).choices
        if choices:
            out["decisions"] = links.decision_urls(self.base_url, continuation, choices, self.secret)
        return out
