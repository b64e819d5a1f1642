"""Helpers shared by tests (independent oracles); importable as ``helpers.<module>`` from any test."""
