"""``audit --report/--output-dir/--keep`` and ``report render`` through real subprocesses."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.report import fleet, junit, sarif, text
from agent.report import json as json_report
from agent.report.load import load_run
from tests.authoring import TRADING_ROOT, policy, sysctl, write
from tests.report.conftest import FIXTURES, fixture_data
from tests.support import PROJECT, run_cli

TODAY = "2026-06-01"


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    return write(tmp_path / "p.yaml", policy("ok", [
        sysctl("KRN-001", "kernel.kptr_restrict", "ge", 1),
        sysctl("LAT-001", "vm.swappiness", "eq", 10)]))


def test_audit_writes_every_requested_report(tmp_path: Path, policy_file: Path,
                                             junit_xsd: Any) -> None:
    out = tmp_path / "out"
    done = run_cli("audit", "--today", TODAY, "--policy", str(policy_file), "--root",
                   str(TRADING_ROOT), "--report", "json,junit,sarif", "--output-dir", str(out))
    assert done.returncode == 1, done.stderr
    names = sorted(os.listdir(out))
    assert len(names) == 3
    stem = names[0].rsplit(".", 1)[0]
    assert names == [f"{stem}.json", f"{stem}.junit.xml", f"{stem}.sarif"]
    assert stem.startswith("trd-gw-01-")
    lines = done.stdout.splitlines()
    assert lines[-3:] == [f"wrote {out / n}" for n in
                          (f"{stem}.json", f"{stem}.junit.xml", f"{stem}.sarif")]
    assert {stat.S_IMODE((out / n).stat().st_mode) for n in names} == {0o640}
    run = load_run(json.loads((out / f"{stem}.json").read_text(encoding="utf-8")))
    assert (out / f"{stem}.sarif").read_text(encoding="utf-8") == sarif.render(run)
    assert (out / f"{stem}.junit.xml").read_text(encoding="utf-8") == junit.render(run)


def test_default_output_dir_and_keep(tmp_path: Path, policy_file: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    for old in ("trd-gw-01-20200101T000000Z.json", "trd-gw-01-20200102T000000Z.json"):
        (reports / old).write_text("{}")
    done = run_cli("audit", "--today", TODAY, "--policy", str(policy_file), "--root",
                   str(TRADING_ROOT), "--report", "json", "--keep", "2", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    names = sorted(os.listdir(reports))
    assert len(names) == 2 and names[0] == "trd-gw-01-20200102T000000Z.json"
    assert done.stdout.splitlines()[-1] == f"wrote reports/{names[1]}"


def test_json_stdout_stays_parseable_with_reports(tmp_path: Path, policy_file: Path) -> None:
    done = run_cli("audit", "--today", TODAY, "--policy", str(policy_file), "--root",
                   str(TRADING_ROOT), "--format", "json", "--report", "sarif", "--output-dir",
                   str(tmp_path / "o"))
    assert json.loads(done.stdout)["schema"] == "hostguard/result/v1"
    assert done.stderr.startswith(f"wrote {tmp_path / 'o'}/trd-gw-01-")


@pytest.mark.parametrize(("args", "message"), [
    (["--report", "pdf"], "argument --report: unknown report format 'pdf'"),
    (["--report", ","], "argument --report: unknown report format ','"),
    (["--report", "json", "--keep", "0"], "argument --keep: not a positive whole number: '0'"),
    (["--keep", "3"], "hostguard: --output-dir and --keep apply to --report only"),
])
def test_report_usage_errors(policy_file: Path, args: list[str], message: str) -> None:
    done = run_cli("audit", "--policy", str(policy_file), "--root", str(TRADING_ROOT), *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_unwritable_output_dir_is_exit_2(tmp_path: Path, policy_file: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = run_cli("audit", "--policy", str(policy_file), "--root", str(TRADING_ROOT),
                   "--report", "json", "--output-dir", str(blocker / "sub"))
    assert done.returncode == 2
    assert done.stderr.startswith(f"hostguard: cannot write reports to {blocker / 'sub'}")


# --- report render -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "junit", "sarif", "text"])
def test_render_each_format_to_stdout(fmt: str) -> None:
    path = FIXTURES / "hostile.json"
    done = run_cli("report", "render", str(path), "--format", fmt)
    assert (done.returncode, done.stderr) == (0, "")
    run = load_run(fixture_data("hostile"))
    expected = {"json": json_report.render, "junit": junit.render, "sarif": sarif.render,
                "text": text.render}[fmt](run)
    assert done.stdout == expected.encode("utf-8", "backslashreplace").decode("utf-8")


def test_render_to_a_file_and_from_stdin(tmp_path: Path) -> None:
    out = tmp_path / "r.sarif"
    done = run_cli("report", "render", str(FIXTURES / "gateway.json"), "--format", "sarif",
                   "-o", str(out))
    assert (done.returncode, done.stdout, done.stderr) == (0, f"wrote {out}\n", "")
    assert out.read_text(encoding="utf-8") == sarif.render(load_run(fixture_data("gateway")))
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    done = subprocess.run([sys.executable, "-m", "agent", "report", "render", "-", "--format",
                           "junit"], input=(FIXTURES / "gateway.json").read_text(),
                          capture_output=True, text=True, timeout=60, check=False, cwd=PROJECT,
                          env={**os.environ, "PYTHONPATH": str(PROJECT)})
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == junit.render(load_run(fixture_data("gateway")))


def test_render_html_when_available() -> None:
    done = run_cli("report", "render", str(FIXTURES / "gateway.json"), "--format", "html")
    assert done.returncode in (0, 2)
    if done.returncode == 2:
        assert "html reports are not available in this build" in done.stderr
    else:
        assert done.stdout.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2"),
    ('{"version": "2.1.0", "runs": []}',
     'not a hostguard/result/v1 document (no "schema" key)'),
    ('{"schema": "hostguard/result/v1"}',
     "invalid hostguard/result/v1 document: $: 'tool' is a required property (and 6 more "
     "problem(s))"),
])
def test_render_refuses_bad_input(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    done = run_cli("report", "render", str(bad), "--format", "text")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"hostguard: {bad}: ")
    assert message in done.stderr


def test_render_missing_file_and_baseline_misuse(tmp_path: Path) -> None:
    done = run_cli("report", "render", str(tmp_path / "nope.json"), "--format", "json")
    assert done.returncode == 2
    assert done.stderr == f"hostguard: {tmp_path / 'nope.json'}: cannot read: No such file or " \
                          "directory\n"
    done = run_cli("report", "render", str(FIXTURES / "gateway.json"), "--format", "json",
                   "--baseline", str(FIXTURES / "gateway.json"))
    assert (done.returncode, done.stderr) == (
        2, "hostguard: --baseline applies to --format html only\n")


@pytest.mark.parametrize(("name", "fmt"), [("r.junit.xml", "junit"), ("r.SARIF", "sarif"),
                                           ("r.txt", "text"), ("r.json", "json")])
def test_render_takes_the_format_from_the_output_name(tmp_path: Path, name: str,
                                                      fmt: str) -> None:
    out = tmp_path / name
    done = run_cli("report", "render", str(FIXTURES / "gateway.json"), "-o", str(out))
    assert (done.returncode, done.stdout, done.stderr) == (0, f"wrote {out}\n", "")
    run = load_run(fixture_data("gateway"))
    expected = {"json": json_report.render, "junit": junit.render, "sarif": sarif.render,
                "text": text.render}[fmt](run)
    assert out.read_text(encoding="utf-8") == expected


def test_render_writes_html_named_by_its_extension(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    done = run_cli("report", "render", str(FIXTURES / "gateway.json"), "-o", str(out))
    assert (done.returncode, done.stderr) == (0, "")
    assert out.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html>")


def test_an_explicit_format_wins_over_the_extension(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    done = run_cli("report", "render", str(FIXTURES / "gateway.json"), "--format", "sarif",
                   "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == sarif.render(load_run(fixture_data("gateway")))


@pytest.mark.parametrize(("output", "why"), [
    ([], ""),
    (["-o", "r.xml"], " (r.xml: not one of .html, .json, .junit.xml, .sarif, .txt)"),
])
def test_render_without_a_format_to_tell(tmp_path: Path, output: list[str], why: str) -> None:
    done = run_cli("report", "render", str(FIXTURES / "gateway.json"), *output, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"hostguard: give --format, or -o FILE whose extension names the "
                           f"format{why}\n")
    assert os.listdir(tmp_path) == []


def test_merge_writes_to_stdout_without_o(tmp_path: Path) -> None:
    names = ["gateway", "hostile"]
    done = run_cli("report", "merge", *(str(FIXTURES / f"{n}.json") for n in names),
                   cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == fleet.render([load_run(fixture_data(n)) for n in names]).encode(
        "utf-8", "backslashreplace").decode("utf-8")
    assert os.listdir(tmp_path) == []
