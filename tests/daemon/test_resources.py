"""The daemon's resource watch on this very process: CPU time (its own and its reaped
children's) and RSS per cycle, and the budget they are held to."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from agent.daemon.resources import MIB, Budget, Usage, Watch

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {}: pass\n"
"""A child spending CPU time (however long that takes on a busy host)."""


def burn(seconds: float) -> None:
    """Spend ``seconds`` of CPU time in this process."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def test_a_cycle_counts_its_own_cpu_time_and_its_reaped_childrens() -> None:
    watch = Watch()
    watch.begin()
    burn(0.2)
    own = watch.end()
    assert 0.2 <= own.cpu_seconds < 5
    assert watch.last == own
    watch.begin()
    subprocess.run([sys.executable, "-c", BURN.format(0.3)], check=True)
    with_child = watch.end()
    assert with_child.cpu_seconds >= 0.3  # the child's time, counted once it was reaped
    watch.begin()
    burn(0.003)  # finer than a clock tick: a small host's whole cycle
    assert 0.003 <= watch.end().cpu_seconds < 0.1  # and a new cycle starts from zero


def test_rss_is_the_resident_memory_at_the_end_of_the_cycle() -> None:
    watch = Watch()
    watch.begin()
    before = watch.end().rss_bytes
    block = bytearray(64 * MIB)
    block[::4096] = b"\1" * (len(block) // 4096)  # touch every page: resident
    watch.begin()
    during = watch.end().rss_bytes
    del block
    assert during - before >= 60 * MIB
    resident = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGESIZE")
    assert abs(watch.end().rss_bytes - resident) < 16 * MIB


def test_the_budget_names_what_was_exceeded() -> None:
    usage = Usage(cpu_seconds=1.23456, rss_bytes=300 * MIB)
    assert Budget().exceeded(usage) == {}
    assert Budget(cpu_seconds=2, rss_mib=512).exceeded(usage) == {}
    assert Budget(cpu_seconds=1.2345).exceeded(usage) == {"cpu_s": 1.235, "cpu_budget_s": 1.2345}
    assert Budget(rss_mib=256).exceeded(usage) == {"rss_mib": 300.0, "rss_budget_mib": 256}
    assert Budget(cpu_seconds=1, rss_mib=299.5).exceeded(usage) == {
        "cpu_s": 1.235, "cpu_budget_s": 1, "rss_mib": 300.0, "rss_budget_mib": 299.5}
    assert Budget(cpu_seconds=1.23456, rss_mib=300).exceeded(usage) == {}  # at the limit: fits


def test_counters_start_at_zero() -> None:
    watch = Watch()
    assert (watch.last, watch.over_budget, watch.skipped) == (None, 0, 0)
