"""``timesync``: the kernel clock is disciplined within a bound, on the expected clocksource,
with PTP hardware clocks where the policy asks.

Passes::

    - id: TIME-001
      kind: timesync
      spec: {synchronized: true, maxerror_us: 100, clocksource: tsc, ptp: true}
      # adjtimex: status 0x2001 (PLL, NANO), state TIME_OK, maxerror 37 us;
      # current_clocksource tsc; /sys/class/ptp/ptp0 (mlx5_ptp)

Fails::

    - id: TIME-001
      kind: timesync
      spec: {synchronized: true, maxerror_us: 1000}
      # adjtimex: status 0x40 (STA_UNSYNC), state TIME_ERROR, maxerror 16000000 us

``synchronized`` and the error bounds come from ``adjtimex(2)`` (:mod:`agent.host.clock`),
which only the live host answers: under ``--root`` they are ``error`` with that reason, while
the clocksource and PTP clocks are read from the tree's ``/sys``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from agent.checks.base import CheckKind, SpecError, SpecProblem
from agent.checks.rows import outcome_of
from agent.core.record import record
from agent.host.clock import STA_NANO, STA_UNSYNC, KernelClock
from agent.host.facts import ReadError
from agent.host.snapshot import Snapshot, SnapshotRequest
from agent.result import Outcome

CLOCKSOURCE = "devices/system/clocksource/clocksource0/current_clocksource"
"""The clocksource the kernel keeps time with, under ``/sys``."""
PTP_CLOCKS = "class/ptp/*/clock_name"
"""One file per PTP hardware clock, under ``/sys``: the driver's name for it."""

_ERROR_BOUND: dict[str, Any] = {"type": "integer", "minimum": 0}
_SOURCE_NAME: dict[str, Any] = {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+$"}


@record
class TimesyncSpec:
    """Parsed ``timesync`` spec."""

    synchronized: bool
    maxerror_us: int | None
    esterror_us: int | None
    clocksource: tuple[str, ...]
    """Acceptable clocksources; empty: not checked."""
    ptp: bool


class TimesyncKind(CheckKind[TimesyncSpec]):
    """The kernel clock's synchronization, error bounds, clocksource and PTP clocks."""

    name = "timesync"
    summary = ("The kernel clock is synchronized (adjtimex), its maximum/estimated error within "
               "a bound, on the expected clocksource, with PTP hardware clocks present.")
    spec_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "description": summary,
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "synchronized": {"const": True, "description": "No STA_UNSYNC in the adjtimex "
                             "status, and the clock state TIME_OK."},
            "maxerror_us": {**_ERROR_BOUND, "description": "Bound on the kernel's maximum "
                            "error (adjtimex maxerror), microseconds."},
            "esterror_us": {**_ERROR_BOUND, "description": "Bound on the kernel's estimated "
                            "error (adjtimex esterror), microseconds."},
            "clocksource": {"anyOf": [_SOURCE_NAME, {"type": "array", "items": _SOURCE_NAME,
                                                     "minItems": 1, "uniqueItems": True}],
                            "description": "The clocksource (or one of these), e.g. tsc."},
            "ptp": {"const": True, "description": "At least one PTP hardware clock "
                    "(/sys/class/ptp)."},
        },
    }

    def parse(self, raw: Mapping[str, Any]) -> TimesyncSpec:
        source = raw.get("clocksource", [])
        sources = tuple(map(str, source if isinstance(source, list) else [source]))
        spec = TimesyncSpec(raw.get("synchronized") is True, _bound(raw, "maxerror_us"),
                            _bound(raw, "esterror_us"), sources, raw.get("ptp") is True)
        if not (spec.synchronized or spec.maxerror_us is not None
                or spec.esterror_us is not None or spec.clocksource or spec.ptp):
            raise SpecError([SpecProblem((), "timesync check expects nothing: give "
                                         "synchronized, maxerror_us, esterror_us, clocksource "
                                         "or ptp")])
        return spec

    def request(self, spec: TimesyncSpec) -> SnapshotRequest:
        sysfs = ({CLOCKSOURCE} if spec.clocksource else set()) | ({PTP_CLOCKS} if spec.ptp
                                                                  else set())
        clock = spec.synchronized or spec.maxerror_us is not None or spec.esterror_us is not None
        return SnapshotRequest(clock=clock, sysfs=frozenset(sysfs))

    def evaluate(self, spec: TimesyncSpec, snapshot: Snapshot) -> Outcome:
        rows: list[dict[str, Any]] = []
        clock = snapshot.clock if snapshot.clock is not None else ReadError(
            "the kernel clock was not read")
        if spec.synchronized:
            rows.append(_synchronized(clock))
        for field, bound in (("maxerror", spec.maxerror_us), ("esterror", spec.esterror_us)):
            if bound is not None:
                rows.append(_error_bound(clock, field, bound))
        if spec.clocksource:
            rows.append(_clocksource(snapshot, spec.clocksource))
        if spec.ptp:
            rows.append(_ptp(snapshot))
        return outcome_of(_describe(spec), rows)


