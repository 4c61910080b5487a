"""Nothing of a timed-out run keeps running: overrunning agent threads are stopped.

Two agents that ignore their deadline and swallow ordinary exceptions — one of ours
(a test double of the Agent protocol spinning in pure Python) and a user LangGraph
graph whose node sleeps in a loop — run through the real run engine with a 1 s
timeout. When the trigger returns, the run is recorded as a timeout and none of its
threads is alive. (About 2 s each: the deadline and the unwind allowance are real time.)
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.models import Principal, user_message_input
from chalicelib.services.runs import RunExecutor, TriggerEvent
from chalicelib.services.schedules import ScheduleDraft
from tests.helpers import assistants_file, deliver, langgraph_assistant, scheduled_event

ALICE = Principal(tenant_id="tenant-a", user_id="alice")
NINE = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    return {
        "ASSISTANTS_FILE": assistants_file(tmp_path, runaway=langgraph_assistant("runaway_graph"))
    }


class Spinner:
    """An agent that never looks at its context and swallows ``Exception``."""

    graph_id = "agent"

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None

    def invoke(self, input: Any, state: Any, ctx: Any) -> Any:
        self.thread = threading.current_thread()
        spins = 0
        while True:
            try:
                spins += 1
            except Exception:
                continue


class OneAgent:
    """The container's catalog, except that every assistant runs ``agent``."""

    def __init__(self, inner: Any, agent: Any) -> None:
        self._inner, self._agent = inner, agent

    def assistant(self, graph_id: str) -> Any:
        return self._inner.assistant(graph_id)

    def agent(self, graph_id: str) -> Any:
        return self._agent

    def model_info(self, graph_id: str) -> Any:
        return self._inner.model_info(graph_id)


def make(container: Any, graph: str) -> Any:
    return container.schedule_service.create(
        ALICE,
        ScheduleDraft(
            name="runaway",
            cron_expression="0 9 * * *",
            input=user_message_input("go"),
            assistant=graph,
            timeout_seconds=1,
        ),
    )


def run_threads(run_id: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in (f"agent-{run_id}", "langgraph-runaway")]


def test_a_spinning_agent_is_stopped_when_its_run_times_out(container: Any, clock: Any) -> None:
    spinner = Spinner()
    wired = container.run_executor
    executor = RunExecutor(
        runs=container.run_store,
        threads=container.thread_store,
        entries=container.schedule_service.sync,
        agents=OneAgent(container.agent_catalog, spinner),
        webhooks=container.webhooks,
        clock=clock,
        settings=wired.settings,
    )
    sched = make(container, "agent")
    clock.set(NINE + timedelta(seconds=1))
    event = TriggerEvent.model_validate(scheduled_event(container, sched.id, NINE))
    summary = executor.execute(event, lambda: 900_000)
    assert summary.status == "timeout"
    assert spinner.thread is not None and not spinner.thread.is_alive()


def test_a_runaway_langgraph_node_is_stopped_when_its_run_times_out(
    container: Any, clock: Any
) -> None:
    sched = make(container, "runaway")
    clock.set(NINE + timedelta(seconds=1))
    result = deliver(container, sched.id, NINE)
    assert result["status"] == "timeout"
    assert [t.name for t in run_threads(result["run_id"]) if t.is_alive()] == []
    [run] = container.run_store.list_for_schedule(ALICE, sched.id, offset=0, limit=1)
    assert run.error_message == "run exceeded its timeout of 1 s"
