"""Schemathesis proves both OpenAPI documents against the app, in process.

Every operation of both documents, with positive (schema-valid) and negative
(schema-violating) data, authenticated with a real key, plus the stateful links
(create → get → update → pause/resume → delete), through ``chalice.test.Client`` and the
real adapters against moto. The checks: no 5xx, status codes, content types, headers and
bodies conform to the document, negative data is rejected, requests without a key are
refused, a deleted resource stays deleted. Not checked: ``positive_data_acceptance`` —
a body can be schema-valid yet refused on purpose by rules JSON Schema cannot state
(a cron expression that does not parse, an unknown timezone, a budget above the
deployment's maximum); those refusals are 4xx in the façade's format, which the other
checks verify.

JSON Schema cannot say "no lone surrogates", "at most 32 levels deep" or "under the size
caps", so the body strategy is widened with exactly those values (:func:`flatmap_body`):
each generated body has, with some probability, one string replaced by a lone
surrogate, one value by a 40-level nesting, or one string by a 100 000-character one;
and positive bodies often get realistic values where JSON Schema cannot say what is valid
(cron expressions, timezones, assistants), so that creates succeed and the stateful links
reach their targets.

Deterministic and cheap: hypothesis derandomised (a fixed seed), a fixed example budget
per operation (``FUZZ_EXAMPLES``, default 6) and stateful steps (``FUZZ_STEPS``, default
25), no example database. ``make fuzz`` raises the budget and prints the case count.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance
from schemathesis.config._auth import AuthConfig
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case

from tests.contract.chalice_wsgi import ChaliceWSGI

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
STEPS = int(os.environ.get("FUZZ_STEPS", "25"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)
CASES: dict[str, int] = {"calls": 0}
# Off for the stateful runs: schemathesis revalidates the bodies of linked steps with a
# validator that cannot encode a lone surrogate (the stateless runs and
# test_adversarial.py cover surrogates).
SURROGATES = {"on": True}
WSGI = ChaliceWSGI()
KEY = "ac_fuzz_key_000000000001"
SKIPPED_CHECKS = [positive_data_acceptance]


class DiscardedWebhooks:
    def send(self, url: str, payload: dict[str, Any], *, secret: str | None = None) -> None:
        return None


@pytest.fixture(scope="module")
def app_env() -> Iterator[dict[str, Any]]:
    from chalice.test import Client
    from moto import mock_aws

    from app import app
    from chalicelib import dependencies
    from chalicelib.adapters.dynamodb_table import create_schedule_group, create_table
    from chalicelib.adapters.local_invoker import InlineRunInvoker
    from chalicelib.clock import FixedClock
    from chalicelib.dependencies import Container
    from chalicelib.settings import Settings
    from tests.conftest import ROOT, START

    config = Settings.model_validate(
        {
            "STAGE": "test",
            "TABLE_NAME": "agentcron-test",
            "SCHEDULE_GROUP": "agentcron-test",
            "RUN_INVOKER": "local",
            "API_KEY_CACHE_SECONDS": 60,
        }
    )
    with mock_aws():
        holder: dict[str, Any] = {}
        container = Container(
            config,
            clock=FixedClock(START),
            invoker=InlineRunInvoker(lambda e, r: holder["c"].trigger_handler(e, r)),
            webhooks=DiscardedWebhooks(),  # offline: run-now fires deliver nowhere
        )
        holder["c"] = container
        create_table(container.dynamodb, config.TABLE_NAME)
        create_schedule_group(container.scheduler, config.SCHEDULE_GROUP)
        dependencies.override(container)
        key, _ = container.api_keys.mint("fuzz", "fuzzer", key=KEY)
        try:
            with Client(app, stage_name="local", project_dir=str(ROOT)) as client:
                WSGI.bind(client)
                yield {"key": key}
        finally:
            dependencies.override(None)
    print(f"\nschemathesis: {CASES['calls']} cases")
    if os.environ.get("FUZZ_REPORT"):
        for key, count in sorted(CASES.items()):
            print(f"  {count:6d}  {key}")


def _load(name: str) -> Any:
    # The committed document (the drift test proves it is the one the app serves); the app
    # is attached once the module's AWS world exists.
    document = json.loads((ROOT / "openapi" / name).read_text(encoding="utf-8"))
    schema = schemathesis.openapi.from_dict(document)
    schema.app = WSGI
    # Both security schemes the documents declare, with the one real key.
    schema.config.auth = AuthConfig(openapi={"apiKey": {"api_key": KEY}, "bearer": {"bearer": KEY}})
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES
    )
    return schema


langgraph = _load("langgraph.json")
shannon = _load("shannon.json")


@pytest.fixture
def auth(app_env: dict[str, Any]) -> dict[str, str]:
    return {"x-api-key": app_env["key"]}


# --- hostile values -------------------------------------------------------------------------


def _hostile_values() -> st.SearchStrategy[Any]:
    deep: Any = "bottom"
    for _ in range(40):
        deep = {"d": deep}
    values: list[Any] = [deep, "h" * 100_000, 10**40, 1e308]
    if SURROGATES["on"]:
        values[:0] = ["\ud800", "x\udfffy"]
    return st.sampled_from(values)


def _replace_one(body: Any, value: Any, pick: int) -> Any:
    """``body`` with its ``pick``-th value (depth first, modulo the count) replaced."""
    slots: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in node:
                slots.append((node, key))
                walk(node[key])
        elif isinstance(node, list):
            for index in range(len(node)):
                slots.append((node, index))
                walk(node[index])

    walk(body)
    if not slots:
        return {"hostile": value} if isinstance(body, dict) else body
    container, key = slots[pick % len(slots)]
    container[key] = value
    return body


# Values that pass the rules JSON Schema cannot state (the cron engine, the timezone
# database, the registered assistants, the deployment's limits), so that creates succeed
# often enough for the stateful links to reach get, update, pause, resume and delete.
REALISTIC: dict[str, st.SearchStrategy[Any]] = {
    "cron_expression": st.sampled_from(["0 9 * * *", "0 */4 * * 1-5", "30 8 1,15 * *"]),
    "schedule": st.sampled_from(["0 9 * * *", "27 15 * * *", "@daily"]),
    "timezone": st.sampled_from(["UTC", "Asia/Shanghai", "America/New_York"]),
    "assistant_id": st.sampled_from(["agent", "demo"]),
    "max_budget_per_run_usd": st.sampled_from([0.5, 5.0, 10.0]),
    "timeout_seconds": st.sampled_from([1, 600, 840]),
    "webhook": st.just("https://hooks.example.com/agentcron"),
    "end_time": st.just("2030-01-01T00:00:00+00:00"),
    "count": st.integers(1, 50),
}


def _realistic(body: Any) -> st.SearchStrategy[Any]:
    if not isinstance(body, dict):
        return st.just(body)
    keys = [k for k in body if k in REALISTIC and body[k] is not None]
    return st.fixed_dictionaries({k: REALISTIC[k] for k in keys}).map(
        lambda chosen: {**body, **chosen}
    )


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    """A hostile value in a quarter of the bodies (any mode: it only adds a reason to refuse)."""
    import copy

    hostile = st.tuples(_hostile_values(), st.integers(0, 50)).map(
        lambda pair: _replace_one(copy.deepcopy(body), pair[0], pair[1])
    )
    return st.integers(0, 3).flatmap(lambda k: hostile if k == 0 else st.just(body))


@schemathesis.hook
def flatmap_case(context: Any, case: Any) -> st.SearchStrategy[Any]:
    """Realistic values in two thirds of the other positive bodies. Negative cases are left
    as generated (their mutation is the point), and so are hostile bodies (schemathesis
    revalidates an edited body, and its validator cannot encode a lone surrogate)."""
    import copy

    from chalicelib.api.http import json_problem

    meta = case._meta
    if (
        not isinstance(case.body, dict)
        or (meta is not None and meta.generation.mode.is_negative)
        or json_problem(case.body) is not None
    ):
        return st.just(case)
    body = case.body

    def with_body(new: Any) -> Any:
        # A new case: hypothesis replays draws, and an edited original would change them.
        return Case(
            case.operation,
            case.method,
            case.path,
            path_parameters=dict(case.path_parameters),
            headers=copy.copy(case.headers),
            cookies=dict(case.cookies),
            query=dict(case.query),
            body=new,
            media_type=case.media_type,
            multipart_content_types=case.multipart_content_types,
            meta=copy.deepcopy(meta),
            _auth=case._auth,
            _has_explicit_auth=case._has_explicit_auth,
        )

    return st.integers(0, 2).flatmap(
        lambda k: (st.just(body), _realistic(body), _realistic(body))[k].map(with_body)
    )


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    CASES["calls"] += 1
    key = f"{case.method} {case.path} {response.status_code}"
    CASES[key] = CASES.get(key, 0) + 1


# --- stateless: every operation -------------------------------------------------------------


@langgraph.parametrize()
@SETTINGS
def test_langgraph_operations(case: Any, auth: dict[str, str]) -> None:
    case.call_and_validate(excluded_checks=SKIPPED_CHECKS)


@shannon.parametrize()
@SETTINGS
def test_shannon_operations(case: Any, auth: dict[str, str]) -> None:
    case.call_and_validate(excluded_checks=SKIPPED_CHECKS)


# --- stateful: the links ----------------------------------------------------------------------


def _forget_everything() -> None:
    from chalicelib.dependencies import container
    from chalicelib.domain.models import Principal
    from chalicelib.services.threads import ThreadQuery

    services = container()
    principal = Principal(tenant_id="fuzz", user_id="fuzzer")
    for schedule in services.schedule_service.list_for_user(principal):
        services.schedule_service.delete(principal, schedule.id)
    threads, _ = services.thread_service.search(principal, ThreadQuery(), offset=0, limit=1000)
    for thread in threads:
        services.thread_service.delete(principal, thread.thread_id)


def _run_state_machine(schema: Any) -> None:
    machine = schema.as_state_machine()

    class Authenticated(machine):  # type: ignore[misc, valid-type]
        def teardown(self) -> None:
            # Every example starts from an empty account: hypothesis replays examples, and
            # what an earlier one left behind (the per-user limit, say) would change them.
            _forget_everything()

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, excluded_checks=SKIPPED_CHECKS)

    _forget_everything()
    SURROGATES["on"] = False
    try:
        hypothesis.stateful.run_state_machine_as_test(
            Authenticated,
            settings=settings(
                SETTINGS, max_examples=max(2, EXAMPLES // 2), stateful_step_count=STEPS
            ),
        )
    finally:
        SURROGATES["on"] = True


def test_langgraph_stateful(auth: dict[str, str]) -> None:
    _run_state_machine(langgraph)


def test_shannon_stateful(auth: dict[str, str]) -> None:
    _run_state_machine(shannon)
