"""A one-node graph for the LangGraph dev server in the comparison benchmark.

The benchmark only creates, searches and deletes crons, so the graph never runs;
it just has to exist under the name ``agent`` (the name the SDK examples use).
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, MessagesState, StateGraph


def _answer(_state: MessagesState) -> dict[str, Any]:
    return {"messages": [{"role": "assistant", "content": "ok"}]}


builder = StateGraph(MessagesState)
builder.add_node("answer", _answer)
builder.add_edge(START, "answer")
builder.add_edge("answer", END)
graph = builder.compile()
