"""``irq``: no hardware interrupt may be delivered to an isolated CPU, and irqbalance, where it
runs, keeps off them.

Passes::

    - id: IRQ-001
      kind: irq
      spec: {allow: ["mlx5_comp*"]}
      # host: isolcpus=2-5; IRQ 25 mlx5_comp0@pci:0000:3b:00.0 pinned to CPU 2 on purpose,
      # every other IRQ's smp_affinity_list and effective_affinity_list within 0-1,6-7;
      # irqbalance runs with IRQBALANCE_BANNED_CPULIST=2-5

Fails::

    - id: IRQ-001
      kind: irq
      spec: {}
      # host: isolcpus=2-5; IRQ 27 eth1-TxRx-0 effective_affinity_list 3

The CPUs to keep free are the host's isolated CPUs as :func:`agent.host.stop_guard.isolated_cpus`
counts them (every ``isolcpus=`` and ``nohz_full=`` CPU whatever its flags, sysfs ``isolated``
and ``nohz_full``, cgroup partitions and v1 cpusets out of load balancing; unknown when any of
those cannot be read), or the ``cpus`` the policy names. Both affinity lists count: the first
is where the IRQ may go, the second where the interrupt controller sends it now. IRQs with no
handler are not judged (they deliver nothing). The evidence lists each offending IRQ with its
handlers' names and CPUs.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any, ClassVar

from agent.checks.base import CheckKind, SpecError, SpecProblem
from agent.checks.compare import MISSING_SCHEMA
from agent.checks.rows import outcome_of
from agent.core.record import record
from agent.host.cpus import format_cpus
from agent.host.facts import ReadError
from agent.host.irq import Irq, IrqTable
from agent.host.processes import parse_cpu_list
from agent.host.snapshot import Snapshot, SnapshotRequest
from agent.policy.globs import bracket_problem
from agent.result import Evidence, Outcome, Status


@record
class IrqSpec:
    """Parsed ``irq`` spec."""

    allow: tuple[str, ...]
    """Action-name globs of IRQs allowed on the protected CPUs."""
    cpus: frozenset[int] | None
    """The CPUs to keep free; None: the host's isolated CPUs."""
    irqbalance: bool
    """Whether a running irqbalance must ban them."""
    missing: str
    """Verdict when there is no CPU to keep free."""


class IrqKind(CheckKind[IrqSpec]):
    """Hardware IRQs off the isolated CPUs; irqbalance banning them."""

    name = "irq"
    summary = ("No hardware interrupt may be delivered to an isolated CPU (smp_affinity_list "
               "and effective_affinity_list), and a running irqbalance bans those CPUs.")
    spec_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "description": summary,
        "additionalProperties": False,
        "properties": {
            "allow": {"type": "array", "minItems": 1, "uniqueItems": True,
                      "items": {"type": "string", "minLength": 1},
                      "description": "Globs on the handler (action) names of /proc/interrupts "
                      "whose IRQs may be on the isolated CPUs, e.g. a NIC queue pinned on "
                      "purpose."},
            "cpus": {"type": "string", "minLength": 1, "examples": ["2-15"],
                     "description": "The CPUs to keep free, as a CPU list (default: the host's "
                     "isolated CPUs)."},
            "irqbalance": {"type": "boolean", "default": True,
                           "description": "A running irqbalance must ban those CPUs."},
            "missing": {**MISSING_SCHEMA, "description": "Verdict when there is no CPU to "
                        "keep free (the host isolates none); default error, fail closed."},
        },
    }

    def parse(self, raw: Mapping[str, Any]) -> IrqSpec:
        problems: list[SpecProblem] = []
        allow = tuple(map(str, raw.get("allow", [])))
        for index, glob in enumerate(allow):
            why = bracket_problem(glob)
            if why:
                problems.append(SpecProblem(("allow", index), f"invalid glob {glob!r}: {why}",
                                            "invalid-glob"))
        cpus: frozenset[int] | None = None
        if "cpus" in raw:
            try:
                cpus = parse_cpu_list(str(raw["cpus"]))
            except ValueError:
                cpus = frozenset()
            if not cpus:
                problems.append(SpecProblem(("cpus",), f"invalid CPU list {raw['cpus']!r}"))
        if problems:
            raise SpecError(problems)
        return IrqSpec(allow, cpus, raw.get("irqbalance", True) is True,
                       str(raw.get("missing", "error")))

    def request(self, spec: IrqSpec) -> SnapshotRequest:
        return SnapshotRequest(irqs=True)

    def evaluate(self, spec: IrqSpec, snapshot: Snapshot) -> Outcome:
        table = snapshot.irqs
        if table is None:
            return Outcome(Status.ERROR, "the IRQs were not read",
                           Evidence("no IRQ on the isolated CPUs", "not read"))
        if spec.cpus is not None:
            protected, source = spec.cpus, "the policy's CPUs"
        elif isinstance(table.isolated, ReadError):
            reason = f"the isolated CPUs are unknown: {table.isolated.reason}"
            return Outcome(Status.ERROR, f"cannot evaluate: {reason}",
                           Evidence("no IRQ on the isolated CPUs", reason))
        else:
            protected, source = table.isolated, "isolated CPUs"
        expected = f"no IRQ delivered to {source} {format_cpus(protected)}"
        if not protected:
            status = {"not_applicable": Status.NOT_APPLICABLE, "fail": Status.FAIL}.get(
                spec.missing, Status.ERROR)
            return Outcome(status, "this host isolates no CPU",
                           Evidence(expected, "no isolated CPU"))
        rows = _irq_rows(spec, table, protected)
        if spec.irqbalance:
            rows += _irqbalance_rows(table, protected)
        return outcome_of(expected, rows)


