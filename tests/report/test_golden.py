"""Golden files per format, rendered from the fixed results in ``fixtures/`` off the host.

Regenerate fixtures and goldens after an intended change with::

    UPDATE_GOLDEN=1 /tmp/tv/bin/pytest tests/report/test_golden.py   # (any pytest works)

then review the diff: every changed line is a change in what auditors and CI systems read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.report import json as json_report
from agent.report import junit, sarif, text
from agent.report.load import load_run
from agent.result import AuditRun
from tests.report.conftest import FIXTURES, HERE, NAMES, fixture_data
from tests.report.runs import gateway_run, hostile_run

GOLDEN = HERE / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN", "") not in ("", "0")
RENDERERS: dict[str, Callable[[AuditRun], str]] = {
    "junit.xml": junit.render,
    "sarif": sarif.render,
    "txt": lambda run: text.render(run, verbose=True),
}


def _compare(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual, encoding="utf-8", errors="surrogateescape")
    expected = path.read_text(encoding="utf-8", errors="surrogateescape")
    assert actual == expected, f"{path.name} differs: UPDATE_GOLDEN=1 pytest tests/report"


def test_fixtures_are_what_the_runs_produce(tmp_path: Path) -> None:
    _compare(FIXTURES / "gateway.json", json_report.render(gateway_run(tmp_path)))
    _compare(FIXTURES / "hostile.json", json_report.render(hostile_run()))


@pytest.mark.parametrize("name", NAMES)
def test_json_round_trip_is_exact(name: str) -> None:
    text_ = (FIXTURES / f"{name}.json").read_text(encoding="utf-8")
    assert json_report.render(load_run(fixture_data(name))) == text_


@pytest.mark.parametrize("extension", sorted(RENDERERS))
@pytest.mark.parametrize("name", NAMES)
def test_golden(name: str, extension: str) -> None:
    run = load_run(fixture_data(name))
    _compare(GOLDEN / f"{name}.{extension}", RENDERERS[extension](run))


@pytest.mark.parametrize("extension", sorted(RENDERERS))
def test_rendering_off_the_host_equals_rendering_on_it(tmp_path: Path, extension: str) -> None:
    live = gateway_run(tmp_path)
    loaded = load_run(json_report.as_dict(live))
    assert RENDERERS[extension](loaded) == RENDERERS[extension](live)
    assert json_report.render(loaded) == json_report.render(live)
