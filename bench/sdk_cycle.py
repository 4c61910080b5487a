"""The official langgraph_sdk create + search + delete cycle (see the LangGraph façade)."""

from __future__ import annotations


def run() -> dict[str, float]:
    print("not available yet")
    return {}
