"""Fixtures of tests/report/ that the report commands' tests use too."""

from tests.report.conftest import junit_xsd

__all__ = ["junit_xsd"]
