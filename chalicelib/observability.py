"""Observability: structured logs, CloudWatch metrics (EMF) and X-Ray traces.

What an operator gets, from all three functions and the local stack:

* **Logs** — one JSON object per line through AWS Lambda Powertools' ``Logger``. Every
  record logged while a *unit of work* is open (an API request, one trigger delivery,
  one reconciler sweep) carries that unit's correlation keys: ``tenant``, ``user``
  (never the key), ``schedule_id``, ``run_id``, ``scheduled_time``, ``trigger`` where
  known, plus ``function_request_id`` and ``cold_start``. The keys live in a context
  variable (Powertools' thread-safe keys), so the local stack's concurrent fires and
  requests never see each other's keys. Each run ends with one ``run summary`` record
  (status, cost, tokens, duration, lateness = start − scheduled time, model) and each
  API request with one ``request`` record (route, status, latency). Nothing here ever
  logs a prompt, a model output, a request body, a header or a key: the summary is built
  from counters and ids only.
* **Metrics** — CloudWatch Embedded Metric Format, namespace ``agentcron``, one
  dimension (``stage``): per-tenant or per-schedule dimensions would create a metric
  per tenant (cardinality, cost). The names and units are the catalogue
  :data:`UNITS`; the template's alarms may only use names from it (a test checks).
  Each unit of work writes one EMF document when it ends, built by Powertools'
  ``AmazonCloudWatchEMFProvider`` — the serializer and schema validation behind
  ``Metrics`` — with a set of its own: ``Metrics`` keeps its metric set at class
  level, shared by every thread of the process, so the local stack's concurrent fires
  would mix their documents.
* **Request deadline** — the API request's unit of work also bounds its AWS calls by
  the Lambda's remaining time (see "the request deadline" below).
* **Traces** — Powertools' ``Tracer`` (X-Ray) when ``TRACING`` is on (the deployed
  stages; active tracing is set on the functions in the template), with the
  correlation ids as annotations (searchable: ``annotation.schedule_id = "…"``). Off
  locally and in tests: nothing is imported for it.

Cost: ``import app`` imports only this module's standard-library part. Powertools is
imported when the first unit of work starts — by then the function has imported boto3
for DynamoDB anyway, and Powertools adds about 12 ms on top (``make bench`` reports both).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalice.app import Chalice, Request, Response

    from chalicelib.domain.models import Run

SERVICE = "agentcron"
NAMESPACE = "agentcron"
LOGGER_NAME = "chalicelib"


class Metric(StrEnum):
    """Every metric agentcron emits (namespace ``agentcron``, dimension ``stage``)."""

    RUNS_COMPLETED = "RunsCompleted"
    RUNS_FAILED = "RunsFailed"
    RUNS_TIMED_OUT = "RunsTimedOut"
    RUNS_BUDGET_EXCEEDED = "RunsBudgetExceeded"
    RUNS_SKIPPED = "RunsSkipped"
    RUNS_SKIPPED_OVERLAP = "RunsSkippedOverlap"
    RUNS_SKIPPED_PAUSED = "RunsSkippedPaused"
    RUNS_SKIPPED_ENDED = "RunsSkippedEnded"
    RUNS_SKIPPED_STALE = "RunsSkippedStale"
    RUNS_SKIPPED_LATE = "RunsSkippedLate"
    FIRES_DUPLICATE = "FiresDuplicate"
    FIRES_IGNORED = "FiresIgnored"
    FIRES_DROPPED = "FiresDropped"
    RUN_COST = "RunCostUSD"
    RUN_TOKENS = "RunTokens"
    RUN_DURATION = "RunDuration"
    FIRE_LATENESS = "FireLateness"
    WEBHOOK_FAILURES = "WebhookFailures"
    RECONCILER_REPAIRS = "ReconcilerRepairs"
    RECONCILER_STUCK_RUNS_ENDED = "ReconcilerStuckRunsEnded"
    RECONCILER_ENTRIES_REWRITTEN = "ReconcilerEntriesRewritten"
    RECONCILER_ORPHANS_DELETED = "ReconcilerOrphanEntriesDeleted"
    RECONCILER_ERRORS = "ReconcilerErrors"
    API_REQUESTS = "ApiRequests"
    API_4XX = "Api4xx"
    API_5XX = "Api5xx"
    API_LATENCY = "ApiLatency"


UNITS: dict[Metric, str] = {
    **{m: "Count" for m in Metric},
    Metric.RUN_COST: "None",  # CloudWatch has no currency unit: the name says USD
    Metric.RUN_DURATION: "Milliseconds",
    Metric.FIRE_LATENESS: "Seconds",
    Metric.API_LATENCY: "Milliseconds",
}

# Terminal run status → its outcome metric. Skips are counted by reason as well.
OUTCOMES: dict[str, Metric] = {
    "success": Metric.RUNS_COMPLETED,
    "error": Metric.RUNS_FAILED,
    "timeout": Metric.RUNS_TIMED_OUT,
    "budget_exceeded": Metric.RUNS_BUDGET_EXCEEDED,
    "skipped": Metric.RUNS_SKIPPED,
}
SKIP_REASONS: dict[str, Metric] = {
    "overlap": Metric.RUNS_SKIPPED_OVERLAP,
    "paused": Metric.RUNS_SKIPPED_PAUSED,
    "ended": Metric.RUNS_SKIPPED_ENDED,
    "stale": Metric.RUNS_SKIPPED_STALE,
    "late": Metric.RUNS_SKIPPED_LATE,
}
# The trigger's non-run answers (see the trigger's summary statuses).
FIRE_STATUSES: dict[str, Metric] = {
    "duplicate": Metric.FIRES_DUPLICATE,
    "ignored": Metric.FIRES_IGNORED,
    "dropped": Metric.FIRES_DROPPED,
}
RECONCILER_KINDS: dict[str, Metric] = {
    "stuck_runs_ended": Metric.RECONCILER_STUCK_RUNS_ENDED,
    "entries_rewritten": Metric.RECONCILER_ENTRIES_REWRITTEN,
    "orphan_entries_deleted": Metric.RECONCILER_ORPHANS_DELETED,
}
TRACE_ANNOTATIONS = ("tenant", "schedule_id", "run_id", "trigger")


# --- configuration (set by the dependency container and the local stack) -----------------


@dataclass
class Config:
    level: str = "INFO"
    stage: str = "local"
    emit_metrics: bool = True
    tracing: bool = False
    request_deadline: bool = False


_config = Config()
_config_lock = threading.Lock()


def configure(
    *,
    level: str | None = None,
    stage: str | None = None,
    emit_metrics: bool | None = None,
    tracing: bool | None = None,
    request_deadline: bool | None = None,
) -> None:
    """Apply deployment settings (called when the settings are first read)."""
    with _config_lock:
        if level is not None:
            _config.level = level.upper()
            logging.getLogger(LOGGER_NAME).setLevel(_config.level)
        if stage is not None:
            _config.stage = stage
        if emit_metrics is not None:
            _config.emit_metrics = emit_metrics
        if tracing is not None:
            _config.tracing = tracing
        if request_deadline is not None:
            _config.request_deadline = request_deadline


def set_level(level: str) -> None:
    configure(level=level)


# --- logging before Powertools is loaded ---------------------------------------------------


class _Stdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the *current* ``sys.stdout`` (or a redirected stream).

    Binding the stream at construction would keep a stream that test capture or the
    runtime may have replaced since.
    """

    def __init__(self) -> None:
        super().__init__()
        self.target: IO[str] | None = None

    @property
    def stream(self) -> IO[str]:
        return self.target if self.target is not None else sys.stdout

    @stream.setter
    def stream(self, _value: IO[str]) -> None:  # StreamHandler.__init__ assigns it
        return


