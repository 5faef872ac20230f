"""The command line itself: options, suggestions, help, through real subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import COMMANDS
from tests.authoring import TRADING_ROOT, policy, sysctl, write
from tests.support import PROJECT, run_cli

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


# --- a mistyped option -------------------------------------------------------------------------


@pytest.mark.parametrize(("words", "prog", "hint"), [
    (["audit", "--lable", "role=gateway"], "hostguard audit",
     "unrecognized arguments: --lable role=gateway (did you mean --label?)"),
    (["audit", "--polcy", "p.yaml"], "hostguard audit",
     "unrecognized arguments: --polcy p.yaml (did you mean --policy?)"),
    (["audit", "--colour=never"], "hostguard audit",
     "unrecognized arguments: --colour=never (did you mean --color?)"),
    (["report", "render", "r.json", "--fromat", "html"], "hostguard report render",
     "unrecognized arguments: --fromat html (did you mean --format?)"),
    (["seccomp", "compile", "p.yaml", "--lossyy"], "hostguard seccomp compile",
     "unrecognized arguments: --lossyy (did you mean --lossy?)"),
    (["history", "show", "1", "--bd", "x"], "hostguard history show",
     "unrecognized arguments: --bd x (did you mean --db?)"),
    (["audit", "--zzzzzz"], "hostguard audit", "unrecognized arguments: --zzzzzz"),
    (["audit", "stray"], "hostguard audit", "unrecognized arguments: stray"),
])
def test_a_mistyped_option_gets_a_hint_and_the_usage_of_its_command(
        words: list[str], prog: str, hint: str) -> None:
    done = run_cli(*words)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"usage: {prog} ")
    assert done.stderr.endswith(f"\n{prog}: error: {hint}\n")


@pytest.mark.parametrize(("words", "prog", "hint"), [
    (["audti"], "hostguard", "(did you mean audit?)"),
    (["seccomp", "compil", "p.yaml"], "hostguard seccomp", "(did you mean compile?)"),
    (["report", "merj"], "hostguard report", "(did you mean merge?)"),
    (["zzzzzz"], "hostguard", "'policies', 'install-service')"),
])
def test_a_mistyped_command_gets_the_nearest_one(words: list[str], prog: str,
                                                 hint: str) -> None:
    done = run_cli(*words)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"usage: {prog} ")
    word = words[0] if len(words) == 1 else words[1]
    assert f": invalid choice: '{word}'" in done.stderr
    assert done.stderr.endswith(f"{hint}\n")


def test_a_command_that_runs_a_command_keeps_its_own_status() -> None:
    done = run_cli("exec", "--profle", "p.yaml", "--", "true")
    assert done.returncode == 126
    assert done.stderr.startswith("usage: hostguard exec ")
    assert done.stderr.endswith("hostguard exec: unrecognized arguments: --profle (did you mean "
                                "--profile?); the command was not run\n")


# --- the top-level help ------------------------------------------------------------------------


def listed(help_text: str) -> dict[str, str]:
    """The commands a help lists (under its positional arguments) and their one-line summary."""
    found: dict[str, str] = {}
    name = None
    for line in help_text.split("\n\n")[2].splitlines()[2:]:  # past the metavar line
        if line.startswith("    ") and not line.startswith("     "):
            name, _, summary = line.strip().partition(" ")
            found[name] = summary.strip()
        elif name is not None and not found[name]:
            found[name] = line.strip()  # a long name puts its summary on the next line
    return found


def help_of(*words: str) -> str:
    done = subprocess.run([sys.executable, "-m", "agent", *words, "--help"], cwd=PROJECT,
                          env={**os.environ, "PYTHONPATH": str(PROJECT), "COLUMNS": "500"},
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def test_the_top_level_help_lists_every_command_with_what_it_does() -> None:
    top = listed(help_of())
    assert list(top) == list(COMMANDS)
    assert all(top.values()), top
    groups = 0
    for command, summary in top.items():
        sub = help_of(command)
        if "\n  COMMAND\n" not in sub and "\n  SUBCOMMAND\n" not in sub:
            continue  # no subcommands
        groups += 1
        words = set(re.findall(r"[\w-]+", summary))
        missing = [name for name in listed(sub) if name not in words]
        assert not missing, f"{command}: {summary!r} does not name {missing}"
    assert groups == 4  # seccomp, report, history, policies
