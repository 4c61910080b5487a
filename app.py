"""agentcron's composition root: the routing table and the trigger Lambda. Nothing else.

Routes live in one Blueprint per façade; every dependency is built lazily by
``chalicelib.dependencies`` on first use, so importing this module does no I/O and
creates no AWS client.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice, Rate

from chalicelib.api.langgraph import bp as langgraph_crons
from chalicelib.api.shannon.routes import bp as shannon_schedules
from chalicelib.console.blueprint import bp as console
from chalicelib.observability import configure_logging, http_middleware

app = Chalice(app_name="agentcron")
configure_logging()
# One structured record and the API metrics per request, for every route of both façades;
# in the deployed API, no AWS call starts that could outlive the function's timeout.
app.register_middleware(http_middleware(app), "http")

app.register_blueprint(langgraph_crons)
app.register_blueprint(shannon_schedules, url_prefix="/api/v1")
app.register_blueprint(console)


@app.lambda_function(name="run_trigger")
def run_trigger(event: Any, context: Any) -> dict[str, Any]:
    """EventBridge Scheduler's target (and the async target of manual runs)."""
    from chalicelib.dependencies import container
    from chalicelib.observability import observe_trigger

    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return observe_trigger(
        event, context, lambda: container().run_executor.handle(event, remaining)
    )


@app.schedule(Rate(1, unit=Rate.MINUTES), name="reconciler")
def reconciler(event: Any) -> dict[str, Any]:
    """Ends stuck runs every minute and repairs drift between DynamoDB and the Scheduler
    every 5 minutes (a maintenance rule, not a user schedule)."""
    from chalicelib.dependencies import container
    from chalicelib.observability import observe_reconciler

    return observe_reconciler(
        getattr(event, "context", None),
        lambda: container().reconciler.scheduled(getattr(event, "time", None)),
    )
