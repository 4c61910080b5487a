"""The assistant registry, the price files, the agent factory and the lazy-import rule."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from chalicelib.agents.base import ModelPrice
from chalicelib.agents.demo import DemoAgent
from chalicelib.agents.pricing import DEFAULT_PRICES_FILE, load_prices
from chalicelib.agents.registry import (
    ASSISTANTS_CREATED_AT,
    DEFAULT_ASSISTANTS_FILE,
    AgentFactory,
    Assistant,
    AssistantRegistry,
    system_assistant_id,
)
from chalicelib.domain.errors import ConfigurationError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prices() -> dict[str, ModelPrice]:
    return load_prices(DEFAULT_PRICES_FILE, None)


@pytest.fixture(scope="module")
def registry(prices: dict[str, ModelPrice]) -> AssistantRegistry:
    return AssistantRegistry.load(DEFAULT_ASSISTANTS_FILE, prices)


def write_json(tmp_path: Path, name: str, document: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return str(path)


# --- system assistant ids and resolution --------------------------------------------------


def test_system_assistant_id_matches_langgraph_derivation() -> None:
    assert system_assistant_id("agent") == "fe096781-5601-53d2-b2f6-0d3403f7e9ca"


def test_default_registry_registers_the_builtin_graphs(registry: AssistantRegistry) -> None:
    # Given the shipped assistants.json / When listed / Then file order, all kinds covered
    graph_ids = [a.graph_id for a in registry.all()]
    assert graph_ids == ["demo", "agent", "bedrock", "openai"]
    assert [a.kind for a in registry.all()] == ["demo", "demo", "bedrock", "openai"]
    agent = registry.get("agent")
    assert agent is not None
    assert agent.assistant_id == "fe096781-5601-53d2-b2f6-0d3403f7e9ca"
    assert agent.model == "demo-1"
    assert agent.created_at == ASSISTANTS_CREATED_AT
    bedrock = registry.get("bedrock")
    assert bedrock is not None and bedrock.options == {"temperature": 0.2}
    assert bedrock.system


@pytest.mark.parametrize(
    "reference",
    [
        "agent",
        "fe096781-5601-53d2-b2f6-0d3403f7e9ca",
        "FE096781-5601-53D2-B2F6-0D3403F7E9CA",
        "fe096781560153d2b2f60d3403f7e9ca",
    ],
)
def test_resolve_accepts_graph_name_or_uuid_in_any_case(
    registry: AssistantRegistry, reference: str
) -> None:
    resolved = registry.resolve(reference)
    assert resolved is not None and resolved.graph_id == "agent"


@pytest.mark.parametrize(
    "reference",
    ["nope", "", str(system_assistant_id("nope")), "00000000-0000-0000-0000-000000000000"],
)
def test_resolve_unknown_reference_is_none(registry: AssistantRegistry, reference: str) -> None:
    assert registry.resolve(reference) is None


def test_price_for_returns_the_configured_models_price(
    registry: AssistantRegistry, prices: dict[str, ModelPrice]
) -> None:
    openai = registry.get("openai")
    assert openai is not None
    assert registry.price_for(openai) == prices["gpt-4o-mini"]


# --- registry validation ------------------------------------------------------------------


def _entry(**overrides: Any) -> dict[str, Any]:
    return {"agent": "demo", "model": "demo-1", "max_tokens": 100, **overrides}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_entry(agent="wizard"), "unknown agent kind 'wizard'"),
        (_entry(model="gpt-9-ultra"), "'broken' uses model 'gpt-9-ultra', which has no price"),
        (_entry(max_tokens=0), "max_tokens must be a positive integer"),
        (_entry(max_tokens=-5), "max_tokens must be a positive integer"),
        (_entry(max_tokens="100"), "max_tokens must be a positive integer"),
        (_entry(max_tokens=True), "max_tokens must be a positive integer"),
        (_entry(max_token=100), "unknown key(s) for a demo agent: max_token"),
        (_entry(temperature=0.5), "unknown key(s) for a demo agent: temperature"),
        ({"agent": "demo", "max_tokens": 10}, "a demo agent needs a model"),
        (_entry(agent="langgraph"), 'needs "graph": "module.path:attribute"'),
        (_entry(agent="langgraph", graph="no_colon"), 'needs "graph": "module.path:attribute"'),
        (_entry(agent="langgraph", graph="m:g", system="hi"), "prompts belong to its graph"),
        (_entry(agent="bedrock", temperature=1.5), "temperature must be between 0 and 1"),
        (_entry(agent="openai", max_tokens_param="tokens"), "max_tokens_param must be"),
        (_entry(system=42), "system must be a string"),
        ("not an object", "must be an object"),
    ],
)
def test_registry_rejects_invalid_entries(
    tmp_path: Path, prices: dict[str, ModelPrice], entry: Any, message: str
) -> None:
    path = write_json(tmp_path, "assistants.json", {"broken": entry})
    with pytest.raises(ConfigurationError) as raised:
        AssistantRegistry.load(path, prices)
    assert message in str(raised.value)


def test_model_without_price_names_assistant_and_model(
    tmp_path: Path, prices: dict[str, ModelPrice]
) -> None:
    # Given a deployment whose prices lack the assistant's model
    path = write_json(
        tmp_path, "a.json", {"nightly": {"agent": "openai", "model": "gpt-5", "max_tokens": 9}}
    )
    # Then loading fails loudly instead of creating a free run
    with pytest.raises(ConfigurationError, match=r"'nightly' uses model 'gpt-5'.*no price"):
        AssistantRegistry.load(path, prices)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must be an object"),
        ('{"_comment": "only notes"}', "registers no assistant"),
    ],
)
def test_registry_rejects_malformed_files(
    tmp_path: Path, prices: dict[str, ModelPrice], content: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        AssistantRegistry.load(write_json(tmp_path, "a.json", content), prices)


def test_registry_missing_file_is_a_configuration_error(
    tmp_path: Path, prices: dict[str, ModelPrice]
) -> None:
    with pytest.raises(ConfigurationError, match="cannot read assistants file"):
        AssistantRegistry.load(tmp_path / "absent.json", prices)


def test_langgraph_assistant_may_omit_model(tmp_path: Path, prices: dict[str, ModelPrice]) -> None:
    path = write_json(
        tmp_path,
        "a.json",
        {"mine": {"agent": "langgraph", "graph": "pkg.mod:graph", "max_tokens": 5}},
    )
    registry = AssistantRegistry.load(path, prices)
    mine = registry.get("mine")
    assert mine is not None and mine.model is None and mine.options == {"graph": "pkg.mod:graph"}
    with pytest.raises(ConfigurationError, match="no configured model"):
        registry.price_for(mine)


def test_registry_constructor_refuses_unpriced_and_duplicate_assistants(
    prices: dict[str, ModelPrice],
) -> None:
    def assistant(graph_id: str, model: str) -> Assistant:
        return Assistant(
            graph_id, system_assistant_id(graph_id), "demo", model, max_tokens=10, options={}
        )

    with pytest.raises(ConfigurationError, match="no price"):
        AssistantRegistry([assistant("x", "unpriced")], prices)
    with pytest.raises(ConfigurationError, match="registered twice"):
        AssistantRegistry([assistant("x", "demo-1"), assistant("x", "demo-1")], prices)


# --- prices ---------------------------------------------------------------------------------


def test_default_prices_are_exact_decimals(prices: dict[str, ModelPrice]) -> None:
    mini = prices["gpt-4o-mini"]
    assert (mini.provider, mini.input_per_million, mini.output_per_million) == (
        "openai",
        Decimal("0.15"),
        Decimal("0.60"),
    )
    assert prices["demo-1"].provider == "agentcron"
    assert prices["demo-1"].input_per_million > 0 and prices["demo-1"].output_per_million > 0
    for model in (
        "anthropic.claude-3-haiku-20240307-v1:0",
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "amazon.nova-lite-v1:0",
        "amazon.nova-pro-v1:0",
        "gpt-4o",
        "gpt-4.1-mini",
    ):
        assert prices[model].input_per_million > 0


def test_json_numbers_are_parsed_without_float_rounding(tmp_path: Path) -> None:
    # Given a price written as a JSON number that float cannot represent exactly
    path = tmp_path / "p.json"
    path.write_text(
        '{"models": {"m": {"provider": "p", "input_per_million": 0.1, "output_per_million": 3, '
        '"max_output_tokens": 4096}}}'
    )
    price = load_prices(path, None)["m"]
    assert price.input_per_million == Decimal("0.1")
    assert price.output_per_million == Decimal(3)
    assert price.cost(1_000_000, 0) == Decimal("0.1")


def test_override_is_merged_per_model_and_field(tmp_path: Path) -> None:
    override = write_json(
        tmp_path,
        "override.json",
        {
            "as_of": "2026-01",
            "models": {
                "gpt-4o": {"input_per_million": "2.00"},
                "llama3:8b": {
                    "provider": "ollama",
                    "input_per_million": 0,
                    "output_per_million": 0,
                    "max_output_tokens": 2048,
                },
            },
        },
    )
    prices = load_prices(DEFAULT_PRICES_FILE, override)
    assert prices["gpt-4o"] == ModelPrice(
        "gpt-4o", "openai", Decimal("2.00"), Decimal("10.00"), max_output_tokens=16384
    )
    assert prices["llama3:8b"].provider == "ollama"
    assert prices["gpt-4o-mini"].input_per_million == Decimal("0.15")  # untouched


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{oops", "is not valid JSON"),
        (
            '{"models": {"m": {"provider": "p", "input_per_million": NaN, '
            '"output_per_million": 1, "max_output_tokens": 1}}}',
            "NaN is not a price",
        ),
        ({"prices": {}}, 'must be an object with a "models" object'),
        ({"models": {"m": "1.0"}}, "'m' must be an object"),
        (
            {"models": {"m": {"provider": "p", "input_per_million": 1}}},
            "missing max_output_tokens, output_per_million",
        ),
        (
            {"models": {"m": {"provider": "p", "input_per_million": 1, "output_per_million": 1}}},
            "missing max_output_tokens",
        ),
        (
            {
                "models": {
                    "m": {
                        "provider": "p",
                        "input_per_million": 1,
                        "output_per_million": 1,
                        "max_output_tokens": 0,
                    }
                }
            },
            "max_output_tokens must be a positive integer",
        ),
        (
            {
                "models": {
                    "m": {
                        "provider": "p",
                        "input": 1,
                        "output_per_million": 1,
                        "max_output_tokens": 8,
                    }
                }
            },
            "unknown field(s) input",
        ),
        (
            {
                "models": {
                    "m": {
                        "provider": "p",
                        "input_per_million": -1,
                        "output_per_million": 1,
                        "max_output_tokens": 8,
                    }
                }
            },
            "finite, non-negative",
        ),
        (
            {
                "models": {
                    "m": {
                        "provider": "p",
                        "input_per_million": "x",
                        "output_per_million": 1,
                        "max_output_tokens": 8,
                    }
                }
            },
            "not a decimal number",
        ),
        (
            {
                "models": {
                    "m": {
                        "provider": "p",
                        "input_per_million": True,
                        "output_per_million": 1,
                        "max_output_tokens": 8,
                    }
                }
            },
            "must be a number",
        ),
        (
            {
                "models": {
                    "m": {
                        "provider": "",
                        "input_per_million": 1,
                        "output_per_million": 1,
                        "max_output_tokens": 8,
                    }
                }
            },
            "provider must be a non-empty string",
        ),
    ],
)
def test_malformed_price_files_are_configuration_errors(
    tmp_path: Path, document: Any, message: str
) -> None:
    path = write_json(tmp_path, "override.json", document)
    with pytest.raises(ConfigurationError) as raised:
        load_prices(DEFAULT_PRICES_FILE, path)
    assert message in str(raised.value)
    assert "override.json" in str(raised.value)


def test_missing_price_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read model prices file"):
        load_prices(DEFAULT_PRICES_FILE, str(tmp_path / "absent.json"))


# --- the factory ----------------------------------------------------------------------------


def test_factory_builds_and_caches_agents_without_creating_clients(
    registry: AssistantRegistry, prices: dict[str, ModelPrice]
) -> None:
    # Given a factory whose Bedrock client provider records every call
    created: list[str] = []

    def bedrock_client() -> Any:
        created.append("bedrock")
        raise AssertionError("the client must not be created at build time")

    factory = AgentFactory(
        registry,
        prices,
        bedrock_client=bedrock_client,
        openai_base_url="https://api.openai.com/v1",
        openai_api_key="sk-test",
        http_timeout_cap=30.0,
    )
    demo = registry.get("demo")
    assert demo is not None
    # When agents are built
    agent = factory.build(demo)
    agents = {a.graph_id: factory.build(a) for a in registry.all()}
    # Then each is built once per graph id, of the right class, and no client was created
    assert isinstance(agent, DemoAgent) and factory.build(demo) is agent
    assert agents["demo"] is agent
    assert type(agents["bedrock"]).__name__ == "BedrockAgent"
    assert type(agents["openai"]).__name__ == "OpenAICompatibleAgent"
    assert created == []


def test_factory_rejects_a_non_http_openai_base_url(
    registry: AssistantRegistry, prices: dict[str, ModelPrice]
) -> None:
    factory = AgentFactory(
        registry,
        prices,
        bedrock_client=lambda: None,
        openai_base_url="file:///etc",
        openai_api_key="",
        http_timeout_cap=30.0,
    )
    openai = registry.get("openai")
    assert openai is not None
    with pytest.raises(ConfigurationError, match="OPENAI_BASE_URL must be an http"):
        factory.build(openai)


# --- cold start -----------------------------------------------------------------------------

_HEAVY = ("boto3", "botocore", "langgraph", "langchain_core", "urllib.request", "http.client")

_PROBE = f"""
import sys
from chalicelib.agents.pricing import DEFAULT_PRICES_FILE, load_prices
from chalicelib.agents.registry import DEFAULT_ASSISTANTS_FILE, AgentFactory, AssistantRegistry

prices = load_prices(DEFAULT_PRICES_FILE, None)
registry = AssistantRegistry.load(DEFAULT_ASSISTANTS_FILE, prices)
factory = AgentFactory(registry, prices, bedrock_client=lambda: None,
                       openai_base_url="https://api.openai.com/v1", openai_api_key="",
                       http_timeout_cap=30.0)
factory.build(registry.get("demo"))
heavy = {_HEAVY!r}
print(sorted(m for m in sys.modules if m in heavy or m.split(".")[0] in heavy))
"""


def test_importing_the_registry_and_building_the_demo_agent_stays_light() -> None:
    # Given a fresh interpreter / When the registry is imported, loaded and used
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=REPO, capture_output=True, text=True, check=True
    )
    # Then no heavy agent dependency was imported
    assert completed.stdout.strip() == "[]", completed.stdout + completed.stderr
