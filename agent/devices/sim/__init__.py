"""Simulators that speak the real byte protocols over pseudo-terminals.

Tests and the demo drive the real drivers against these, so the drivers are what is tested.
"""
