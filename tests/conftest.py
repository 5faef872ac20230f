"""Pytest configuration: hypothesis profiles (CI runs the full example counts)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.support import IN_CI

settings.register_profile("ci", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=150, deadline=None)
settings.load_profile("ci" if IN_CI else "dev")