class _PlainJSON(logging.Formatter):
    """The formatter until the first unit of work loads Powertools (import stays cheap)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "level": record.levelname,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "service": SERVICE,
            "logger": record.name,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _name_the_logger(record: logging.LogRecord) -> bool:
    record.logger = record.name  # an "extra" key for Powertools' formatter
    return True


_handler = _Stdout()
_handler.setFormatter(_PlainJSON())
_handler.addFilter(_name_the_logger)
_configured = False


def redirect(stream: IO[str] | None) -> IO[str] | None:
    """Send logs and metrics to ``stream`` (``None``: stdout); returns the previous target."""
    previous, _handler.target = _handler.target, stream
    return previous


def configure_logging(level: str | None = None) -> None:
    """Route the ``chalicelib`` loggers to stdout as JSON lines (idempotent, cheap)."""
    global _configured
    logger = logging.getLogger(LOGGER_NAME)
    if level is not None:
        configure(level=level)
    elif logger.level == logging.NOTSET:
        # INFO until the container applies Settings.LOG_LEVEL: logging must work even
        # when the settings themselves are invalid (that error has to be logged too).
        logger.setLevel(_config.level)
    if _configured:
        return
    _configured = True
    logger.addHandler(_handler)
    logger.propagate = False


# --- the Powertools side, built on first use ----------------------------------------------


class Telemetry:
    """The process's Powertools ``Logger`` (and ``Tracer`` when tracing is on)."""

    def __init__(self) -> None:
        from aws_lambda_powertools import Logger

        configure_logging()
        self.logger = Logger(
            service=SERVICE,
            level=_config.level,
            logger_handler=_handler,
            utc=True,
            use_rfc3339=True,
        )
        # Every ``chalicelib.*`` logger writes through Powertools' formatter (one handler,
        # shared with the ``agentcron`` logger, so appended keys reach every record).
        _handler.setFormatter(self.logger.registered_formatter)
        self.tracer: Any = None
        if _config.tracing:
            from aws_lambda_powertools import Tracer

            self.tracer = Tracer(service=SERVICE)

    def redirect(self, stream: IO[str] | None) -> None:
        """Send logs and metrics to ``stream`` (tests); ``None`` restores stdout."""
        redirect(stream)


