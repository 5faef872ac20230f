"""Fixtures of the systemd tests: the staged install (once per session) and one booted, installed
container per test module (``installed``)."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import PROJECT, need_root, need_tool
from tests.systemd import agent
from tests.systemd.machine import Machine, booted, machine_name, stage


@dataclass
class Installed:
    """A container with hostguard installed by README.md's block and running."""

    machine: Machine
    started: float
    """time.monotonic() when the module's set-up began (staging excluded)."""
    after_install: dict[str, str]
    """The unit's state right after the install block."""
    config: dict[str, Any] = field(default_factory=dict)
    """The configuration the tests run with (the installed one, audits every few seconds)."""


@pytest.fixture(scope="session")
def staging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The checkout and a venv with hostguard installed from it, to bind into containers."""
    need_root()
    for tool in ("systemd-nspawn", "nsenter", "git"):
        need_tool(tool)
    folder = tmp_path_factory.mktemp("hg-staging")
    yield stage(folder, PROJECT)
    shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def install_in_container(tag: str, staging: Path, log: Path,
                         **overrides: Any) -> Iterator[Installed]:
    """Boot, start the services to audit, run the install block, then rewrite the installed
    configuration with ``overrides`` (a short interval: audits every few seconds) and restart."""
    started = time.monotonic()
    with booted(machine_name(tag), staging, log) as machine:
        agent.start_workloads(machine)
        agent.install(machine)
        after = agent.show(machine, "ActiveState", "SubState", "UnitFileState", "ExecStart")
        config = {**agent.read_config(machine), **overrides}
        agent.write_config(machine, config)
        agent.restart(machine)
        yield Installed(machine, started, after, config)
