"""The trigger Lambda's body: EventBridge Scheduler's target.

A malformed event is logged and dropped (returning normally): raising would only
make Lambda retry a message that can never succeed. Infrastructure failures
(DynamoDB unavailable) do raise, so the invocation lands in the function's
``OnFailure`` destination; Lambda's own async retries are 0 (``.chalice/config.json``
and ``infra/``), because a retried agent run would spend its budget twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

log = logging.getLogger(__name__)


def handle(event: Any, remaining_ms: Callable[[], int] | None, executor: Any) -> dict[str, Any]:
    from chalicelib.services.runs import TriggerEvent

    if isinstance(event, str | bytes):
        try:
            event = json.loads(event)
        except ValueError:
            log.error("dropped a trigger event that is not JSON")
            return {"status": "dropped", "reason": "not JSON"}
    try:
        parsed = TriggerEvent.model_validate(event)
    except ValidationError as exc:
        log.error("dropped a malformed trigger event: %s", exc.errors(include_url=False))
        return {"status": "dropped", "reason": "malformed event"}
    summary = executor.execute(parsed, remaining_ms)
    result: dict[str, Any] = summary.as_dict()
    return result
