"""The IRQ oracle: where the kernel really delivered interrupts, from the ``/proc/interrupts``
counters read by a separate awk script (not by hostguard) before and after disk I/O."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from agent.host.cgroups import read_cgroups
from agent.host.facts import ReadError
from agent.host.irq import Irq, read_irqs
from agent.host.procfs import read_cmdline

LIVE = Path("/")

# The oracle: numbered rows of /proc/interrupts as "irq cpu count", by awk, not by hostguard.
COUNTERS = r"""awk 'NR == 1 { n = NF; next }
$1 ~ /^[0-9]+:$/ { irq = substr($1, 1, length($1) - 1)
  for (i = 2; i <= n + 1; i++) if ($i ~ /^[0-9]+$/) print irq, i - 2, $i }' /proc/interrupts"""


def _counters() -> dict[tuple[int, int], int]:
    out = subprocess.run(["sh", "-c", COUNTERS], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    return {(int(irq), int(cpu)): int(count)
            for irq, cpu, count in (line.split() for line in out.splitlines())}


def _activity() -> None:
    # Disk interrupts: synced writes.
    with tempfile.NamedTemporaryFile(dir="/var/tmp") as handle:
        for _ in range(20):
            handle.write(os.urandom(65536))
            handle.flush()
            os.fsync(handle.fileno())


def delivered() -> tuple[dict[tuple[int, int], int], list[Irq]]:
    """(irq, cpu) -> interrupts delivered there while disk I/O ran, and the IRQs as hostguard
    read them just after."""
    deadline = time.monotonic() + 10
    while True:
        before = _counters()
        _activity()
        after = _counters()
        table = read_irqs(LIVE, None, read_cmdline(LIVE), read_cgroups(LIVE))
        grown = {key: after[key] - before.get(key, 0) for key in after
                 if after[key] > before.get(key, 0)}
        if grown or time.monotonic() > deadline:
            assert not isinstance(table.irqs, ReadError), table.irqs
            return grown, list(table.irqs)
        time.sleep(0.1)
