"""hostguard installed as a user installs it: ``pip install .`` (not editable, no extras) into a
fresh virtual environment, then run from a folder that is not the checkout.

One environment for the module (building it is the slow part). The checkout is copied first
(without the virtual environment, caches and tests), so that the build leaves nothing behind in
it. Needs ``python3 -m venv`` and the package index pip is configured with; in CI a missing one
fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import __version__
from agent.core import shipped
from tests.support import PROJECT, need

LEFT_OUT = shutil.ignore_patterns(".*", "__pycache__", "*.egg-info", "build", "dist", "tests",
                                  "benchmarks", "reports")


class Installed:
    """A virtual environment holding hostguard, and a folder to run it from."""

    def __init__(self, venv: Path, elsewhere: Path) -> None:
        self.venv = venv
        self.elsewhere = elsewhere
        self.hostguard = venv / "bin" / "hostguard"
        self.site = Path(self.python("import agent, pathlib; "
                                     "print(pathlib.Path(agent.__file__).parent)").strip())

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``hostguard ARGS`` from :attr:`elsewhere`, with nothing of the checkout on the path."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return subprocess.run([str(self.hostguard), *args], cwd=self.elsewhere, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def python(self, code: str) -> str:
        done = subprocess.run([str(self.venv / "bin" / "python"), "-c", code], cwd=self.elsewhere,
                              capture_output=True, text=True, timeout=60, check=True,
                              env={"PATH": "/usr/bin:/bin"})
        return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    top = tmp_path_factory.mktemp("installed")
    probe = subprocess.run([sys.executable, "-m", "venv", "--help"], capture_output=True,
                           check=False)
    need(probe.returncode == 0, "python3 -m venv is not available (Debian: python3-venv)")
    source = top / "source"
    shutil.copytree(PROJECT, source, ignore=LEFT_OUT)
    venv = top / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet",
                           "--disable-pip-version-check", str(source)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    elsewhere = top / "elsewhere"
    elsewhere.mkdir()
    yield Installed(venv, elsewhere)


def test_the_wheel_carries_the_policies_profiles_configuration_and_units(
        installed: Installed) -> None:
    inside = installed.site / "shipped"
    for path in shipped.policy_files():
        name = path.relative_to(PROJECT / "policies")
        assert (inside / "policies" / name).read_bytes() == path.read_bytes()
    for unit in ("hostguard.yaml", "systemd/hostguard.service", "systemd/deep-seccomp.conf",
                 "systemd/clock-read.conf"):
        assert (inside / "packaging" / unit).read_bytes() == \
            (PROJECT / "packaging" / unit).read_bytes()
    done = installed.run("--version")
    assert (done.returncode, done.stdout) == (0, f"hostguard {__version__}\n")


def test_no_test_tool_is_installed(installed: Installed) -> None:
    found = installed.python("import importlib.util as u; print(*[m for m in ('pytest', "
                             "'hypothesis', 'mypy', 'ruff', 'lxml', 'playwright') "
                             "if u.find_spec(m)])")
    assert found.strip() == ""


def test_audit_without_policy_from_another_folder(installed: Installed) -> None:
    done = installed.run("audit", "--label", "role=gateway")
    assert done.returncode in (0, 1, 3), done.stderr
    system = shipped.SYSTEM_POLICIES
    if system.is_dir():
        assert done.stderr.startswith(f"hostguard: no --policy given: auditing with {system}\n")
        return
    used = installed.site / "shipped" / "policies"
    assert done.stderr.startswith(f"hostguard: no --policy given and no {system}: auditing "
                                  f"with the policies shipped with hostguard ({used})\n")
    # Every shipped policy took part, the gateway's seccomp one (which names a profile in
    # seccomp/) included; locations name the installed files.
    assert f"({used}/trading-baseline.yaml:" in done.stdout
    assert f"({used}/gateway-seccomp.yaml:" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("hostguard audit of ")


def test_policies_list_show_copy(installed: Installed) -> None:
    names = [p.relative_to(PROJECT / "policies").as_posix() for p in shipped.policy_files()]
    listed = installed.run("policies", "list")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == names
    shown = installed.run("policies", "show", "seccomp/trading-gateway.yaml")
    assert shown.stdout == (PROJECT / "policies/seccomp/trading-gateway.yaml").read_text()
    out = installed.elsewhere / "copied"
    copied = installed.run("policies", "copy", str(out))
    assert copied.returncode == 0, copied.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml")) == sorted(names)
    again = installed.run("policies", "copy", str(out))
    assert again.returncode == 0
    assert {line.split()[0] for line in again.stdout.splitlines()} == {"unchanged"}
    # The copy lints clean by itself: the profiles came along.
    linted = installed.run("lint", str(out))
    assert linted.returncode == 0, linted.stdout


def test_install_service_names_the_installed_hostguard(installed: Installed) -> None:
    root = installed.elsewhere / "root"
    root.mkdir()
    done = installed.run("install-service", "--root", str(root))
    assert done.returncode == 0, done.stdout + done.stderr
    unit = (root / "etc/systemd/system/hostguard.service").read_text()
    assert f"\nExecStart={installed.hostguard} daemon --config /etc/hostguard/hostguard.yaml\n" \
        in unit
    assert (root / "etc/hostguard/policies/seccomp/trading-gateway.yaml").is_file()