_telemetry: Telemetry | None = None
_telemetry_lock = threading.Lock()


def telemetry() -> Telemetry:
    global _telemetry
    with _telemetry_lock:
        if _telemetry is None:
            _telemetry = Telemetry()
        return _telemetry


# --- units of work -------------------------------------------------------------------------


@dataclass
class _Unit:
    kind: str
    metrics: dict[Metric, list[float]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


_current: contextvars.ContextVar[_Unit | None] = contextvars.ContextVar(
    "agentcron_unit", default=None
)
_cold = True
_cold_lock = threading.Lock()


def _cold_start() -> bool:
    global _cold
    with _cold_lock:
        was, _cold = _cold, False
        return was


@contextmanager
def unit(kind: str, *, lambda_context: Any = None, **keys: Any) -> Iterator[None]:
    """One unit of work: correlation keys for its logs, one EMF document at its end."""
    t = telemetry()
    outer = dict(t.logger.thread_safe_get_current_keys())
    current = _Unit(kind)
    token = _current.set(current)
    base: dict[str, Any] = {"function": kind, "cold_start": _cold_start()}
    request_id = getattr(lambda_context, "aws_request_id", None)
    if request_id:
        base["function_request_id"] = request_id
        current.metadata["function_request_id"] = request_id
    t.logger.thread_safe_clear_keys()
    t.logger.thread_safe_append_keys(**base)
    segment = None
    try:
        if t.tracer is not None:
            segment = t.tracer.provider.in_subsegment(f"## {kind}")
            segment.__enter__()
        bind(**keys)
        yield
    finally:
        try:
            if segment is not None:
                segment.__exit__(*sys.exc_info())
            _flush(current)
        finally:
            _current.reset(token)
            t.logger.thread_safe_clear_keys()
            if outer:
                t.logger.thread_safe_append_keys(**outer)


def bind(**keys: Any) -> None:
    """Add correlation keys to the current unit's log records (and trace annotations)."""
    present = {k: _plain(v) for k, v in keys.items() if v is not None}
    if not present or _current.get() is None:
        return
    t = telemetry()
    t.logger.thread_safe_append_keys(**present)
    if t.tracer is not None:
        for name in TRACE_ANNOTATIONS:
            if name in present:
                t.tracer.put_annotation(name, str(present[name]))


def count(metric: Metric, value: float = 1) -> None:
    """Add to a metric of the current unit (a no-op outside any unit)."""
    measure(metric, value)


def measure(metric: Metric, value: float) -> None:
    current = _current.get()
    if current is not None:
        current.metrics.setdefault(metric, []).append(float(value))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, StrEnum):
        return value.value
    return value


