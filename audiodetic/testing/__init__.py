"""Helpers for tests and benchmarks: random checkpoints in the official layouts (no real weights needed)."""
