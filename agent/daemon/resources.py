"""The daemon's watch over its own resources: CPU time and RSS per cycle, against a budget.

osquery's watchdog stops a worker that spends more CPU or memory than its limits allow; the
daemon holds itself to a budget the same way, without a second process. A cycle's CPU time is the
user and system time of the daemon and of the child processes it reaped during the cycle; its
RSS is the resident memory when the cycle ends. A cycle over either budget (configuration keys
``cpu_budget_seconds`` and ``rss_budget_mib``) is logged, and the next cycle is skipped: a host
whose audit has grown expensive is audited at most every other slot until it fits again.

CPU time comes from ``getrusage``: the kernel's exact sums, for this process and for its reaped
children (psutil's ``cpu_times`` reads ``/proc/self/stat`` in clock ticks of 10 ms, coarser than a
small host's whole cycle). RSS comes from psutil's ``memory_info``: the resident set now, where
``getrusage`` has only the lifetime peak, which never comes down after one expensive cycle.
"""

from __future__ import annotations

import resource

import psutil

from agent.core.record import record

MIB = 1024 * 1024


@record
class Usage:
    """What one cycle used."""

    cpu_seconds: float
    """User and system CPU time of the daemon and its reaped children during the cycle."""
    rss_bytes: int
    """Resident memory of the daemon at the end of the cycle."""


@record
class Budget:
    """What a cycle may use; ``None`` for no limit."""

    cpu_seconds: float | None = None
    """CPU seconds per cycle (``cpu_budget_seconds``)."""
    rss_mib: float | None = None
    """Resident MiB at the end of a cycle (``rss_budget_mib``)."""

    def exceeded(self, usage: Usage) -> dict[str, float]:
        """The figures over budget, as log fields: used and allowed, by resource."""
        over: dict[str, float] = {}
        if self.cpu_seconds is not None and usage.cpu_seconds > self.cpu_seconds:
            over["cpu_s"] = round(usage.cpu_seconds, 3)
            over["cpu_budget_s"] = self.cpu_seconds
        if self.rss_mib is not None and usage.rss_bytes > self.rss_mib * MIB:
            over["rss_mib"] = round(usage.rss_bytes / MIB, 1)
            over["rss_budget_mib"] = self.rss_mib
        return over


class Watch:
    """Measures each cycle of this process and counts the cycles over budget and skipped."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._started = self._cpu()
        self.last: Usage | None = None
        """The last measured cycle."""
        self.over_budget = 0
        """Cycles that went over budget."""
        self.skipped = 0
        """Cycles skipped because the one before went over budget."""

    @staticmethod
    def _cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    def begin(self) -> None:
        """A cycle starts."""
        self._started = self._cpu()

    def end(self) -> Usage:
        """A cycle ends: what it used since ``begin``."""
        cpu = self._cpu()
        self.last = Usage(max(0.0, cpu - self._started), self._process.memory_info().rss)
        return self.last
