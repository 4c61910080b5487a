"""LangGraph Platform's API, the part a cron user needs, for the official ``langgraph_sdk``.

One Blueprint (:data:`bp`, no prefix, as LangGraph serves it) whose routes live in one
module per resource — :mod:`.crons`, :mod:`.threads`, :mod:`.runs`, :mod:`.assistants`
(with ``/ok`` and ``/info``) — next to their wire models in :mod:`.wire`. The error
table, authentication and path parameters are in :mod:`.common`.
"""

from __future__ import annotations

from chalicelib.api.langgraph import assistants, crons, runs, threads
from chalicelib.api.langgraph.common import bp, facade

__all__ = ["assistants", "bp", "crons", "facade", "runs", "threads"]

facade.serve_document()
facade.install_fallbacks()
