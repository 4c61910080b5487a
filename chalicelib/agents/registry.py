"""The assistant registry (graph id → agent configuration) and the factory that builds agents.

Registry file format (``assistants.json`` next to this module, or ``ASSISTANTS_FILE``)::

    {
      "_comment": "keys starting with '_' are notes",
      "demo":    {"agent": "demo", "model": "demo-1", "max_tokens": 512,
                  "description": "..."},
      "bedrock": {"agent": "bedrock", "model": "anthropic.claude-3-haiku-20240307-v1:0",
                  "max_tokens": 1024, "system": "...", "temperature": 0.2},
      "openai":  {"agent": "openai", "model": "gpt-4o-mini", "max_tokens": 1024},
      "mine":    {"agent": "langgraph", "graph": "my_pkg.graphs:graph",
                  "model": "gpt-4o-mini", "max_tokens": 1024}
    }

Common keys: ``agent`` (the kind), ``model``, ``max_tokens`` (the output bound every
reservation uses), optional ``system`` and ``description``. Kind-specific keys go to
:attr:`Assistant.options`:

========== ==================================================================
demo       (none)
bedrock    ``temperature``, ``top_p`` (Converse ``inferenceConfig``)
openai     ``temperature``, ``max_tokens_param`` (``max_tokens`` or
           ``max_completion_tokens``, for models that only accept the latter)
langgraph  ``graph`` = ``"module.path:attribute"`` (required); ``model`` is optional
           and is the price of any call whose own model is not priced (see
           :mod:`chalicelib.agents.langgraph_graph`); ``system`` is not accepted
           because the graph owns its prompts
========== ==================================================================

Design decisions:

* **A model without a price is a configuration error**, raised when the registry is
  loaded and naming the assistant and the model. Otherwise the run would be
  metered at nothing and no budget could ever stop it.
* **Unknown keys are errors**, so a typo (``max_token``) cannot silently fall back to
  a default.
* **System assistant ids** are derived as LangGraph derives them (uuid5 in LangGraph's
  own namespace), so an id a LangGraph client computed or cached keeps working.
  :meth:`AssistantRegistry.resolve` accepts that UUID (any case) or the graph name.
* **Lazy imports.** This module imports nothing heavier than the standard library and
  :mod:`chalicelib.agents.base`; each agent module (and with it boto3, urllib's
  HTTP stack, langgraph/langchain_core) is imported by :meth:`AgentFactory.build`,
  so the API Lambda's cold start does not pay for agents it never runs. The boto3
  Bedrock client itself comes from the dependency container, lazily.
* ``created_at`` is a constant: registered assistants have no creation event, and a
  constant keeps API responses stable across cold starts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

from chalicelib.agents.base import Agent, ModelPrice
from chalicelib.domain.errors import ConfigurationError

DEFAULT_ASSISTANTS_FILE = Path(__file__).resolve().parent / "assistants.json"

LANGGRAPH_ASSISTANT_NAMESPACE = UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
"""LangGraph's namespace for system assistant ids (not RFC 4122's URL namespace ``6ba7b811``)."""

ASSISTANTS_CREATED_AT = datetime(2025, 1, 1, tzinfo=UTC)

KINDS = ("demo", "bedrock", "openai", "langgraph")

# The largest output any supported model accepts is far below this; a bigger value is a typo.
MAX_OUTPUT_TOKENS_LIMIT = 1_000_000

_COMMON_KEYS = frozenset({"agent", "model", "max_tokens", "system", "description"})
_OPTION_KEYS: dict[str, frozenset[str]] = {
    "demo": frozenset(),
    "bedrock": frozenset({"temperature", "top_p"}),
    "openai": frozenset({"temperature", "max_tokens_param"}),
    "langgraph": frozenset({"graph"}),
}


def system_assistant_id(graph_id: str) -> str:
    """The id LangGraph gives a graph's default ("system") assistant."""
    return str(uuid5(LANGGRAPH_ASSISTANT_NAMESPACE, graph_id))


