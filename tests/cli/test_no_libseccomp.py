"""A host where libseccomp cannot be found (no ld.so.cache, as in a fresh container before
``ldconfig`` ran): the commands that need it exit 2 with one line naming the library, never a
traceback; those that do not still work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.authoring import TRADING_ROOT
from tests.support import PROJECT, need_root, need_tool

SAID = ("hostguard: libseccomp (libseccomp.so.2) cannot be found: seccomp checks and profiles "
        "need it (Debian: apt install libseccomp2; after adding a library, run ldconfig)\n")


def hidden(*command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``command`` in a mount namespace where /etc/ld.so.cache is empty."""
    need_root()
    unshare, mount = need_tool("unshare"), need_tool("mount")
    return subprocess.run(
        [unshare, "--mount", "--propagation", "private", "/bin/sh", "-c",
         f'{mount} --bind /dev/null /etc/ld.so.cache && exec "$@"', "sh", *command],
        cwd=PROJECT, env={**env, "PATH": "/nonexistent", "LD_LIBRARY_PATH": ""},
        capture_output=True, text=True, timeout=120, check=False)


def without_libseccomp(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m agent ARGS`` where ctypes' find_library cannot find libseccomp: it asks
    ``ldconfig -p`` (which reads the cache), then gcc, then ld (none on PATH), as pyseccomp's
    import does."""
    return hidden(sys.executable, "-m", "agent", *args,
                  env={"PYTHONPATH": str(PROJECT), "LC_ALL": "C"})


@pytest.mark.root
def test_the_namespace_really_hides_libseccomp() -> None:
    probe = hidden(sys.executable, "-c",
                   "import ctypes.util; print(ctypes.util.find_library('seccomp'))", env={})
    assert probe.stdout == "None\n", probe.stderr


@pytest.mark.root
@pytest.mark.parametrize("args", [
    ["lint", "policies"],
    ["audit", "--policy", "policies", "--label", "role=gateway", "--root", str(TRADING_ROOT)],
    ["seccomp", "compile", "policies/seccomp/trading-gateway.yaml", "--format", "pfc"],
], ids=["lint", "audit", "seccomp-compile"])
def test_commands_needing_libseccomp_exit_2_naming_it(args: list[str]) -> None:
    done = without_libseccomp(*args)
    assert (done.returncode, done.stderr) == (2, SAID), done.stderr
    assert "Traceback" not in done.stdout


@pytest.mark.root
def test_policies_without_seccomp_checks_still_lint(tmp_path: Path) -> None:
    (tmp_path / "baseline.yaml").write_bytes(
        (PROJECT / "policies/trading-baseline.yaml").read_bytes())
    done = without_libseccomp("lint", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.root
def test_the_daemon_exits_2_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "hostguard.yaml"
    config.write_text(f"apiVersion: hostguard/v1\nkind: AgentConfig\n"
                      f"policies: [{PROJECT / 'policies'}]\nroot: {TRADING_ROOT}\n")
    done = without_libseccomp("daemon", "--config", str(config), "--once", "--no-placement")
    assert done.returncode == 2
    assert done.stderr.endswith(SAID), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.root
@pytest.mark.parametrize("args", [["--help"], ["--version"], ["seccomp", "--help"],
                                  ["seccomp", "compile", "--help"], ["exec", "--help"]],
                         ids=["help", "version", "seccomp-help", "compile-help", "exec-help"])
def test_help_needs_no_libseccomp(args: list[str]) -> None:
    done = without_libseccomp(*args)
    assert done.returncode == 0, done.stderr
    assert "hostguard" in done.stdout


@pytest.mark.root
@pytest.mark.parametrize("command", ["exec", "record"])
def test_a_command_asked_to_run_filtered_is_not_run(command: str, tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    args = (["exec", "--profile", "policies/seccomp/trading-gateway.yaml"] if command == "exec"
            else ["seccomp", "record", "-o", str(tmp_path / "p.yaml")])
    done = without_libseccomp(*args, "--", "/usr/bin/touch", str(ran))
    assert done.returncode == 126, done.stderr
    assert "libseccomp (libseccomp.so.2) cannot be found" in done.stderr
    assert "Traceback" not in done.stderr
    assert not ran.exists()
