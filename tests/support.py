"""Shared test helpers (import as ``from tests.support import ...``).

``need(condition, reason)`` skips a test on a developer's machine that lacks a component (root,
``../shared``, a system tool) but fails it under ``CI=true``: a skip in CI would be a hollow run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) unless ``condition`` holds."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def need_root() -> None:
    need(os.geteuid() == 0, "needs root")


def need_shared(relative: str) -> Path:
    """Path of a ``../shared`` fixture, skipping/failing when it is absent."""
    path = SHARED / relative
    need(path.exists(), f"../shared/{relative} is not present beside the checkout")
    return path


def need_tool(name: str) -> str:
    path = shutil.which(name)
    need(path is not None, f"{name} is not installed")
    assert path is not None
    return path


def run_cli(*args: str, cwd: Path | None = None, check: bool = False,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m agent ARGS`` as a real subprocess."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.run([sys.executable, "-m", "agent", *args], cwd=cwd or PROJECT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=check)


def need_sshd_test(folder: Path) -> list[str]:
    """``sshd -T`` (OpenSSH's own reading of its configuration, nothing started) with a
    throwaway host key written to ``folder``: add ``-f CONFIG``. sshd wants its privilege
    separation directory before it prints anything; root creates it as ssh.service would."""
    binary = need_tool("sshd")
    keygen = need_tool("ssh-keygen")
    if not os.path.isdir("/run/sshd"):
        need(os.geteuid() == 0, "sshd -T needs /run/sshd, which only root can create")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    key = folder / "ssh_host_ed25519_key"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True,
                   capture_output=True, timeout=60)
    return [binary, "-T", "-h", str(key)]
