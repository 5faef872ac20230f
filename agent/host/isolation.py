"""Which CPUs the kernel keeps out of load balancing: boot parameters and isolated partitions.

One reading serves the ``cgroup`` check's isolation rule (is a target's CPU set isolated as the
kernel applies it?), the ``unit`` kind's ``within: isolated`` (a unit must be pinned within
such CPUs) and the daemon, which keeps off these CPUs and ``nohz_full``'s. Where more CPUs make
a check stricter (``irq``, ``sysfs``'s ``cpus: isolated``, a deep read's refusal to stop), the
wider answer of :func:`agent.host.stop_guard.isolated_cpus` counts every CPU any source marks.
"""

from __future__ import annotations

from agent.core.record import record
from agent.host.cgroups import CgroupTree
from agent.host.cmdline import KernelCmdline
from agent.host.cpus import format_cpus, isolcpus
from agent.host.facts import ReadError
from agent.host.processes import parse_cpu_list


@record
class Isolation:
    """The host's isolated CPUs, by source, and what could not be read."""

    isolcpus: frozenset[int]
    """CPUs ``isolcpus=`` removes from scheduler domains."""
    nohz_full: frozenset[int] | None
    """``nohz_full=`` CPUs; None when the parameter is absent."""
    partitions: tuple[tuple[str, frozenset[int]], ...]
    """Valid cgroup2 partitions of type ``isolated``: (cgroup path, effective CPUs)."""
    problems: tuple[str, ...]
    """What could not be read or parsed."""

    @property
    def isolated(self) -> frozenset[int]:
        """CPUs out of load balancing: ``isolcpus`` plus isolated partitions."""
        cpus = set(self.isolcpus)
        for _, members in self.partitions:
            cpus |= members
        return frozenset(cpus)

    def sources(self) -> list[str]:
        """Where each isolated CPU comes from, in words."""
        found = [f"isolcpus (domain) {format_cpus(self.isolcpus)}"] if self.isolcpus else []
        return found + [f"isolated partition {path} {format_cpus(cpus)}"
                        for path, cpus in self.partitions]


def host_isolation(cmdline: KernelCmdline | ReadError | None,
                   tree: CgroupTree | ReadError | None) -> Isolation:
    """Read the isolation from a parsed boot line and the cgroup tree."""
    problems: list[str] = []
    nohz: frozenset[int] | None = None
    iso: frozenset[int] = frozenset()
    if isinstance(cmdline, KernelCmdline):
        iso = isolcpus(cmdline)
        param = cmdline.last("nohz_full")
        if param is not None and param.value:
            try:
                nohz = parse_cpu_list(param.value)
            except ValueError:
                problems.append(f"cannot parse nohz_full={param.value!r}")
    else:
        reason = cmdline.reason if cmdline is not None else "not read"
        problems.append(f"cannot read the kernel command line: {reason}")
    partitions: list[tuple[str, frozenset[int]]] = []
    unified = tree.unified if isinstance(tree, CgroupTree) else None
    if not isinstance(tree, CgroupTree):  # partitions unknown: an answer without them guesses
        reason = tree.reason if tree is not None else "not read"
        problems.append(f"cannot read the cgroups: {reason}")
    for node in unified.nodes.values() if unified is not None else ():
        state = node.files.get("cpuset.cpus.partition")
        # "isolated invalid (reason)": the kernel refused the partition, it isolates nothing.
        if not (isinstance(state, str) and state.split()[:1] == ["isolated"]
                and "invalid" not in state):
            continue
        effective = node.files.get("cpuset.cpus.effective")
        try:
            cpus = parse_cpu_list(effective) if isinstance(effective, str) else frozenset()
        except ValueError:
            cpus = frozenset()
        if cpus:
            partitions.append((node.path, cpus))
    return Isolation(iso, nohz, tuple(partitions), tuple(problems))
