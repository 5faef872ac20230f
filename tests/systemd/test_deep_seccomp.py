"""hostguard.service with the deep-seccomp opt-in (docs/daemon.md, "Deep seccomp reads"):
packaging/systemd/deep-seccomp.conf installed as a drop-in and SEC-102 listed in the
configuration's deep_seccomp, under a real systemd."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.systemd import agent
from tests.systemd.agent import UNIT, show
from tests.systemd.conftest import Installed, install_in_container
from tests.systemd.machine import SRC

DEEP = "SEC-102"
"""The shipped deep check: the FIX gateway's loaded filter against its profile."""


@pytest.fixture(scope="module")
def deep(staging: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    log = tmp_path_factory.mktemp("deep") / "nspawn.log"
    with install_in_container("deep", staging, log, interval=2, jitter=0,
                              deep_seccomp=[DEEP]) as installed:
        # As docs/daemon.md says to install it.
        installed.machine.sh(
            f"cd {SRC}\n"
            "install -D -m 0644 packaging/systemd/deep-seccomp.conf "
            "/etc/systemd/system/hostguard.service.d/deep-seccomp.conf\n"
            "systemctl daemon-reload")
        agent.restart(installed.machine)
        yield installed


def test_the_daemon_runs_under_no_seccomp_filter(deep: Installed) -> None:
    m = deep.machine
    pid = show(m, "MainPID")["MainPID"]
    status = m.run("cat", f"/proc/{pid}/status").stdout
    assert re.search(r"^Seccomp:\s+0$", status, re.MULTILINE), status


def test_a_deep_check_is_really_evaluated(deep: Installed) -> None:
    m = deep.machine
    daemon, plain, differ = agent.compare(m, deep.config)
    ours = agent.statuses(daemon)[DEEP]
    assert ours != "error", agent.evidence(daemon, DEEP)
    assert ours == agent.statuses(plain)[DEEP] == "pass"
    # Every other verdict as well: the drop-in takes nothing away from the audit.
    assert differ == {}


def test_proc_sys_and_sys_stay_read_only(deep: Installed) -> None:
    """The drop-in turns ProtectKernelTunables= off (it is seccomp-backed too) and keeps its
    read-only mounts with ReadOnlyPaths=."""
    m = deep.machine
    pid = show(m, "MainPID")["MainPID"]
    mounts = m.run("cat", f"/proc/{pid}/mountinfo").stdout.splitlines()
    for target in ("/proc/sys", "/sys"):
        [line] = [x for x in mounts if x.split()[4] == target]
        assert "ro" in line.split()[5].split(","), line


def test_module_wall_time(deep: Installed) -> None:
    elapsed = time.monotonic() - deep.started
    print(f"\ncontainer boot {deep.machine.boot_seconds:.2f} s; module so far {elapsed:.1f} s")
    assert elapsed < 170
    assert show(m := deep.machine, "ActiveState")["ActiveState"] == "active", m.journal(UNIT)
