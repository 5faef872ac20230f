"""Lint output formats: SARIF against the official schema, GitHub annotations, json, text."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from jsonschema import Draft4Validator

from agent.cli import lint as lint_cli
from agent.core.diagnostic import RULES, Diagnostic, Level
from agent.core.location import Location
from agent.lint import output
from agent.lint.engine import LintReport, lint_paths
from tests.policy.builders import policy, write
from tests.support import need_shared

TODAY = dt.date(2026, 11, 24)
GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.fixture(scope="module")
def sarif_validator() -> Draft4Validator:
    path = need_shared("fixtures/schemas/sarif-schema-2.1.0.json")
    schema = json.loads(path.read_text(encoding="utf-8"))
    return Draft4Validator(schema)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def schema_errors(validator: Draft4Validator, log: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(log)]


def bad_report(folder: Path) -> LintReport:
    """Every golden input at once, plus a missing path: many rules, errors and a warning."""
    write(folder, {
        "long.yaml": policy("long", checks=["L-1"], rest=(
            "waivers:\n  - check: L-1\n    reason: r\n    expires: 2030-01-01\n")),
    })
    (folder / "empty-folder").mkdir()
    return lint_paths([str(GOLDEN), "long.yaml", "empty-folder", "missing.yaml"], TODAY)


# --- SARIF -----------------------------------------------------------------------------------


def test_sarif_of_bad_inputs_is_valid(here: Path, sarif_validator: Draft4Validator) -> None:
    report = bad_report(here)
    assert report.errors >= 15
    assert report.warnings == 2
    log = json.loads(output.sarif(report))
    assert schema_errors(sarif_validator, log) == []
    [run] = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted({d.rule for d in report.diagnostics})
    assert len(run["results"]) == len(report.diagnostics)
    for result, diag in zip(run["results"], report.diagnostics, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == diag.rule
        assert result["level"] == diag.level.value
        assert result["message"]["text"] == diag.message
        [loc] = result["locations"]
        region = loc["physicalLocation"]["region"]
        assert (region["startLine"], region["startColumn"]) == (diag.location.line,
                                                                diag.location.col)
    for rule in rules:
        assert rule["help"]["text"] == RULES[rule["id"]].help
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False  # a path on the command line is missing
    assert [n["message"]["text"] for n in invocation["toolExecutionNotifications"]] == [
        "missing.yaml: No such file or directory",
    ]


def test_sarif_artifact_uris(here: Path, sarif_validator: Draft4Validator) -> None:
    report = bad_report(here)
    log = json.loads(output.sarif(report))
    run = log["runs"][0]
    base = run["originalUriBaseIds"]["SRCROOT"]["uri"]
    assert base == here.resolve().as_uri() + "/"
    for result, diag in zip(run["results"], report.diagnostics, strict=True):
        artifact = result["locations"][0]["physicalLocation"]["artifactLocation"]
        uri = artifact["uri"]
        if urlsplit(uri).scheme == "file":  # outside the working folder: absolute
            assert "uriBaseId" not in artifact
            assert unquote(urlsplit(uri).path) == diag.location.path
        else:
            assert artifact["uriBaseId"] == "SRCROOT"
            assert unquote(uri) == diag.location.path
    paths = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
             for r in run["results"]}
    assert "long.yaml" in paths
    assert GOLDEN.joinpath("tabs.yaml").as_uri() in paths


def test_sarif_quotes_odd_file_names(here: Path, sarif_validator: Draft4Validator) -> None:
    write(here, {"odd dir/100% sure#1.yaml": policy("odd", checks=["O-1", "O-1"])})
    log = json.loads(output.sarif(lint_paths(["odd dir"], TODAY)))
    assert schema_errors(sarif_validator, log) == []
    [result] = log["runs"][0]["results"]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "odd%20dir/100%25%20sure%231.yaml"


def test_sarif_of_a_clean_run(here: Path, sarif_validator: Draft4Validator) -> None:
    write(here, {"ok.yaml": policy("ok", checks=["A-1"])})
    report = lint_paths(["ok.yaml"], TODAY)
    assert report.diagnostics == ()
    log = json.loads(output.sarif(report))
    assert schema_errors(sarif_validator, log) == []
    run = log["runs"][0]
    assert (run["results"], run["tool"]["driver"]["rules"]) == ([], [])
    assert run["invocations"][0]["executionSuccessful"] is True
    assert log["version"] == "2.1.0"


def test_the_validator_does_reject_bad_sarif(sarif_validator: Draft4Validator) -> None:
    log = json.loads(output.sarif(LintReport((), 0, ())))
    log["runs"][0]["results"] = [{"level": "fatal", "message": {"text": "x"}}]
    assert schema_errors(sarif_validator, log) != []


# --- GitHub annotations ----------------------------------------------------------------------


def test_github_escapes_properties_and_data() -> None:
    diag = Diagnostic(Location("dir,a:b%c\nd.yaml", 3, 4), Level.WARNING,
                      "100% bad\r\nnext: a, b", "waiver-long")
    report = LintReport((diag,), 1, ("x,y: 50%\nz",))
    assert output.github(report) == (
        "::warning file=dir%2Ca%3Ab%25c%0Ad.yaml,line=3,col=4,title=waiver-long"
        "::100%25 bad%0D%0Anext: a, b\n"
        "::error::x,y: 50%25%0Az\n"
    )


def _unescape_property(value: str) -> str:
    return re.sub(r"%([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), value)


def test_github_annotation_round_trips_a_real_odd_file_name(here: Path) -> None:
    name = "a,b: 50%\nc.yaml"
    write(here, {name: policy("odd", checks=["O-1", "O-1"])})
    text = output.github(lint_paths([name], TODAY))
    [line] = text.splitlines()
    match = re.fullmatch(r"::error file=([^,]*),line=(\d+),col=(\d+),title=([^:]*)::(.*)", line)
    assert match is not None, line
    assert _unescape_property(match[1]) == name
    assert match.group(2, 3, 4) == ("12", "9", "duplicate-id")
    assert match[5] == "duplicate check id 'O-1' (first defined at line 5)"


def test_github_of_a_clean_run_is_empty() -> None:
    assert output.github(LintReport((), 3, ())) == ""


# --- json and text ---------------------------------------------------------------------------


def test_json_parses_and_counts_match(here: Path) -> None:
    report = bad_report(here)
    body = json.loads(output.json_(report))
    assert body["schema"] == "hostguard/lint/v1"
    diagnostics = body["diagnostics"]
    assert len(diagnostics) == len(report.diagnostics)
    assert body["errors"] == sum(d["level"] == "error" for d in diagnostics) == report.errors
    assert body["warnings"] == sum(d["level"] == "warning" for d in diagnostics) == 2
    assert body["files"] == report.files
    assert body["usage_errors"] == ["missing.yaml: No such file or directory"]
    assert {d["rule"] for d in diagnostics} <= set(RULES)
    first = report.diagnostics[0]
    assert diagnostics[0] == {
        "path": first.location.path, "line": first.location.line,
        "column": first.location.col, "level": first.level.value, "rule": first.rule,
        "message": first.message,
    }


def test_text_lists_diagnostics_usage_and_summary(here: Path) -> None:
    report = bad_report(here)
    lines = output.text(report).splitlines()
    assert lines[: len(report.diagnostics)] == [str(d) for d in report.diagnostics]
    assert lines[-2:] == [
        "hostguard: missing.yaml: No such file or directory",
        f"{report.files} file(s) checked: {report.errors} error(s), 2 warning(s)",
    ]


def test_every_format_is_registered() -> None:
    assert sorted(output.FORMATS) == ["github", "json", "sarif", "text"]
    assert sorted(output.FORMATS) == sorted(lint_cli.FORMATS)  # the parser's names
