"""hostguard.service with the clock-read opt-in (docs/daemon.md, "Reading the kernel clock"),
installed by ``hostguard install-service --clock-read`` under a real systemd: the timesync
checks read what an unsandboxed audit reads, the daemon stays under its filter, and the unit's
sandbox still cannot set the clock."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.systemd import agent
from tests.systemd.agent import UNIT, show
from tests.systemd.conftest import Installed, install_in_container

CLOCK_CHECKS = ("TIME-001", "TIME-002")
"""The shipped timesync checks (policies/trading-host.yaml) that read adjtimex(2)."""
DROP_IN = "/etc/systemd/system/hostguard.service.d/clock-read.conf"
PROBE = "hg-clockprobe.service"
PROBE_SCRIPT = """\
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
timex = ctypes.create_string_buffer(512)  # struct timex, modes 0: read
state = libc.adjtimex(timex)
print("read", state, ctypes.get_errno() if state < 0 else 0)
# The frequency just read, written back: a no-op, were it allowed.
timex[0:4] = (0x0002).to_bytes(4, "little")  # ADJ_FREQUENCY
print("adjust", libc.adjtimex(timex), ctypes.get_errno())
now = (ctypes.c_long * 2)()
libc.clock_gettime(0, now)
print("settime", libc.clock_settime(0, now), ctypes.get_errno())
"""


@pytest.fixture(scope="module")
def clock(staging: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    log = tmp_path_factory.mktemp("clock") / "nspawn.log"
    with install_in_container("clock", staging, log, interval=2, jitter=0) as installed:
        m = installed.machine
        # The configuration was rewritten for the test: install-service keeps it (exit 1).
        done = m.run("hostguard", "install-service", "--clock-read", check=False)
        assert done.returncode in (0, 1), done
        assert f"create {DROP_IN}" in done.stdout or DROP_IN in done.stdout, done.stdout
        m.run("systemctl", "daemon-reload")
        agent.restart(m)
        yield installed


def test_the_daemon_stays_under_its_filter(clock: Installed) -> None:
    m = clock.machine
    assert m.run("test", "-f", DROP_IN, check=False).returncode == 0
    pid = show(m, "MainPID")["MainPID"]
    status = m.run("cat", f"/proc/{pid}/status").stdout
    assert re.search(r"^Seccomp:\s+2$", status, re.MULTILINE), status


def test_timesync_checks_read_what_an_unsandboxed_audit_reads(clock: Installed) -> None:
    m = clock.machine
    daemon, plain, differ = agent.compare(m, clock.config, frozenset({"SEC-102"}))
    ours, theirs = agent.statuses(daemon), agent.statuses(plain)
    for check in CLOCK_CHECKS:
        said = agent.evidence(daemon, check)
        assert ours[check] == theirs[check] != "error", said
        assert "not permitted" not in str(said), said
    assert differ.keys() <= {"SEC-102"}, differ


def test_the_units_sandbox_cannot_set_the_clock(clock: Installed) -> None:
    """A copy of the installed unit and drop-in, running a probe instead of the daemon."""
    m = clock.machine
    unit = m.run("cat", f"/etc/systemd/system/{UNIT}").stdout
    unit = re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/usr/bin/python3 /srv/clockprobe.py", unit)
    unit = re.sub(r"(?m)^(Type|ExecReload|WatchdogSec|Restart)=.*$", "", unit)
    unit = unit.replace("[Service]", "[Service]\nType=oneshot", 1)
    m.write("/srv/clockprobe.py", PROBE_SCRIPT)
    m.write(f"/etc/systemd/system/{PROBE}", unit)
    m.sh(f"mkdir -p /etc/systemd/system/{PROBE}.d && cp {DROP_IN} /etc/systemd/system/{PROBE}.d/ "
         "&& systemctl daemon-reload")
    m.run("systemctl", "start", PROBE)  # oneshot: returns when the probe has ended
    said = dict(line.split(" ", 1) for line in m.journal(PROBE).splitlines()
                if line.split(" ", 1)[0] in ("read", "adjust", "settime"))
    state, errno_read = (int(x) for x in said["read"].split())
    assert state >= 0 and errno_read == 0, said  # reading is allowed
    assert said["adjust"] == "-1 1", said   # EPERM: no CAP_SYS_TIME
    assert said["settime"] == "-1 1", said  # EPERM: clock_settime stays filtered


def test_module_wall_time(clock: Installed) -> None:
    elapsed = time.monotonic() - clock.started
    print(f"\ncontainer boot {clock.machine.boot_seconds:.2f} s; module so far {elapsed:.1f} s")
    assert elapsed < 170
    assert show(m := clock.machine, "ActiveState")["ActiveState"] == "active", m.journal(UNIT)