def _flush(current: _Unit) -> None:
    if not current.metrics or not _config.emit_metrics:
        return
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
        AmazonCloudWatchEMFProvider,
    )

    provider = AmazonCloudWatchEMFProvider(namespace=NAMESPACE)
    provider.service = None  # type: ignore[assignment]  # no "service" dimension (POWERTOOLS_SERVICE_NAME would add it)
    provider.add_dimension(name="stage", value=_config.stage)
    for metric, values in current.metrics.items():
        for value in values:
            provider.add_metric(name=metric.value, unit=UNITS[metric], value=value)
    for key, value in current.metadata.items():
        provider.add_metadata(key=key, value=value)
    document = provider.serialize_metric_set()
    _handler.stream.write(json.dumps(document, separators=(",", ":")) + "\n")
    _handler.stream.flush()


# --- what the entry points call ------------------------------------------------------------

log = logging.getLogger(__name__)


def trigger_keys(event: Any) -> dict[str, Any]:
    """The correlation keys of a trigger event, read leniently (it is not validated yet)."""
    if not isinstance(event, Mapping):
        return {}
    keys: dict[str, Any] = {
        "tenant": event.get("tenant_id"),
        "user": event.get("user_id"),
        "schedule_id": event.get("schedule_id"),
        "scheduled_time": event.get("scheduled_time"),
        "trigger": event.get("trigger") or "schedule",
        "attempt": event.get("attempt"),
    }
    keys = {k: v for k, v in keys.items() if isinstance(v, str | int) and not isinstance(v, bool)}
    keys["run_id"] = _run_id(event)
    return keys


def _run_id(event: Mapping[str, Any]) -> str | None:
    """The run id the trigger will use, so that every record of the run carries it."""
    from pydantic import ValidationError

    from chalicelib.services.runs import TriggerEvent, run_id_of

    try:
        return run_id_of(TriggerEvent.model_validate(event))
    except ValidationError:
        return None  # the trigger drops it (and logs why)


