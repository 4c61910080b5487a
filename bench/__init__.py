"""Benchmarks (``make bench``): figures for the README's performance section, never for tests."""