@dataclass(frozen=True)
class Assistant:
    """One registered agent configuration."""

    graph_id: str
    assistant_id: str
    kind: str
    """One of :data:`KINDS`."""
    model: str | None
    """The priced model id; ``None`` only for a langgraph assistant (see the module doc)."""
    max_tokens: int
    system: str | None = None
    description: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    created_at: datetime = ASSISTANTS_CREATED_AT


class AssistantRegistry:
    """The deployment's assistants, by graph id and by system assistant id."""

    def __init__(self, assistants: list[Assistant], prices: Mapping[str, ModelPrice]) -> None:
        self._prices = dict(prices)
        self._by_graph: dict[str, Assistant] = {}
        for assistant in assistants:
            if assistant.graph_id in self._by_graph:
                raise ConfigurationError(f"assistant {assistant.graph_id!r} is registered twice")
            if assistant.model is not None and assistant.model not in self._prices:
                raise ConfigurationError(_unpriced(assistant.graph_id, assistant.model))
            self._by_graph[assistant.graph_id] = assistant
        self._by_id = {a.assistant_id: a for a in self._by_graph.values()}

    @classmethod
    def load(cls, path: str | Path, prices: Mapping[str, ModelPrice]) -> AssistantRegistry:
        """Read and validate a registry file.

        Raises:
            ConfigurationError: the file is unreadable or malformed, an entry has an
                unknown kind or key, a non-positive ``max_tokens``, or a model that
                has no price in ``prices``.
        """
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read assistants file {path}: {exc.strerror or exc}"
            ) from exc
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"assistants file {path} is not valid JSON: {exc.msg} "
                f"(line {exc.lineno}, column {exc.colno})"
            ) from exc
        if not isinstance(document, dict):
            raise ConfigurationError(f"assistants file {path} must be an object: graph id → agent")
        assistants = [
            _parse_assistant(str(path), graph_id, entry, prices)
            for graph_id, entry in document.items()
            if not graph_id.startswith("_")
        ]
        if not assistants:
            raise ConfigurationError(f"assistants file {path} registers no assistant")
        return cls(assistants, prices)

    def get(self, graph_id: str) -> Assistant | None:
        return self._by_graph.get(graph_id)

    def resolve(self, assistant_id_or_graph_name: str) -> Assistant | None:
        """The assistant named by a graph id or by its system assistant UUID (any case)."""
        by_name = self._by_graph.get(assistant_id_or_graph_name)
        if by_name is not None:
            return by_name
        try:
            canonical = str(UUID(assistant_id_or_graph_name))
        except ValueError:
            return None
        return self._by_id.get(canonical)

    def all(self) -> list[Assistant]:
        """Every assistant, in file order."""
        return list(self._by_graph.values())

    def price_for(self, assistant: Assistant) -> ModelPrice:
        """The price of the assistant's configured model.

        Raises:
            ConfigurationError: the assistant has no configured model (a langgraph
                assistant that prices each call by the model it names).
        """
        if assistant.model is None:
            raise ConfigurationError(
                f"assistant {assistant.graph_id!r} has no configured model; "
                "its calls are priced by the models the graph uses"
            )
        return self._prices[assistant.model]

    @property
    def prices(self) -> Mapping[str, ModelPrice]:
        return self._prices


def _unpriced(graph_id: str, model: str) -> str:
    return (
        f"assistant {graph_id!r} uses model {model!r}, which has no price; add it to "
        "MODEL_PRICES_FILE (a model without a price would run without a budget)"
    )


