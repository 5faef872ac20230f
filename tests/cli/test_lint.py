"""``hostguard lint`` (smoke; the golden tests live in tests/lint/)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.authoring import policy, write
from tests.cli.test_audit import BAD_POLICY, PASSING, TODAY
from tests.support import run_cli


def test_lint_clean(tmp_path: Path) -> None:
    write(tmp_path / "p.yaml", policy("ok", PASSING))
    done = run_cli("lint", "p.yaml", "--today", TODAY, cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "1 file(s) checked: 0 error(s), 0 warning(s)\n", "")


def test_lint_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD_POLICY)
    done = run_cli("lint", "bad.yaml", cwd=tmp_path)
    assert done.returncode == 1
    col = BAD_POLICY.splitlines()[10].index("high") + 1
    assert done.stdout.splitlines() == [
        f"bad.yaml:11:{col}: error: op 'ge' needs an integer value [spec]",
        "1 file(s) checked: 1 error(s), 0 warning(s)",
    ]


def test_lint_missing_path(tmp_path: Path) -> None:
    done = run_cli("lint", "nope", cwd=tmp_path)
    assert done.returncode == 2
    assert "hostguard: nope: No such file or directory" in done.stdout


def test_lint_strict_warnings(tmp_path: Path) -> None:
    write(tmp_path / "p.yaml", policy("ok", PASSING, waivers=[
        {"check": "KRN-001", "reason": "CHG-2", "expires": "2028-01-01"}]))
    lenient = run_cli("lint", "p.yaml", "--today", TODAY, cwd=tmp_path)
    assert lenient.returncode == 0
    assert "warning: waiver for 'KRN-001' runs until 2028-01-01" in lenient.stdout
    assert run_cli("lint", "--strict", "p.yaml", "--today", TODAY, cwd=tmp_path).returncode == 1


def test_lint_formats(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD_POLICY)
    as_json = run_cli("lint", "--format", "json", "bad.yaml", cwd=tmp_path)
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert (data["schema"], data["files"], data["errors"]) == ("hostguard/lint/v1", 1, 1)
    assert data["diagnostics"][0]["rule"] == "spec"
    assert (data["diagnostics"][0]["path"], data["diagnostics"][0]["line"]) == ("bad.yaml", 11)
    sarif = run_cli("lint", "--format", "sarif", "bad.yaml", cwd=tmp_path)
    assert sarif.returncode == 1
    log = json.loads(sarif.stdout)
    assert log["version"] == "2.1.0"
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == ["spec"]
    github = run_cli("lint", "--format", "github", "bad.yaml", cwd=tmp_path)
    assert github.returncode == 1
    assert github.stdout.startswith("::error file=bad.yaml,line=11,")
    missing = run_cli("lint", "--format", "json", "nope", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr == "hostguard: nope: No such file or directory\n"


def test_lint_bad_format() -> None:
    done = run_cli("lint", "--format", "html")
    assert done.returncode == 2
    assert "invalid choice: 'html'" in done.stderr