def _bound(raw: Mapping[str, Any], key: str) -> int | None:
    value = raw.get(key)
    return int(value) if value is not None else None


def _describe(spec: TimesyncSpec) -> str:
    parts = ["synchronized (no STA_UNSYNC, TIME_OK)"] if spec.synchronized else []
    parts += [f"{name} <= {bound} us" for name, bound in (("maxerror", spec.maxerror_us),
                                                          ("esterror", spec.esterror_us))
              if bound is not None]
    if spec.clocksource:
        parts.append("clocksource in " + ", ".join(spec.clocksource))
    if spec.ptp:
        parts.append("a PTP hardware clock")
    return "; ".join(parts)


def _row(part: str, verdict: str, finding: str) -> dict[str, Any]:
    return {"expectation": part, "verdict": verdict, "finding": finding}


def status_words(status: int) -> str:
    """``0x2041 (STA_PLL, STA_UNSYNC, STA_NANO)``, the bits this kind speaks of named."""
    names = {0x0001: "STA_PLL", STA_UNSYNC: "STA_UNSYNC", STA_NANO: "STA_NANO"}
    named = [name for bit, name in names.items() if status & bit]
    return f"{status:#x}" + (f" ({', '.join(named)})" if named else "")


def _synchronized(clock: KernelClock | ReadError) -> dict[str, Any]:
    if isinstance(clock, ReadError):
        return _row("synchronized", "error", clock.reason)
    finding = f"adjtimex status {status_words(clock.status)}, clock state {clock.state_name}"
    return _row("synchronized", "pass" if clock.synchronized else "fail", finding)


def _error_bound(clock: KernelClock | ReadError, field: str, bound: int) -> dict[str, Any]:
    if isinstance(clock, ReadError):
        return _row(field, "error", clock.reason)
    value = int(getattr(clock, field))
    return {**_row(field, "pass" if value <= bound else "fail", f"{field} {value} us"),
            "value_us": value, "bound_us": bound}


def _clocksource(snapshot: Snapshot, wanted: tuple[str, ...]) -> dict[str, Any]:
    values = snapshot.sysfs.get(CLOCKSOURCE)
    value = None if values is None else values.get(CLOCKSOURCE)
    if value is None:
        return _row("clocksource", "error", f"/sys/{CLOCKSOURCE} was not found")
    if isinstance(value, ReadError):
        return _row("clocksource", "error", value.reason)
    current = value.strip()
    return _row("clocksource", "pass" if current in wanted else "fail", f"clocksource {current}")


def _ptp(snapshot: Snapshot) -> dict[str, Any]:
    values = snapshot.sysfs.get(PTP_CLOCKS)
    if values is None:
        return _row("ptp", "error", "the PTP clocks were not read")
    errors = [v.reason for v in values.values() if isinstance(v, ReadError)]
    if errors:
        return _row("ptp", "error", "; ".join(errors))
    clocks = [f"{key.split('/')[2]} ({str(value).strip()})" for key, value in values.items()]
    if not clocks:
        return _row("ptp", "fail", "no PTP hardware clock in /sys/class/ptp")
    return {**_row("ptp", "pass", "PTP clocks " + ", ".join(clocks)), "clocks": clocks}
