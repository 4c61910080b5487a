"""Item ↔ model mapping for the single agentcron table (see ``infra/tables.py`` for keys).

Free-form JSON (inputs, config, context, metadata) is stored as a JSON *string*:
it round-trips exactly (``1.0`` stays ``1.0``, no float→Decimal conversion, no
32-level nesting limit) and agentcron never filters on it server-side.
Timestamps are fixed-width UTC strings (``2026-01-01T09:00:00.000000Z``) so that
lexical order is time order in sort keys.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chalicelib.domain.enums import (
    OnRunCompleted,
    OverlapPolicy,
    PausedBy,
    RunStatus,
    RunTrigger,
    ScheduleOrigin,
    ScheduleStatus,
    ThreadStatus,
)
from chalicelib.domain.models import (
    ApiKey,
    Run,
    RunningMarker,
    Schedule,
    Thread,
    Usage,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]
else:
    Item = dict

# --- keys ----------------------------------------------------------------------------------


def user_pk(tenant_id: str, user_id: str) -> str:
    return f"T#{tenant_id}#U#{user_id}"


def schedule_sk(schedule_id: str) -> str:
    return f"S#{schedule_id}"


COUNTER_SK = "COUNTER"
SCHEDULE_SK_PREFIX = "S#"


def runs_pk(tenant_id: str, schedule_id: str) -> str:
    return f"T#{tenant_id}#R#{schedule_id}"


def run_sk(run: Run) -> str:
    return run_sort_key(run.scheduled_time, run.trigger, run.run_id)


def run_sort_key(scheduled_time: datetime, trigger: RunTrigger, run_id: str) -> str:
    # Scheduled fires are keyed by their fire time alone: that is the dedupe key that
    # absorbs at-least-once redelivery and the double fire of a split (Vixie OR) schedule.
    # Manual runs are unique by run id.
    if trigger is RunTrigger.SCHEDULE:
        return f"{ts(scheduled_time)}#S"
    return f"{ts(scheduled_time)}#M#{run_id}"


def thread_runs_gsi_pk(tenant_id: str, thread_id: str) -> str:
    return f"T#{tenant_id}#TH#{thread_id}"


def threads_pk(tenant_id: str, user_id: str) -> str:
    return f"T#{tenant_id}#U#{user_id}#TH"


def key_pk(key_hash: str) -> str:
    return f"KEY#{key_hash}"


KEY_SK = "KEY"


def tenant_keys_gsi_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#KEYS"


# --- scalar codecs ---------------------------------------------------------------------------


def ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def n(value: int | Decimal) -> AttributeValueTypeDef:
    return {"N": str(value)}


def opt_s(value: str | None) -> AttributeValueTypeDef:
    return {"NULL": True} if value is None else {"S": value}


def opt_ts(value: datetime | None) -> AttributeValueTypeDef:
    return {"NULL": True} if value is None else {"S": ts(value)}


def js(value: Any) -> AttributeValueTypeDef:
    return {"S": json.dumps(value, ensure_ascii=False, separators=(",", ":"))}


def get_s(item: Item, name: str) -> str:
    return item[name]["S"]


def get_opt_s(item: Item, name: str) -> str | None:
    value = item.get(name)
    if value is None or "NULL" in value:
        return None
    return value["S"]


def get_opt_ts(item: Item, name: str) -> datetime | None:
    raw = get_opt_s(item, name)
    return None if raw is None else parse_ts(raw)


def get_int(item: Item, name: str, default: int = 0) -> int:
    value = item.get(name)
    return default if value is None or "N" not in value else int(value["N"])


def get_dec(item: Item, name: str) -> Decimal:
    return Decimal(item[name]["N"])


def get_json(item: Item, name: str, default: Any = None) -> Any:
    raw = get_opt_s(item, name)
    return default if raw is None else json.loads(raw)


# --- schedules -------------------------------------------------------------------------------

# Model field → item attribute of what a client may change through update/patch. Counters,
# the running marker and history are written only by the trigger, never by an API update.
EDITABLE_SCHEDULE_FIELDS: dict[str, str] = {
    "name": "name",
    "description": "description",
    "cron_expression": "cron",
    "timezone": "tz",
    "graph_id": "graph_id",
    "assistant_id": "assistant_id",
    "input": "input",
    "config": "config",
    "context": "context",
    "metadata": "metadata",
    "extras": "extras",
    "on_run_completed": "on_run_completed",
    "end_time": "end_time",
    "max_budget_per_run_usd": "budget",
    "timeout_seconds": "timeout",
    "overlap_policy": "overlap",
    "webhook": "webhook",
    "eventbridge_expressions": "eb_expressions",
    "eventbridge_names": "eb_names",
    "updated_at": "updated_at",
}


def schedule_to_item(sch: Schedule) -> Item:
    item: Item = {
        "pk": s(user_pk(sch.tenant_id, sch.user_id)),
        "sk": s(schedule_sk(sch.id)),
        "type": s("schedule"),
        "id": s(sch.id),
        "tenant": s(sch.tenant_id),
        "user": s(sch.user_id),
        "origin": s(sch.origin.value),
        "name": s(sch.name),
        "description": s(sch.description),
        "cron": s(sch.cron_expression),
        "tz": s(sch.timezone),
        "graph_id": s(sch.graph_id),
        "assistant_id": s(sch.assistant_id),
        "input": js(sch.input),
        "config": js(sch.config),
        "context": js(sch.context),
        "metadata": js(sch.metadata),
        "extras": js(sch.extras),
        "thread_id": opt_s(sch.thread_id),
        "on_run_completed": opt_s(
            None if sch.on_run_completed is None else sch.on_run_completed.value
        ),
        "end_time": opt_ts(sch.end_time),
        "budget": n(sch.max_budget_per_run_usd),
        "timeout": n(sch.timeout_seconds),
        "overlap": s(sch.overlap_policy.value),
        "webhook": opt_s(sch.webhook),
        "status": s(sch.status.value),
        "paused_at": opt_ts(sch.paused_at),
        "pause_reason": opt_s(sch.pause_reason),
        "paused_by": opt_s(None if sch.paused_by is None else sch.paused_by.value),
        "total_runs": n(sch.total_runs),
        "successful_runs": n(sch.successful_runs),
        "failed_runs": n(sch.failed_runs),
        "history_count": n(sch.history_count),
        "last_run_at": opt_ts(sch.last_run_at),
        "eb_expressions": js(sch.eventbridge_expressions),
        "eb_names": js(sch.eventbridge_names),
        "created_at": s(ts(sch.created_at)),
        "updated_at": s(ts(sch.updated_at)),
        "version": n(sch.version),
    }
    if sch.running is not None:
        item["running_run_id"] = s(sch.running.run_id)
        item["running_until"] = s(ts(sch.running.until))
    return item


def item_to_schedule(item: Item) -> Schedule:
    running = None
    if "running_run_id" in item and "running_until" in item:
        running = RunningMarker(
            run_id=get_s(item, "running_run_id"), until=parse_ts(get_s(item, "running_until"))
        )
    orc = get_opt_s(item, "on_run_completed")
    paused_by = get_opt_s(item, "paused_by")
    return Schedule(
        id=get_s(item, "id"),
        tenant_id=get_s(item, "tenant"),
        user_id=get_s(item, "user"),
        origin=ScheduleOrigin(get_s(item, "origin")),
        name=get_s(item, "name"),
        description=get_s(item, "description"),
        cron_expression=get_s(item, "cron"),
        timezone=get_s(item, "tz"),
        graph_id=get_s(item, "graph_id"),
        assistant_id=get_s(item, "assistant_id"),
        input=get_json(item, "input"),
        config=get_json(item, "config", {}),
        context=get_json(item, "context", {}),
        metadata=get_json(item, "metadata", {}),
        extras=get_json(item, "extras", {}),
        thread_id=get_opt_s(item, "thread_id"),
        on_run_completed=None if orc is None else OnRunCompleted(orc),
        end_time=get_opt_ts(item, "end_time"),
        max_budget_per_run_usd=get_dec(item, "budget"),
        timeout_seconds=get_int(item, "timeout"),
        overlap_policy=OverlapPolicy(get_s(item, "overlap")),
        webhook=get_opt_s(item, "webhook"),
        status=ScheduleStatus(get_s(item, "status")),
        paused_at=get_opt_ts(item, "paused_at"),
        pause_reason=get_opt_s(item, "pause_reason"),
        paused_by=None if paused_by is None else PausedBy(paused_by),
        total_runs=get_int(item, "total_runs"),
        successful_runs=get_int(item, "successful_runs"),
        failed_runs=get_int(item, "failed_runs"),
        history_count=get_int(item, "history_count"),
        last_run_at=get_opt_ts(item, "last_run_at"),
        eventbridge_expressions=get_json(item, "eb_expressions", []),
        eventbridge_names=get_json(item, "eb_names", []),
        running=running,
        created_at=parse_ts(get_s(item, "created_at")),
        updated_at=parse_ts(get_s(item, "updated_at")),
        version=get_int(item, "version", 1),
    )


# --- runs -----------------------------------------------------------------------------------


def run_to_item(run: Run) -> Item:
    item: Item = {
        "pk": s(runs_pk(run.tenant_id, run.schedule_id)),
        "sk": s(run_sk(run)),
        "type": s("run"),
        "run_id": s(run.run_id),
        "schedule_id": s(run.schedule_id),
        "tenant": s(run.tenant_id),
        "user": s(run.user_id),
        "trigger": s(run.trigger.value),
        "scheduled_time": s(ts(run.scheduled_time)),
        "status": s(run.status.value),
        "thread_id": opt_s(run.thread_id),
        "graph_id": opt_s(run.graph_id),
        "assistant_id": opt_s(run.assistant_id),
        "query": s(run.query),
        "input": js(run.input),
        "metadata": js(run.metadata),
        "started_at": opt_ts(run.started_at),
        "completed_at": opt_ts(run.completed_at),
        "result": opt_s(run.result),
        "error_message": opt_s(run.error_message),
        "model_used": opt_s(run.model_used),
        "provider": opt_s(run.provider),
        "input_tokens": n(run.usage.input_tokens),
        "output_tokens": n(run.usage.output_tokens),
        "cost_usd": n(run.usage.cost_usd),
        "attempt": n(run.attempt),
        "created_at": s(ts(run.created_at)),
        "updated_at": s(ts(run.updated_at)),
    }
    if run.thread_id is not None:
        item["gsi1pk"] = s(thread_runs_gsi_pk(run.tenant_id, run.thread_id))
        item["gsi1sk"] = s(f"{ts(run.created_at)}#{run.run_id}")
    return item


def item_to_run(item: Item) -> Run:
    return Run(
        run_id=get_s(item, "run_id"),
        schedule_id=get_s(item, "schedule_id"),
        tenant_id=get_s(item, "tenant"),
        user_id=get_s(item, "user"),
        trigger=RunTrigger(get_s(item, "trigger")),
        scheduled_time=parse_ts(get_s(item, "scheduled_time")),
        status=RunStatus(get_s(item, "status")),
        thread_id=get_opt_s(item, "thread_id"),
        graph_id=get_opt_s(item, "graph_id"),
        assistant_id=get_opt_s(item, "assistant_id"),
        query=get_s(item, "query"),
        input=get_json(item, "input"),
        metadata=get_json(item, "metadata", {}),
        started_at=get_opt_ts(item, "started_at"),
        completed_at=get_opt_ts(item, "completed_at"),
        result=get_opt_s(item, "result"),
        error_message=get_opt_s(item, "error_message"),
        model_used=get_opt_s(item, "model_used"),
        provider=get_opt_s(item, "provider"),
        usage=Usage(
            input_tokens=get_int(item, "input_tokens"),
            output_tokens=get_int(item, "output_tokens"),
            cost_usd=get_dec(item, "cost_usd"),
        ),
        attempt=get_int(item, "attempt", 1),
        created_at=parse_ts(get_s(item, "created_at")),
        updated_at=parse_ts(get_s(item, "updated_at")),
    )


# --- threads ---------------------------------------------------------------------------------


def thread_to_item(thread: Thread) -> Item:
    item: Item = {
        "pk": s(threads_pk(thread.tenant_id, thread.user_id)),
        "sk": s(thread.thread_id),
        "type": s("thread"),
        "thread_id": s(thread.thread_id),
        "tenant": s(thread.tenant_id),
        "user": s(thread.user_id),
        "metadata": js(thread.metadata),
        "values": js(thread.values),
        "status": s(thread.status.value),
        "config": js(thread.config),
        "created_at": s(ts(thread.created_at)),
        "updated_at": s(ts(thread.updated_at)),
        "state_updated_at": opt_ts(thread.state_updated_at),
        "version": n(thread.version),
    }
    if thread.expires_at is not None:
        item["expires_at"] = n(int(thread.expires_at.timestamp()))
    return item


def item_to_thread(item: Item) -> Thread:
    expires = item.get("expires_at")
    return Thread(
        thread_id=get_s(item, "thread_id"),
        tenant_id=get_s(item, "tenant"),
        user_id=get_s(item, "user"),
        metadata=get_json(item, "metadata", {}),
        values=get_json(item, "values"),
        status=ThreadStatus(get_s(item, "status")),
        config=get_json(item, "config", {}),
        created_at=parse_ts(get_s(item, "created_at")),
        updated_at=parse_ts(get_s(item, "updated_at")),
        state_updated_at=get_opt_ts(item, "state_updated_at"),
        expires_at=(
            None
            if expires is None or "N" not in expires
            else datetime.fromtimestamp(int(expires["N"]), UTC)
        ),
        version=get_int(item, "version", 1),
    )


# --- API keys ---------------------------------------------------------------------------------


def api_key_to_item(key: ApiKey) -> Item:
    return {
        "pk": s(key_pk(key.key_hash)),
        "sk": s(KEY_SK),
        "type": s("api_key"),
        "key_hash": s(key.key_hash),
        "key_id": s(key.key_id),
        "tenant": s(key.tenant_id),
        "user": s(key.user_id),
        "description": s(key.description),
        "created_at": s(ts(key.created_at)),
        "revoked_at": opt_ts(key.revoked_at),
        "gsi1pk": s(tenant_keys_gsi_pk(key.tenant_id)),
        "gsi1sk": s(f"{ts(key.created_at)}#{key.key_id}"),
    }


def item_to_api_key(item: Item) -> ApiKey:
    return ApiKey(
        key_hash=get_s(item, "key_hash"),
        key_id=get_s(item, "key_id"),
        tenant_id=get_s(item, "tenant"),
        user_id=get_s(item, "user"),
        description=get_s(item, "description"),
        created_at=parse_ts(get_s(item, "created_at")),
        revoked_at=get_opt_ts(item, "revoked_at"),
    )
