"""The gateway profile's drop-in (``hostguard seccomp systemd --lossy``) on a service under a
real systemd: the service opens the sockets the profile allows, and the others fail with the
errno the translation documents (EAFNOSUPPORT, from RestrictAddressFamilies=)."""

from __future__ import annotations

import errno
from pathlib import Path

from tests.support import PROJECT, need_root, need_tool, run_cli
from tests.systemd.machine import INSIDE, booted, machine_name

GATEWAY = PROJECT / "policies" / "seccomp" / "trading-gateway.yaml"
SERVICE = "hg-sockets.service"
CALLS = ((1, 1), (2, 1), (10, 1), (16, 3), (17, 3), (40, 1))
"""socket(family, type): AF_UNIX, AF_INET, AF_INET6 stream; AF_NETLINK, AF_PACKET raw; AF_VSOCK
stream. The gateway allows the first four."""
SCRIPT = f"""import socket
for family, kind in {CALLS!r}:
    try:
        socket.socket(family, kind).close()
        print("socket", family, 0, flush=True)
    except OSError as exc:
        print("socket", family, exc.errno, flush=True)
"""


def errnos(output: str) -> dict[int, int]:
    return {int(f): int(e) for _, f, e in (line.split() for line in output.splitlines()
                                           if line.startswith("socket "))}


def test_the_gateway_dropin_lets_the_service_open_its_sockets(tmp_path: Path) -> None:
    need_root()
    for tool in ("systemd-nspawn", "nsenter"):
        need_tool(tool)
    done = run_cli("seccomp", "systemd", str(GATEWAY), "--unit", SERVICE, "--lossy")
    assert done.returncode == 0, done.stderr
    (tmp_path / "sockets.py").write_text(SCRIPT)
    unit = ("[Unit]\nDescription=socket() under the gateway drop-in\n"
            f"[Service]\nType=oneshot\nExecStart=/usr/bin/python3 {INSIDE}/sockets.py\n")
    with booted(machine_name("sockets"), tmp_path, tmp_path / "nspawn.log") as machine:
        unfiltered = errnos(machine.run("python3", f"{INSIDE}/sockets.py").stdout)
        machine.write(f"/etc/systemd/system/{SERVICE}", unit)
        machine.write(f"/etc/systemd/system/{SERVICE}.d/hostguard-seccomp.conf", done.stdout)
        machine.run("systemctl", "daemon-reload")
        machine.run("systemctl", "start", SERVICE)  # oneshot: returns when it has run
        shown = machine.run("systemctl", "show", SERVICE, "-p", "RestrictAddressFamilies",
                            "-p", "SystemCallErrorNumber", "-p", "Result").stdout
        filtered = errnos(machine.journal(SERVICE))
    properties = dict(line.split("=", 1) for line in shown.splitlines())
    assert set(properties["RestrictAddressFamilies"].split()) == {
        "AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}, shown
    assert properties["Result"] == "success" and properties["SystemCallErrorNumber"] == "1"
    assert set(filtered) == set(unfiltered) == {f for f, _ in CALLS}
    for family in (1, 2, 10, 16):  # as without a filter: opened (or the kernel's own errno)
        assert filtered[family] == unfiltered[family], (family, filtered, unfiltered)
    assert filtered[1] == filtered[2] == filtered[16] == 0
    assert filtered[17] == filtered[40] == errno.EAFNOSUPPORT
    assert unfiltered[17] == 0  # root may open a packet socket: the drop-in is what refuses it