def observe_trigger(
    event: Any, lambda_context: Any, body: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """The trigger's unit of work: keys from the event, a metric for a non-run answer."""
    with unit("run_trigger", lambda_context=lambda_context, **trigger_keys(event)):
        result = body()
        status = result.get("status") if isinstance(result, dict) else None
        if status in FIRE_STATUSES:
            count(FIRE_STATUSES[status])
            log.info(
                "fire %s",
                status,
                extra={"event": "fire", "status": status, "reason": result.get("reason")},
            )
        return result


def run_outcome(run: Run) -> None:
    """One summary record and the outcome metrics of a finished (or skipped) run."""
    bind(
        tenant=run.tenant_id,
        user=run.user_id,
        schedule_id=run.schedule_id,
        run_id=run.run_id,
        scheduled_time=run.scheduled_time,
        trigger=run.trigger,
    )
    status = run.status.value
    reason = run.error_message if status == "skipped" else None
    outcome = OUTCOMES.get(status)
    if outcome is not None:
        count(outcome)
    if reason in SKIP_REASONS:
        count(SKIP_REASONS[reason])
    started = run.started_at or run.completed_at
    lateness = None
    if started is not None:
        lateness = round((started - run.scheduled_time).total_seconds(), 3)
        if run.trigger.value == "schedule":
            measure(Metric.FIRE_LATENESS, max(lateness, 0.0))
    usage = run.usage
    if status != "skipped":
        measure(Metric.RUN_COST, float(usage.cost_usd))
        measure(Metric.RUN_TOKENS, usage.total_tokens)
        if run.duration_ms is not None:
            measure(Metric.RUN_DURATION, run.duration_ms)
    log.info(
        "run summary",
        extra={
            "event": "run_summary",
            "status": status,
            "reason": reason,
            "cost_usd": float(usage.cost_usd),  # a number: Logs Insights sums it
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "duration_ms": run.duration_ms,
            "lateness_seconds": lateness,
            "model": run.model_used,
            "provider": run.provider,
        },
    )


def webhook_failed() -> None:
    count(Metric.WEBHOOK_FAILURES)


def observe_reconciler(lambda_context: Any, body: Callable[[], Any]) -> dict[str, Any]:
    """The reconciler's unit of work: one metric per kind of repair, and their total."""
    with unit("reconciler", lambda_context=lambda_context):
        report = body()
        result: dict[str, Any] = report.as_dict()
        repairs = 0
        for kind, metric in RECONCILER_KINDS.items():
            value = int(result.get(kind) or 0)
            repairs += value
            count(metric, value)
        count(Metric.RECONCILER_REPAIRS, repairs)
        count(Metric.RECONCILER_ERRORS, len(result.get("errors") or ()))
        log.info(
            "reconciler sweep",
            extra={
                "event": "reconciler_sweep",
                "repairs": repairs,
                **{k: result.get(k) for k in RECONCILER_KINDS},
                "errors": len(result.get("errors") or ()),
            },
        )
        return result


# --- the request deadline: no AWS call starts that could outlive the API's Lambda ---------
#
# It lives here, with the unit of work that frames every request, so that following a
# request stays within the files it already visits.
#
# API Gateway waits 29 s for the function; the function's timeout is 28 s. A request's
# AWS calls cannot be bounded by counting them: under contention an update re-reads and
# re-writes (``UPDATE_ATTEMPTS`` version conflicts, then up to ``CONVERGE_ROUNDS`` of
# convergence), an ``enabled`` change adds a pause or resume with its own convergence,
# authentication on a cold key cache adds a read — 64 calls at the very worst (1 key
# read; 3 × (read + conditional write); 2 entry writes + 2 deletes; 5 convergence rounds
# of a read and 4 writes; then the pause: a write, 2 entry writes, 5 more rounds), each
# of which may take its botocore worst case (every attempt timing out, plus the backoff
# between attempts: :func:`call_worst_seconds`). No per-call timeout makes 64 of those
# fit in 28 s. So the bound is a deadline instead:
#
# * the HTTP middleware (:func:`http_middleware`) gives each request the Lambda context's
#   own clock (``get_remaining_time_in_millis``) — in the deployed API function, whose
#   template sets ``API_REQUEST_DEADLINE``;
# * every AWS client of the container asks :func:`may_start` before each call (a botocore
#   ``before-call`` hook, ``chalicelib.dependencies``), which refuses — a botocore error,
#   so the adapters answer it like any unreachable service: 503, with the rollback — a
#   call that could not end before ``MARGIN_SECONDS`` before the timeout;
# * a *forward* call must also leave time for the rollback of everything before it:
#   ``ROLLBACK_CALLS`` more worst-case calls — the DynamoDB write back and the Scheduler
#   undo of one entry, or the complete undo of a create or a delete. A compensating call
#   (inside :func:`compensating`) needs only its own time.
#
# So a request answers before the Lambda timeout whatever AWS does, and a request that
# starts running out of time answers 503 with its writes undone; whatever a rollback
# still could not finish (the convergence re-reads of a contended update) is logged and
# repaired by the reconciler, as after a crash. In the normal case (calls of tens of
# milliseconds) the deadline never bites: it only turns a Lambda timeout — a bare 502/504
# from API Gateway with the writes half-done — into a clean 503.
#
# Only the API sets a deadline; the trigger and the reconciler have their own (a run's
# deadline) or none, and for them :func:`may_start` always answers yes.

ROLLBACK_CALLS = 3
DEADLINE_MARGIN_SECONDS = 1.0
"""Left after the last call ends: the response is built and returned."""
MAX_BACKOFF_SECONDS = 20.0
"""botocore's standard retry mode: the n-th retry waits up to min(2**(n-1), 20) s."""

_remaining: contextvars.ContextVar[Callable[[], float] | None] = contextvars.ContextVar(
    "agentcron_request_remaining", default=None
)
_compensating: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agentcron_compensating", default=False
)