def _parse_assistant(
    source: str, graph_id: str, entry: Any, prices: Mapping[str, ModelPrice]
) -> Assistant:
    where = f"assistants file {source}: {graph_id!r}"
    if not graph_id.strip() or len(graph_id) > 255:
        raise ConfigurationError(f"{where}: a graph id must be 1-255 characters")
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where} must be an object")
    kind = entry.get("agent")
    if kind not in KINDS:
        raise ConfigurationError(
            f"{where}: unknown agent kind {kind!r}; expected one of {', '.join(KINDS)}"
        )
    unknown = sorted(set(entry) - _COMMON_KEYS - _OPTION_KEYS[kind])
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown key(s) for a {kind} agent: {', '.join(unknown)}"
        )

    model = entry.get("model")
    if model is None and kind != "langgraph":
        raise ConfigurationError(f"{where}: a {kind} agent needs a model")
    if model is not None and (not isinstance(model, str) or not model):
        raise ConfigurationError(f"{where}: model must be a non-empty string")
    if model is not None and model not in prices:
        raise ConfigurationError(_unpriced(graph_id, model))

    max_tokens = entry.get("max_tokens")
    if (
        isinstance(max_tokens, bool)
        or not isinstance(max_tokens, int)
        or not 0 < max_tokens <= MAX_OUTPUT_TOKENS_LIMIT
    ):
        raise ConfigurationError(
            f"{where}: max_tokens must be a positive integer (at most {MAX_OUTPUT_TOKENS_LIMIT}), "
            f"not {max_tokens!r}"
        )
    for key in ("system", "description"):
        if key in entry and not isinstance(entry[key], str):
            raise ConfigurationError(f"{where}: {key} must be a string")
    if kind == "langgraph" and "system" in entry:
        raise ConfigurationError(f"{where}: a langgraph agent's prompts belong to its graph")

    options = {key: entry[key] for key in _OPTION_KEYS[kind] if key in entry}
    _check_options(where, kind, options)
    return Assistant(
        graph_id=graph_id,
        assistant_id=system_assistant_id(graph_id),
        kind=kind,
        model=model,
        max_tokens=max_tokens,
        system=entry.get("system"),
        description=entry.get("description"),
        options=options,
    )


def _check_options(where: str, kind: str, options: dict[str, Any]) -> None:
    temperature_max = 1.0 if kind == "bedrock" else 2.0
    for key, upper in (("temperature", temperature_max), ("top_p", 1.0)):
        if key in options:
            value = options[key]
            if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
                raise ConfigurationError(f"{where}: {key} must be a number")
            if not 0 <= value <= upper:
                raise ConfigurationError(f"{where}: {key} must be between 0 and {upper:g}")
    if kind == "openai" and options.get("max_tokens_param", "max_tokens") not in (
        "max_tokens",
        "max_completion_tokens",
    ):
        raise ConfigurationError(
            f"{where}: max_tokens_param must be 'max_tokens' or 'max_completion_tokens'"
        )
    if kind == "langgraph":
        ref = options.get("graph")
        module, _, attribute = ref.partition(":") if isinstance(ref, str) else ("", "", "")
        if not module or not attribute:
            raise ConfigurationError(
                f'{where}: a langgraph agent needs "graph": "module.path:attribute", got {ref!r}'
            )


