"""Trigger overhead per run with the demo agent, in-process against moto.

Each run goes through the real handler (event parsing, the read, the claim and finish
transactions, thread create/delete). Three clocks split each run's wall time:

* the demo agent's own time, measured around its ``invoke``;
* the time spent inside AWS calls, measured with botocore's ``before-call`` /
  ``after-call`` hooks — here that is moto emulating DynamoDB in-process, which
  deep-copies the whole table on every transaction and so grows with the table; on
  AWS it is the network round trip (single-digit milliseconds per call);
* the rest: agentcron's own overhead (validation, cron checks, models, serialisation,
  the worker thread), the figure this benchmark is about.

AWS calls per run are counted exactly with the same hooks.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.stats import median, percentile

RUNS = 300


class _TimedAgent:
    def __init__(self, agent: Any, seconds: list[float]) -> None:
        self._agent = agent
        self._seconds = seconds
        self.graph_id = agent.graph_id

    def invoke(self, input: Any, state: Any, ctx: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._agent.invoke(input, state, ctx)
        finally:
            self._seconds.append(time.perf_counter() - started)


class _TimedCatalog:
    def __init__(self, catalog: Any, seconds: list[float]) -> None:
        self._catalog = catalog
        self._seconds = seconds

    def assistant(self, graph_id: str) -> Any:
        return self._catalog.assistant(graph_id)

    def agent(self, graph_id: str) -> Any:
        return _TimedAgent(self._catalog.agent(graph_id), self._seconds)

    def model_info(self, graph_id: str) -> Any:
        return self._catalog.model_info(graph_id)


def run() -> dict[str, float]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from moto import mock_aws

    from chalicelib.adapters.dynamodb_table import create_schedule_group, create_table
    from chalicelib.clock import FixedClock
    from chalicelib.dependencies import Container
    from chalicelib.domain.models import Principal, Thread, user_message_input
    from chalicelib.local.dispatcher import render_input
    from chalicelib.services.runs import RunExecutor
    from chalicelib.services.schedules import ScheduleDraft, scheduler_entries
    from chalicelib.settings import Settings

    results: dict[str, float] = {}
    with mock_aws():
        start = datetime(2026, 1, 15, 9, tzinfo=UTC)
        clock = FixedClock(start - timedelta(minutes=1))
        settings = Settings.model_validate(
            {"TABLE_NAME": "bench", "SCHEDULE_GROUP": "bench", "SCHEDULE_MIN_INTERVAL_MINS": 1}
        )
        container = Container(settings, clock=clock)
        create_table(container.dynamodb, "bench")
        create_schedule_group(container.scheduler, "bench")
        agent_seconds: list[float] = []
        # The container's own executor, rebuilt around a catalog that times the agent.
        wired = container.run_executor
        executor = RunExecutor(
            runs=container.run_store,
            threads=container.thread_store,
            entries=container.schedule_service.sync,
            agents=_TimedCatalog(container.agent_catalog, agent_seconds),
            webhooks=container.webhooks,
            clock=clock,
            settings=wired.settings,
        )
        principal = Principal(tenant_id="bench", user_id="bench")
        now = clock.now()
        container.thread_store.create(
            Thread(
                thread_id="bench-thread",
                tenant_id="bench",
                user_id="bench",
                created_at=now,
                updated_at=now,
            )
        )
        calls: Counter[str] = Counter()
        aws_seconds: list[float] = [0.0]

        def count(model: Any, context: dict[str, Any], **_: Any) -> None:
            calls[f"{model.service_model.service_id.hyphenize()}.{model.name}"] += 1
            context["bench_started"] = time.perf_counter()

        def done(context: dict[str, Any], **_: Any) -> None:
            aws_seconds[0] += time.perf_counter() - context.pop("bench_started")

        for label, thread_id in (
            ("stateless (new thread, deleted)", None),
            ("thread-bound (state appended)", "bench-thread"),
        ):
            schedule = container.schedule_service.create(
                principal,
                ScheduleDraft(
                    name="bench",
                    cron_expression="* * * * *",
                    input=user_message_input("benchmark"),
                    thread_id=thread_id,
                ),
            )
            template = scheduler_entries(schedule, clock.now())[0].input
            totals: list[float] = []
            agent_seconds.clear()
            calls.clear()
            clients = (container.dynamodb, container.scheduler)
            for client in clients:
                client.meta.events.register("before-call.*.*", count, unique_id="bench")
                client.meta.events.register("after-call.*.*", done, unique_id="bench-done")
            aws: list[float] = []
            offset = timedelta(days=1) if thread_id else timedelta()
            for i in range(RUNS):
                when = start + offset + timedelta(minutes=i)
                clock.set(when + timedelta(seconds=1))
                event = render_input(template, when)
                aws_seconds[0] = 0.0
                began = time.perf_counter()
                result = executor.handle(event, lambda: 900_000)
                totals.append(time.perf_counter() - began)
                aws.append(aws_seconds[0])
                assert result["status"] == "success", result
            for client in clients:
                client.meta.events.unregister("before-call.*.*", unique_id="bench")
                client.meta.events.unregister("after-call.*.*", unique_id="bench-done")
            overhead = [t - a - w for t, a, w in zip(totals, agent_seconds, aws, strict=True)]
            per_run = {k: v / RUNS for k, v in sorted(calls.items())}
            print(f"{label}: {RUNS} runs")
            print(
                f"  handler total    median {median(totals) * 1000:6.2f} ms   p90 "
                f"{percentile(totals, 90) * 1000:6.2f} ms"
            )
            print(f"  demo agent       median {median(agent_seconds) * 1000:6.2f} ms")
            print(f"  inside AWS calls median {median(aws) * 1000:6.2f} ms   (moto, in-process)")
            print(
                f"  trigger overhead median {median(overhead) * 1000:6.2f} ms   p90 "
                f"{percentile(overhead, 90) * 1000:6.2f} ms"
            )
            print(f"  AWS calls / run  {per_run}")
            key = "thread" if thread_id else "stateless"
            results[f"{key}_overhead_ms"] = median(overhead) * 1000
            results[f"{key}_dynamodb_calls"] = sum(
                v for k, v in per_run.items() if k.startswith("dynamodb")
            )
    return results
