"""The command line itself: options, suggestions, help, through real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.authoring import TRADING_ROOT, policy, sysctl, write
from tests.support import run_cli

PASSING = [sysctl("KRN-001", "kernel.kptr_restrict", "ge", 1)]


def test_audit_takes_o_like_every_command_that_writes_a_file(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", PASSING))
    out = tmp_path / "r.json"
    done = run_cli("audit", "--today", "2026-06-01", "--policy", str(path), "--root",
                   str(TRADING_ROOT), "--format", "json", "-o", str(out))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[-1] == f"wrote {out}"
    assert json.loads(out.read_text())["summary"]["pass"] == 1
    assert "-o FILE, --output FILE" in run_cli("audit", "--help").stdout


@pytest.mark.parametrize("fmt", ["html", "sarif", "junit"])
def test_audit_format_of_a_report_file_says_to_use_report(fmt: str) -> None:
    done = run_cli("audit", "--format", fmt)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("usage: hostguard audit ")
    assert done.stderr.endswith(f"hostguard audit: error: argument --format: {fmt} is a report "
                                f"file: use --report {fmt} (--format is text or json)\n")


def test_audit_format_otherwise_lists_the_choices() -> None:
    done = run_cli("audit", "--format", "yaml")
    assert done.returncode == 2
    assert done.stderr.endswith("argument --format: invalid choice: 'yaml' (choose from 'text', "
                                "'json')\n")