def _name(irq: Irq) -> str:
    return ", ".join(irq.actions) or "no handler name in /proc/interrupts"


def _irq_rows(spec: IrqSpec, table: IrqTable, protected: frozenset[int]) -> list[dict[str, Any]]:
    if isinstance(table.irqs, ReadError):
        return [{"verdict": "error", "finding": table.irqs.reason}]
    rows: list[dict[str, Any]] = []
    clean = unused = 0
    for irq in table.irqs:
        if not irq.in_use:
            unused += 1
            continue
        lists = {"smp_affinity_list": irq.affinity, "effective_affinity_list": irq.effective}
        errors = [cpus.reason for cpus in lists.values() if isinstance(cpus, ReadError)]
        shown = {key: format_cpus(cpus) for key, cpus in lists.items()
                 if isinstance(cpus, frozenset)}
        hit = frozenset().union(*(cpus & protected for cpus in lists.values()
                                  if isinstance(cpus, frozenset)))
        row: dict[str, Any] = {"irq": irq.number, "name": _name(irq), **shown}
        if hit:
            allowed = next((glob for glob in spec.allow for action in irq.actions
                            if fnmatch.fnmatchcase(action, glob)), None)
            where = ", ".join(f"{key} {value}" for key, value in shown.items())
            finding = (f"IRQ {irq.number} ({_name(irq)}) on isolated CPUs {format_cpus(hit)} "
                       f"({where})")
            if allowed is not None:
                finding += f", allowed by {allowed!r}"
            rows.append({**row, "cpus": format_cpus(hit), "finding": finding,
                         "verdict": "pass" if allowed is not None else "fail"})
        elif errors:
            rows.append({**row, "verdict": "error",
                         "finding": f"IRQ {irq.number} ({_name(irq)}): {'; '.join(errors)}"})
        else:
            clean += 1
    rows.append({"verdict": "pass", "finding": f"{clean} IRQs off CPUs "
                 f"{format_cpus(protected)}; {unused} without a handler not judged"})
    return rows


def _irqbalance_rows(table: IrqTable, protected: frozenset[int]) -> list[dict[str, Any]]:
    if isinstance(table.irqbalance, ReadError):
        return [{"verdict": "error", "finding": f"irqbalance: {table.irqbalance.reason}"}]
    if not table.irqbalance:
        return [{"verdict": "pass", "finding": "irqbalance is not running"}]
    rows: list[dict[str, Any]] = []
    for balancer in table.irqbalance:
        who = f"irqbalance (pid {balancer.pid})"
        if isinstance(balancer.banned, ReadError):
            rows.append({"pid": balancer.pid, "verdict": "error",
                         "finding": f"{who}: {balancer.banned.reason}"})
            continue
        missing = protected - balancer.banned
        verdict = "fail" if missing else "pass"
        finding = (f"{who} does not ban CPUs {format_cpus(missing)} (it bans "
                   f"{format_cpus(balancer.banned)}: {balancer.source})" if missing
                   else f"{who} bans {format_cpus(balancer.banned)} ({balancer.source})")
        rows.append({"pid": balancer.pid, "banned": format_cpus(balancer.banned),
                     "verdict": verdict, "finding": finding})
    return rows