def call_worst_seconds(connect: float, read: float, attempts: int) -> float:
    """One AWS call's worst case: every attempt times out connecting and reading, and
    each retry waits its longest backoff."""
    backoff = sum(min(2.0**n, MAX_BACKOFF_SECONDS) for n in range(attempts - 1))
    return attempts * (connect + read) + backoff


@contextmanager
def request_deadline(remaining_seconds: Callable[[], float] | None) -> Iterator[None]:
    """The calls made inside are bounded by ``remaining_seconds`` (None: unbounded)."""
    token = _remaining.set(remaining_seconds)
    try:
        yield
    finally:
        _remaining.reset(token)


@contextmanager
def compensating() -> Iterator[None]:
    """The calls made inside undo earlier writes: they need no time for a rollback."""
    token = _compensating.set(True)
    try:
        yield
    finally:
        _compensating.reset(token)


def may_start(call_seconds: float) -> bool:
    """Whether an AWS call whose worst case is ``call_seconds`` may start now."""
    remaining = _remaining.get()
    if remaining is None:
        return True
    reserve = 0 if _compensating.get() else ROLLBACK_CALLS * call_seconds
    return remaining() >= call_seconds + reserve + DEADLINE_MARGIN_SECONDS


def http_middleware(app: Chalice) -> Callable[[Request, Callable[[Request], Response]], Response]:
    """A Chalice ``http`` middleware: every route of every façade is one unit of work,
    its AWS calls bounded by the request deadline when ``API_REQUEST_DEADLINE`` is on."""

    def observe(request: Request, get_response: Callable[[Request], Response]) -> Response:
        started = time.perf_counter()
        context = request.context or {}
        route = context.get("resourcePath") or request.path
        params = request.uri_params or {}
        lambda_context = getattr(app, "lambda_context", None)
        clock = getattr(lambda_context, "get_remaining_time_in_millis", None)
        deadline = (
            request_deadline(lambda: clock() / 1000)
            if clock is not None and _config.request_deadline
            else request_deadline(None)
        )
        with unit(
            "api",
            lambda_context=lambda_context,
            schedule_id=params.get("schedule_id") or params.get("cron_id"),
            run_id=params.get("run_id"),
        ):
            with deadline:
                response = get_response(request)
            status = int(response.status_code)
            latency = round((time.perf_counter() - started) * 1000, 3)
            count(Metric.API_REQUESTS)
            measure(Metric.API_LATENCY, latency)
            if 400 <= status < 500:
                count(Metric.API_4XX)
            elif status >= 500:
                count(Metric.API_5XX)
            level = logging.ERROR if status >= 500 else logging.INFO
            log.log(
                level,
                "request",
                extra={
                    "event": "request",
                    "method": request.method,
                    "route": route,
                    "path": request.path,
                    "status": status,
                    "latency_ms": latency,
                    "api_request_id": context.get("requestId"),
                },
            )
            return response

    return observe
