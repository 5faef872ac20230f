"""A host tree with a full ``/sys/devices/system/cpu`` power layout, for the per-CPU ``sysfs``
tests and the shipped trading policy's."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support import FIXTURES

STATES = (("POLL", 0), ("C1", 2), ("C1E", 10), ("C6", 133))
"""Name and exit latency (us) of each idle state: POLL, then intel_idle's Skylake-SP table."""


def put(path: Path, text: str) -> None:
    """Write ``text`` and a newline, as sysfs prints, making the folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


def power_tree(root: Path) -> Path:
    """``root`` as the ``irq-isolated`` fixture (isolcpus=managed_irq,domain,2-5 nohz_full=2-5)
    with CPUs 0-7: the isolated ones run performance with C6 disabled, the housekeeping ones
    powersave with every state enabled; SMT off."""
    shutil.copytree(FIXTURES / "hosts" / "irq-isolated", root, symlinks=True)
    cpu = root / "sys" / "devices" / "system" / "cpu"
    for name in ("online", "present", "possible"):
        put(cpu / name, "0-7")
    for n in range(8):
        isolated = 2 <= n <= 5
        put(cpu / f"cpu{n}" / "cpufreq" / "scaling_governor",
            "performance" if isolated else "powersave")
        for index, (name, latency) in enumerate(STATES):
            state = cpu / f"cpu{n}" / "cpuidle" / f"state{index}"
            put(state / "name", name)
            put(state / "latency", str(latency))
            put(state / "disable", "1" if isolated and latency > 10 else "0")
    put(cpu / "smt" / "control", "off")
    return root
