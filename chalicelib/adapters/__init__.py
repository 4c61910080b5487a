"""Adapters: one module per AWS service, each with its client injected (created lazily)."""
