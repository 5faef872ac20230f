"""Fixtures of the daemon tests: a recorded history (see ``tests.daemon.histories``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.daemon.history import History
from agent.result import AuditRun
from tests.daemon.histories import PLAN, make_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[AuditRun]:
    folder = tmp_path_factory.mktemp("policies")
    return [make_run(folder, checks, started) for started, checks in PLAN]


@pytest.fixture
def db(tmp_path: Path, runs: list[AuditRun]) -> Iterator[Path]:
    """A history holding the five runs of PLAN (ids 1..5)."""
    path = tmp_path / "state" / "history.db"
    with History(path) as history:
        assert [history.record(r) for r in runs] == [1, 2, 3, 4, 5]
    yield path