class AgentFactory:
    """Builds (once per graph id) the agent for an assistant.

    Providers are injected so that nothing here creates clients or reads settings:

    Args:
        registry: the assistants.
        prices: every known price (a langgraph agent prices each call by its model).
        bedrock_client: returns the shared boto3 ``bedrock-runtime`` client; called
            on the first Bedrock call, never at build time.
        openai_base_url: e.g. ``https://api.openai.com/v1`` or a compatible server.
        openai_api_key: sent as ``Authorization: Bearer``; empty for servers without auth.
            A callable is asked on every call (a secret read at run time, cached there).
        http_timeout_cap: the longest a single provider call may take, in seconds,
            even when the run has more time left.
    """

    def __init__(
        self,
        registry: AssistantRegistry,
        prices: Mapping[str, ModelPrice],
        *,
        bedrock_client: Callable[[], Any],
        openai_base_url: str,
        openai_api_key: str | Callable[[], str],
        http_timeout_cap: float,
    ) -> None:
        if http_timeout_cap <= 0:
            raise ConfigurationError("http_timeout_cap must be positive")
        self._registry = registry
        self._prices = dict(prices)
        self._bedrock_client = bedrock_client
        self._openai_base_url = openai_base_url
        self._openai_api_key = openai_api_key
        self._http_timeout_cap = http_timeout_cap
        self._agents: dict[str, Agent] = {}
        self._lock = threading.Lock()

    def build(self, assistant: Assistant) -> Agent:
        """The agent for ``assistant``, constructed on first use and cached per graph id.

        Raises:
            ConfigurationError: the agent cannot be built (e.g. a langgraph assistant
                without the ``langgraph`` package, or an unusable OpenAI base URL).
        """
        with self._lock:
            agent = self._agents.get(assistant.graph_id)
            if agent is None:
                agent = self._construct(assistant)
                self._agents[assistant.graph_id] = agent
            return agent

    def _price(self, assistant: Assistant) -> ModelPrice:
        if assistant.model is None or assistant.model not in self._prices:
            raise ConfigurationError(_unpriced(assistant.graph_id, str(assistant.model)))
        return self._prices[assistant.model]

    def _construct(self, assistant: Assistant) -> Agent:
        options = assistant.options
        if assistant.kind == "demo":
            from chalicelib.agents.demo import DemoAgent

            return DemoAgent(
                graph_id=assistant.graph_id,
                price=self._price(assistant),
                max_tokens=assistant.max_tokens,
                system=assistant.system,
            )
        if assistant.kind == "bedrock":
            from chalicelib.agents.bedrock import BedrockAgent

            return BedrockAgent(
                graph_id=assistant.graph_id,
                price=self._price(assistant),
                max_tokens=assistant.max_tokens,
                client_factory=self._bedrock_client,
                system=assistant.system,
                temperature=_float_or_none(options.get("temperature")),
                top_p=_float_or_none(options.get("top_p")),
                timeout_cap=self._http_timeout_cap,
            )
        if assistant.kind == "openai":
            from chalicelib.agents.openai_compat import OpenAICompatibleAgent

            return OpenAICompatibleAgent(
                graph_id=assistant.graph_id,
                price=self._price(assistant),
                max_tokens=assistant.max_tokens,
                base_url=self._openai_base_url,
                api_key=self._openai_api_key,
                system=assistant.system,
                temperature=_float_or_none(options.get("temperature")),
                max_tokens_param=str(options.get("max_tokens_param", "max_tokens")),
                timeout_cap=self._http_timeout_cap,
            )
        if assistant.kind == "langgraph":
            try:
                from chalicelib.agents.langgraph_graph import LangGraphAgent
            except ImportError as exc:
                raise ConfigurationError(
                    f"assistant {assistant.graph_id!r} is a langgraph agent, but {exc.name} is "
                    "not installed; add langgraph to the deployment's requirements.txt"
                ) from exc
            return LangGraphAgent(
                graph_id=assistant.graph_id,
                graph_ref=str(options["graph"]),
                prices=self._prices,
                default_price=None if assistant.model is None else self._price(assistant),
            )
        raise ConfigurationError(
            f"assistant {assistant.graph_id!r}: unknown kind {assistant.kind!r}"
        )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


class AgentCatalog:
    """The run engine's view of the agents: assistants by graph id, built agents, model names."""

    def __init__(self, registry: AssistantRegistry, factory: AgentFactory) -> None:
        self._registry = registry
        self._factory = factory

    def assistant(self, graph_id: str) -> Assistant | None:
        return self._registry.get(graph_id)

    def agent(self, graph_id: str) -> Agent:
        assistant = self._registry.get(graph_id)
        if assistant is None:
            raise ConfigurationError(f"no assistant is registered for graph {graph_id!r}")
        return self._factory.build(assistant)

    def model_info(self, graph_id: str) -> tuple[str | None, str | None]:
        """The configured model and its provider (used when no call reported one)."""
        assistant = self._registry.get(graph_id)
        if assistant is None or assistant.model is None:
            return None, None
        price = self._registry.prices.get(assistant.model)
        return assistant.model, None if price is None else price.provider
