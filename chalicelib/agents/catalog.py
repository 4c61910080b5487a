"""The run engine's view of the agents: assistants by graph id, built agents, model names."""

from __future__ import annotations

from chalicelib.agents.base import Agent
from chalicelib.agents.registry import AgentFactory, Assistant, AssistantRegistry
from chalicelib.domain.errors import ConfigurationError


class AgentCatalog:
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
