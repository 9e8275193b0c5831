"""Approval pages and email: the people's side of a continuation.

- ``forms``: the question a suspension asks (title, data, choices, fields) and the answers that fit it;
- ``links``: page URLs and signed one-click decision links;
- ``questions``: the two above as the service's :class:`~chalicelib.service.Questions`;
- ``pages``, ``views``, ``templates/``: HTML pages (Jinja2, autoescaped);
- ``email``: the ``email:send`` task resource; ``diagram``: Mermaid flowcharts of a definition.

:func:`make_service` builds the service with all of it wired in. May import:
``chalicelib.service`` and what lies below it (``asl``, ``store``, ``config``).
"""
from __future__ import annotations

from typing import Callable

from ..asl import SystemClock
from ..config import Settings
from ..service import Service
from ..store import Store
from .email import ApprovalEmails
from .questions import ApprovalQuestions


def make_service(settings: Settings, store: Store, *, base_url: str = "", clock=None, handlers=None,
                 dispatch: Callable[[str], None] | None = None,
                 dispatch_worker: Callable[[str], None] | None = None) -> Service:
    """A service whose questions have pages and decision links at ``base_url`` and can be emailed."""
    clock = clock or SystemClock()
    return Service(settings, store, clock=clock, handlers=handlers, dispatch=dispatch,
                   dispatch_worker=dispatch_worker,
                   questions=ApprovalQuestions(base_url, settings.signing_secret),
                   resolvers=[ApprovalEmails(settings, base_url, clock)])
