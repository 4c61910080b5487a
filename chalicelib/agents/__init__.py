"""Agents: what a run executes. ``base``: the protocol; ``registry``: graph id → agent."""
