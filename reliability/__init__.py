"""Fault, load and fuzz scenarios with figures (`make reliability`); see docs/reliability.md."""
