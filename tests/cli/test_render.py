"""agent/cli/render.py: one run in any report format, for `report render` and `history show`."""

from __future__ import annotations

import sys

import pytest

from agent.cli import render
from agent.report import json as json_report
from agent.report import text as text_report
from agent.report.writer import FORMATS
from tests.report.runs import hostile_run


def test_the_formats_are_the_report_files_and_text() -> None:
    assert render.RUN_FORMATS == ("html", "json", "junit", "sarif", "text")
    assert set(render.RUN_FORMATS) == {*FORMATS, "text"}


def test_each_format_as_its_renderer_writes_it() -> None:
    run = hostile_run()
    assert render.rendered(run, "json") == json_report.render(run).encode()
    assert render.rendered(run, "text", verbose=True) == text_report.render(run, True).encode(
        "utf-8", "backslashreplace")
    junit = FORMATS["junit"][1](run)
    assert render.rendered(run, "junit") == (junit if isinstance(junit, bytes) else junit.encode())


def test_html_missing_from_the_build_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "agent.report.html", None)  # imports of it fail
    assert render.rendered(hostile_run(), "html") == (
        "html reports are not available in this build (agent/report/html.py is missing)")
