"""Each command loads only what it uses: `hostguard audit` and `lint` start without Jinja2,
libseccomp, prometheus_client, jsonschema (for valid policies) or the daemon, and import only
the check kinds their policies use; `hostguard --help` still lists every command."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent import cli
from tests.authoring import TRADING_ROOT, check, policy, sysctl, write
from tests.support import PROJECT, run_cli

HEAVY = ("jinja2", "pyseccomp", "prometheus_client", "jsonschema", "ctypes", "psutil",
         "agent.seccomp", "agent.daemon", "agent.report.html", "agent.enforce", "agent.cli.seccomp",
         "agent.cli.report", "agent.cli.daemon", "agent.cli.history")


def modules_after(code: str) -> set[str]:
    """Names in sys.modules after running ``code`` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        cwd=PROJECT, capture_output=True, text=True, timeout=120, check=False,
        env={"PYTHONPATH": str(PROJECT), "PATH": "/usr/bin:/bin"})
    assert done.returncode in (0, 1), done.stderr
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return set(loaded)


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def commands(modules: set[str]) -> list[str]:
    """The command-line modules among ``modules``."""
    return sorted(m for m in modules if m == "agent.cli" or m.startswith("agent.cli."))


def audit_loads(tmp_path: Path, checks: list[dict[str, Any]]) -> set[str]:
    """The modules loaded by an audit of these checks on the trading fixture (all evaluated)."""
    path = write(tmp_path / "p.yaml", policy("ok", checks))
    out = tmp_path / "out.json"
    loaded = modules_after(
        "import sys\nfrom agent.cli import main\n"
        f"code = main(['audit', '--policy', {str(path)!r}, '--root', {str(TRADING_ROOT)!r}, "
        f"'--format', 'json', '--output', {str(out)!r}])\n"
        "sys.stdout.flush()")
    assert json.loads(out.read_text())["summary"]["total"] == len(checks)
    return loaded


def test_importing_the_cli_loads_no_command() -> None:
    loaded = modules_after("import agent.cli")
    assert heavy(loaded) == []
    assert commands(loaded) == ["agent.cli", "agent.cli.args"]  # the parser class
    assert not any(m.startswith(("agent.checks.", "agent.policy.", "yaml")) for m in loaded)


def test_an_audit_loads_only_what_it_uses(tmp_path: Path) -> None:
    loaded = audit_loads(tmp_path, [
        sysctl("KRN-001", "kernel.kptr_restrict", "ge", 1),
        check("PROC-1", "process", {"name": "telnetd", "forbidden": True})])
    assert heavy(loaded) == []
    kinds = sorted(m for m in loaded if m.startswith("agent.checks.")
                   and m not in ("agent.checks.base", "agent.checks.compare",
                                 "agent.checks.valuekind", "agent.checks.selectors",
                                 "agent.checks.units"))  # units: the selectors' unit part
    assert kinds == ["agent.checks.process", "agent.checks.sysctl"]
    assert commands(loaded) == ["agent.cli", "agent.cli.args", "agent.cli.audit",
                                "agent.cli.output"]
    assert "agent.core.layout" not in loaded  # the installers' alone
    assert "agent.host.sockets" not in loaded  # no ports check: no socket reading at all


def test_an_audit_of_ports_loads_the_socket_reader(tmp_path: Path) -> None:
    loaded = audit_loads(tmp_path, [
        check("NET-1", "ports", {"forbid": [23]}),
        check("PROC-1", "process", {"name": "telnetd", "forbidden": True})])
    assert "agent.host.sockets" in loaded


def test_lint_loads_a_documents_linter_only_for_documents_of_that_kind(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("ok", [
        sysctl("KRN-001", "kernel.kptr_restrict", "ge", 1)]))
    loaded = modules_after(f"from agent.cli import main\nmain(['lint', {str(path)!r}])")
    assert heavy(loaded) == []
    assert commands(loaded) == ["agent.cli", "agent.cli.args", "agent.cli.lint"]
    # policies/ holds seccomp profiles too: their linter comes when they do.
    loaded = modules_after("from agent.cli import main\nmain(['lint', 'policies'])")
    assert "agent.seccomp.lint" in loaded
    assert not any(m.startswith(("jinja2", "prometheus_client", "agent.daemon.service"))
                   for m in loaded)


def test_help_lists_every_command() -> None:
    done = run_cli("--help")
    assert done.returncode == 0, done.stderr
    listed = done.stdout.split("COMMAND ...", 1)[1]
    for command in ("lint", "audit", "exec", "seccomp", "report", "daemon", "history"):
        assert f"\n    {command} " in listed, command


def test_other_commands_still_parse() -> None:
    done = run_cli("report", "--help")
    assert done.returncode == 0 and "render" in done.stdout, done.stderr
    done = run_cli("audit", "--help")
    assert done.returncode == 0 and "--policy" in done.stdout, done.stderr


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_each_command_is_registered_by_the_module_named_for_it(command: str) -> None:
    parser = cli.build_parser(command)
    registered = next(action for action in parser._actions
                      if isinstance(action, argparse._SubParsersAction)).choices
    module = cli.COMMANDS.module(command)
    assert sorted(registered) == sorted(n for n in cli.COMMANDS if cli.COMMANDS.module(n) == module)
