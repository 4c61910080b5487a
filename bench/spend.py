"""Spend control's cost: the budget meter per model call, and the AWS bill per million runs.

**Meter overhead.** ``RunContext.model_call`` around an instant provider, timed per call:
without a monthly cap (``guard=None``: no AWS call), and with one and two caps (the
DynamoDB spend guard: one conditional UpdateItem per cap to reserve, one per cap to
settle). The time inside AWS calls (moto, in-process, measured with botocore's
``before-call``/``after-call`` hooks) is reported apart from the rest (the meter, the
guard, and botocore building and parsing the requests); on AWS each of those calls is a
network round trip.

**AWS bill per million runs.** Fires of a stateless schedule through the real trigger
handler (demo agent, one model call), without and with a user cap. Every AWS request is
recorded from botocore's ``before-call`` hook with its parameters, and turned into
billed units by DynamoDB's rules (a transactional write: 2 WRU per KB of each item; a
write: 1 WRU per KB; a strongly consistent read: 1 RRU per 4 KB of each key read — a
key that finds no item is counted as 1 RRU too). Item sizes are computed from the
items written (DynamoDB's size rules: attribute names plus values). Then, with the
list prices of ``bench/aws_prices.json``::

    bill = runs × ( duration_s × memory_GB × price_GB_s + price_request      (Lambda)
                  + WRU × price_WRU + RRU × price_RRU                         (DynamoDB)
                  + price_scheduler_invocation )                              (Scheduler)

``duration_s`` is the handler's measured median here (an in-process demo agent): a real
agent's model time adds ``memory_GB × price_GB_s`` per second per run, printed too.
CloudWatch Logs ingestion and X-Ray are not included.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.stats import median

ROOT = Path(__file__).resolve().parent.parent
PRICES = Path(__file__).resolve().parent / "aws_prices.json"
NO_CAP_CALLS = 20_000
CAP_CALLS = 600
RUNS = 150
MILLION = Decimal(1_000_000)


# --- DynamoDB item sizes and billed units ------------------------------------------------------


def value_size(value: dict[str, Any]) -> int:
    (kind, raw), *_ = value.items()
    if kind == "S":
        return len(str(raw).encode("utf-8"))
    if kind == "N":
        digits = str(raw).lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in raw)
    return len(json.dumps(raw))


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode("utf-8")) + value_size(v) for name, v in item.items())


def _key_id(key: dict[str, Any]) -> tuple[str, str]:
    return key["pk"]["S"], key["sk"]["S"]


class BilledUnits:
    """Records each request's parameters (botocore's ``before-parameter-build``); computes WRU
    and RRU once the runs are over."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.calls: Counter[str] = Counter()

    def hook(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        name = f"{model.service_model.service_id.hyphenize()}.{model.name}"
        self.calls[name] += 1
        self.requests.append((name, json.loads(json.dumps(params, default=str))))

    def units(self, stored_size: Callable[[tuple[str, str]], int | None]) -> tuple[int, int]:
        written: dict[tuple[str, str], int] = {}
        wru = rru = 0

        def size_of(key: dict[str, Any]) -> int:
            ident = _key_id(key)
            return written.get(ident) or stored_size(ident) or 1024

        for name, params in self.requests:
            if name == "dynamodb.BatchGetItem":
                for table in params["RequestItems"].values():
                    rru += sum(max(1, math.ceil(size_of(k) / 4096)) for k in table["Keys"])
            elif name == "dynamodb.TransactWriteItems":
                for entry in params["TransactItems"]:
                    (op, body), *_ = entry.items()
                    if op == "Put":
                        size = item_size(body["Item"])
                        written[_key_id(body["Item"])] = size
                    else:
                        size = size_of(body["Key"])
                    wru += 2 * max(1, math.ceil(size / 1024))
            elif name in ("dynamodb.UpdateItem", "dynamodb.DeleteItem"):
                wru += max(1, math.ceil(size_of(params["Key"]) / 1024))
            elif name == "dynamodb.PutItem":
                wru += max(1, math.ceil(item_size(params["Item"]) / 1024))
            elif name == "dynamodb.GetItem":
                rru += max(1, math.ceil(size_of(params["Key"]) / 4096))
        return wru, rru


# --- the sections ------------------------------------------------------------------------------


def _container(clock: Any) -> Any:
    from chalicelib.adapters.dynamodb_table import create_schedule_group, create_table
    from chalicelib.dependencies import Container
    from chalicelib.settings import Settings

    settings = Settings.model_validate(
        {"TABLE_NAME": "bench", "SCHEDULE_GROUP": "bench", "SCHEDULE_MIN_INTERVAL_MINS": 1}
    )
    container = Container(settings, clock=clock)
    create_table(container.dynamodb, "bench")
    create_schedule_group(container.scheduler, "bench")
    return container


def _aws_timer(client: Any) -> tuple[list[float], Callable[[], None]]:
    spent = [0.0]

    def before(context: dict[str, Any], **_: Any) -> None:
        context["bench_t"] = time.perf_counter()

    def after(context: dict[str, Any], **_: Any) -> None:
        spent[0] += time.perf_counter() - context.pop("bench_t")

    client.meta.events.register("before-call.*.*", before, unique_id="spend-b")
    client.meta.events.register("after-call.*.*", after, unique_id="spend-a")

    def stop() -> None:
        client.meta.events.unregister("before-call.*.*", unique_id="spend-b")
        client.meta.events.unregister("after-call.*.*", unique_id="spend-a")

    return spent, stop


def meter_overhead(container: Any) -> dict[str, float]:
    from chalicelib.agents.base import BudgetMeter, CallUsage, ModelPrice, RunContext
    from chalicelib.domain.caps import Cap, CapScope

    price = ModelPrice("m", "p", Decimal("3"), Decimal("15"))
    now = datetime(2026, 1, 15, 9, tzinfo=UTC)

    def answer(_: float) -> tuple[str, CallUsage]:
        return "ok", CallUsage(100, 50)

    results: dict[str, float] = {}
    cases = (
        ("no cap (guard=None)", (), NO_CAP_CALLS),
        ("user cap", (Cap(CapScope.USER, Decimal(10**6)),), CAP_CALLS),
        (
            "user + tenant caps",
            (Cap(CapScope.USER, Decimal(10**6)), Cap(CapScope.TENANT, Decimal(10**6))),
            CAP_CALLS,
        ),
    )
    for label, caps, calls in cases:
        guard = container.spend_store.guard(caps, "bench", f"u{len(caps)}", now) if caps else None
        meter = BudgetMeter(limit_usd=Decimal(10**9), guard=guard)
        ctx = RunContext(
            run_id="r",
            schedule_id="s",
            thread_id=None,
            deadline=time.monotonic() + 3600,
            budget=meter,
        )
        aws, stop = _aws_timer(container.dynamodb)
        began = time.perf_counter()
        for _ in range(calls):
            ctx.model_call(price, prompt_tokens=200, max_output_tokens=100, call=answer)
        total = time.perf_counter() - began
        stop()
        per_call = total / calls * 1e6
        own = (total - aws[0]) / calls * 1e6
        aws_calls = 0 if guard is None else guard.calls / calls
        print(
            f"  {label:22} {per_call:9.1f} µs/call   outside AWS calls {own:7.1f} µs   "
            f"AWS calls/call {aws_calls:.0f}   ({calls} calls)"
        )
        key = label.split(" (")[0].replace(" + ", "_").replace(" ", "_")
        results[f"meter_{key}_own_us"] = own
    return results


def bill(container: Any, clock: Any) -> dict[str, float]:
    from chalicelib.domain.caps import CapOverride, CapScope
    from chalicelib.domain.models import Principal, user_message_input
    from chalicelib.local.dispatcher import render_input
    from chalicelib.services.schedules import ScheduleDraft, scheduler_entries

    prices = json.loads(PRICES.read_text())
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    memory_gb = Decimal(config["lambda_functions"]["run_trigger"]["lambda_memory_size"]) / 1024
    gb_s = Decimal(prices["lambda_gb_second_x86"]["usd"])
    per_request = Decimal(prices["lambda_request"]["usd_per_million"]) / MILLION
    per_wru = Decimal(prices["dynamodb_write_request_unit"]["usd_per_million"]) / MILLION
    per_rru = Decimal(prices["dynamodb_read_request_unit"]["usd_per_million"]) / MILLION
    per_fire = Decimal(prices["scheduler_invocation"]["usd_per_million"]) / MILLION
    results: dict[str, float] = {}
    client = container.dynamodb
    start = datetime(2026, 1, 15, 9, tzinfo=UTC)
    for label, user in (("no cap", "plain"), ("user cap", "capped")):
        principal = Principal(tenant_id="bench", user_id=user)
        if user == "capped":
            container.spend_store.set_override(
                CapOverride(CapScope.USER, "bench", user, Decimal(10**6)), clock.now()
            )
        schedule = container.schedule_service.create(
            principal,
            ScheduleDraft(
                name="bench", cron_expression="* * * * *", input=user_message_input("bench")
            ),
        )
        template = scheduler_entries(schedule, clock.now())[0].input
        units = BilledUnits()
        client.meta.events.register(
            "before-parameter-build.*.*", units.hook, unique_id="spend-units"
        )
        durations = []
        for i in range(RUNS):
            when = start + timedelta(minutes=i)
            clock.set(when + timedelta(seconds=1))
            began = time.perf_counter()
            result = container.run_executor.handle(render_input(template, when), lambda: 900_000)
            durations.append(time.perf_counter() - began)
            assert result["status"] == "success", result
        client.meta.events.unregister("before-parameter-build.*.*", unique_id="spend-units")

        def stored(ident: tuple[str, str]) -> int | None:
            found = client.get_item(
                TableName="bench", Key={"pk": {"S": ident[0]}, "sk": {"S": ident[1]}}
            ).get("Item")
            return None if found is None else item_size(dict(found))

        wru, rru = units.units(stored)
        duration = Decimal(str(median(durations)))
        lambda_usd = duration * memory_gb * gb_s + per_request
        dynamo_usd = (Decimal(wru) * per_wru + Decimal(rru) * per_rru) / RUNS
        run_usd = lambda_usd + dynamo_usd + per_fire
        calls = {k: round(v / RUNS, 2) for k, v in sorted(units.calls.items())}
        print(f"  {label}: {calls} per run; {wru / RUNS:.1f} WRU + {rru / RUNS:.1f} RRU per run")
        print(
            f"    per million runs: Lambda ${lambda_usd * MILLION:,.2f} "
            f"({float(duration) * 1000:.1f} ms × {memory_gb} GB + request), "
            f"DynamoDB ${dynamo_usd * MILLION:,.2f}, Scheduler ${per_fire * MILLION:,.2f}"
            f"  → total ${run_usd * MILLION:,.2f}"
        )
        results[f"bill_{user}_usd_per_million"] = float(run_usd * MILLION)
    per_second = memory_gb * gb_s * MILLION
    print(f"  each second of agent (model) time adds ${per_second:,.2f} per million runs")
    return results


def run() -> dict[str, float]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from moto import mock_aws

    from chalicelib.clock import FixedClock

    results: dict[str, float] = {}
    with mock_aws():
        clock = FixedClock(datetime(2026, 1, 15, 8, 59, tzinfo=UTC))
        container = _container(clock)
        print("budget meter per model call (instant provider; moto for the guard's calls):")
        results.update(meter_overhead(container))
        print("AWS bill per million runs (stateless schedule, demo agent, 1 model call):")
        results.update(bill(container, clock))
    return results
