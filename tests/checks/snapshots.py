"""Hand-built snapshots for the pure check tests: no host is read anywhere under tests/checks."""

from __future__ import annotations

from collections.abc import Mapping

from agent.host.cmdline import KernelCmdline, parse_cmdline
from agent.host.facts import HostFacts, ReadError
from agent.host.snapshot import Snapshot, Values

FACTS = HostFacts(
    hostname="trd-gw-01",
    kernel_release="6.1.0-18-amd64",
    kernel_version="#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
    boot_id="6f1c1b0e-2c8a-4f5e-9d55-0c3a6d1e7b42",
    machine_id="8f2e4c6a1b3d4e5f9a7c0b1d2e3f4a5b",
    arch="x86_64",
    os_name="Debian GNU/Linux 12 (bookworm)",
)


def snapshot(
    sysctl: Mapping[str, Values] | None = None,
    sysfs: Mapping[str, Values] | None = None,
    cmdline: str | KernelCmdline | ReadError | None = None,
) -> Snapshot:
    """A snapshot holding exactly what is given; a ``str`` cmdline is parsed like /proc/cmdline."""
    parsed = parse_cmdline(cmdline) if isinstance(cmdline, str) else cmdline
    return Snapshot(root="/x", facts=FACTS, sysctl=dict(sysctl or {}), sysfs=dict(sysfs or {}),
                    cmdline=parsed)
