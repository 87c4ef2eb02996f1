"""Deterministic synthetic consortium for demos, tests and benchmarks."""
