"""Report files: names, modes, atomic replacement, --keep pruning, hostile hostnames."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from agent.report import json as json_report
from agent.report import writer
from agent.report.load import load_run
from agent.result import AuditRun
from tests.report.conftest import fixture_data


def run_at(started: str, hostname: str = "trd-gw-01") -> AuditRun:
    run = load_run(fixture_data("gateway"))
    return dataclasses.replace(run, started=started,
                               host=dataclasses.replace(run.host, hostname=hostname))


def test_formats_interface() -> None:
    extensions = {name: ext for name, (ext, _) in writer.FORMATS.items()}
    assert {k: v for k, v in extensions.items() if k != "html"} == {
        "json": "json", "junit": "junit.xml", "sarif": "sarif"}
    assert extensions.get("html", "html") == "html"


def test_files_names_modes_and_contents(tmp_path: Path) -> None:
    run = run_at("2026-06-01T08:30:00Z")
    paths = writer.write_reports(run, ["json", "junit", "sarif"], tmp_path / "out")
    assert [p.name for p in paths] == ["trd-gw-01-20260601T083000Z.json",
                                       "trd-gw-01-20260601T083000Z.junit.xml",
                                       "trd-gw-01-20260601T083000Z.sarif"]
    assert {stat.S_IMODE(p.stat().st_mode) for p in paths} == {0o640}
    assert paths[0].read_text(encoding="utf-8") == json_report.render(run)
    assert sorted(os.listdir(tmp_path / "out")) == sorted(p.name for p in paths)


def test_unknown_format_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="unknown report format 'pdf'"):
        writer.write_reports(run_at("2026-06-01T08:30:00Z"), ["json", "pdf"], tmp_path)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("hostname", "stem"), [
    ("trd-gw-01", "trd-gw-01"), ("../../etc/passwd", "_.._etc_passwd"),
    ("<script>\x1b\x00", "_script_"), (".hidden", "hidden"), ("", "unknown"),
    ("..", "unknown"), ("a" * 300, "a" * 64), ("é/ü", "_"),
])
def test_hostnames_never_choose_the_folder(hostname: str, stem: str) -> None:
    assert writer.file_stem(hostname) == stem


def test_timestamps_are_utc() -> None:
    assert writer.timestamp("2026-06-01T08:30:00Z") == "20260601T083000Z"
    assert writer.timestamp("2026-06-01T10:30:00+02:00") == "20260601T083000Z"
    assert writer.timestamp("2026-06-01T08:30:00.123456Z") == "20260601T083000Z"


def test_a_crash_between_write_and_rename_keeps_the_previous_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = run_at("2026-06-01T08:30:00Z")
    (path,) = writer.write_reports(first, ["json"], tmp_path)
    before = path.read_bytes()
    changed = dataclasses.replace(first, duration_ms=99.0)

    def crash(src: str, dst: str) -> None:
        assert Path(src).read_bytes() == json_report.render(changed).encode()  # fully written
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space left on device"):
        writer.write_reports(changed, ["json"], tmp_path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]  # no temp file left behind
    monkeypatch.undo()
    writer.write_reports(changed, ["json"], tmp_path)
    assert path.read_bytes() == json_report.render(changed).encode()


def test_keep_newest_per_format_and_host(tmp_path: Path) -> None:
    other = tmp_path / "other-host-20200101T000000Z.json"
    other.write_text("{}")
    unrelated = tmp_path / "trd-gw-01-notes.json"
    unrelated.write_text("{}")
    for minute in range(5):
        writer.write_reports(run_at(f"2026-06-01T08:3{minute}:00Z"), ["json", "sarif"],
                             tmp_path, keep=2 if minute == 4 else None)
    writer.write_reports(run_at("2026-06-01T09:00:00Z"), ["junit"], tmp_path, keep=1)
    assert sorted(os.listdir(tmp_path)) == [
        "other-host-20200101T000000Z.json",
        "trd-gw-01-20260601T083300Z.json", "trd-gw-01-20260601T083300Z.sarif",
        "trd-gw-01-20260601T083400Z.json", "trd-gw-01-20260601T083400Z.sarif",
        "trd-gw-01-20260601T090000Z.junit.xml",
        "trd-gw-01-notes.json",
    ]


def test_keep_never_deletes_what_it_just_wrote(tmp_path: Path) -> None:
    writer.write_reports(run_at("2026-06-01T08:30:00Z"), ["json"], tmp_path)
    # The clock went back: the new file sorts oldest, but it is the run just audited.
    (path,) = writer.write_reports(run_at("2026-05-01T08:30:00Z"), ["json"], tmp_path, keep=1)
    assert path.exists()
    assert sorted(os.listdir(tmp_path)) == ["trd-gw-01-20260501T083000Z.json",
                                            "trd-gw-01-20260601T083000Z.json"]


def test_keep_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep must be at least 1, not 0"):
        writer.write_reports(run_at("2026-06-01T08:30:00Z"), ["json"], tmp_path, keep=0)
