"""Benchmarks: every figure measured against a raw baseline in the same run."""
