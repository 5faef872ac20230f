"""agent/cli/output.py: a command's output to stdout, or atomically to a file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.cli.output import say_invalid, write_output
from agent.core.diagnostic import Diagnostic, Level
from agent.core.location import Location


def test_to_stdout_after_what_was_printed(capfd: pytest.CaptureFixture[str]) -> None:
    print("first")
    assert write_output("second ✓\n".encode(), None, 0o600) is None
    assert capfd.readouterr().out == "first\nsecond ✓\n"


def test_to_a_file_with_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    assert write_output(b"data", target, 0o640) is None
    assert target.read_bytes() == b"data"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_file_that_cannot_be_written_says_why(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    target = tmp_path / "plain" / "out.txt"
    assert write_output(b"data", target, 0o640) == f"cannot write {target}: File exists"


def test_an_unusable_document_is_said_on_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    found = Diagnostic(Location("p.yaml", 2, 7), Level.ERROR, "not a profile", "unknown-document")
    say_invalid([found], "invalid profile p.yaml")
    assert capfd.readouterr() == ("", "p.yaml:2:7: error: not a profile [unknown-document]\n"
                                      "hostguard: invalid profile p.yaml\n")
