"""The IRQ reader: ``/proc/interrupts`` counters read by a separate script (the oracle: where
the kernel really delivered interrupts), the kernel's per-action folders, and fixture trees
for isolated layouts this machine lacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.host.cgroups import read_cgroups
from agent.host.facts import ReadError
from agent.host.irq import Irq, Irqbalance, banned_cpus, parse_interrupts, read_irqs
from agent.host.processes import read_processes
from agent.host.procfs import read_cmdline
from tests.host.irq_oracle import LIVE, delivered
from tests.support import FIXTURES, need

TREE = FIXTURES / "hosts" / "irq-isolated"


def test_interrupts_are_delivered_where_the_affinity_says() -> None:
    grown, irqs = delivered()
    need(bool(grown), "no device interrupt was delivered during disk I/O")
    by_number = {irq.number: irq for irq in irqs}
    for (number, cpu), count in grown.items():
        irq = by_number[number]
        where = irq.effective if isinstance(irq.effective, frozenset) else irq.affinity
        assert isinstance(where, frozenset)
        assert cpu in where, (number, cpu, count, irq)
        assert irq.in_use


def test_action_names_are_the_kernels_action_folders() -> None:
    table = read_irqs(LIVE, None, read_cmdline(LIVE), read_cgroups(LIVE))
    assert not isinstance(table.irqs, ReadError)
    assert table.cpus == tuple(range(len(table.cpus))) and table.cpus
    checked = 0
    for irq in table.irqs:
        folder = Path(f"/proc/irq/{irq.number}")
        folders = {entry.name for entry in folder.iterdir() if entry.is_dir()}
        if irq.actions:
            # A folder per uniquely named action (register_handler_proc).
            assert set(irq.actions) == folders, irq
            checked += 1
        for name, cpus in (("smp_affinity_list", irq.affinity),
                           ("effective_affinity_list", irq.effective)):
            text = (folder / name).read_text().strip()
            assert isinstance(cpus, frozenset)
            assert cpus == _expand(text)
    assert checked


def _expand(text: str) -> frozenset[int]:
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return frozenset(cpus)


@pytest.mark.parametrize(
    ("line", "actions"),
    [
        ("  24:   1   0  IO-APIC   5-edge      ACPI:Ged", ("ACPI:Ged",)),
        ("   9:   0   0  IO-APIC   9-fasteoi", ()),
        ("  11:  9   8     GICv3  27 Level     arch_timer", ("arch_timer",)),
        ("  12:  0   0     GICv3  33 Level", ()),
        ("  28:  0  12  IO-APIC  12-edge      i8042, ehci_hcd:usb1", ("i8042", "ehci_hcd:usb1")),
        ("  30:  0   0  IR-PCI-MSIX-0000:04:00.0    1-edge      eth1 TxRx 0", ("eth1 TxRx 0",)),
    ],
)
def test_parse_interrupts(line: str, actions: tuple[str, ...]) -> None:
    header, tail = "        CPU0       CPU1\n", "\n NMI:  0  0  Non-maskable\n"
    cpus, rows = parse_interrupts(header + line + tail)
    assert cpus == (0, 1)
    ((_, (counts, found)),) = rows.items()
    assert len(counts) == 2 and found == actions


def test_fixture_tree() -> None:
    root = TREE
    table = read_irqs(root, read_processes(root, fields=frozenset({"cmdline"})),
                      read_cmdline(root), read_cgroups(root))
    assert table.isolated == frozenset({2, 3, 4, 5})
    assert table.cpus == tuple(range(8))
    assert not isinstance(table.irqs, ReadError)
    irqs = {irq.number: irq for irq in table.irqs}
    assert irqs[28] == Irq(28, ("i8042", "ehci_hcd:usb1"), frozenset({6, 7}), frozenset({6}),
                           (0, 0, 0, 0, 0, 0, 12, 0), True)
    assert irqs[9].in_use is False
    assert irqs[25].counts[2] == 9920311
    assert table.irqbalance == (Irqbalance(812, frozenset({2, 3, 4}),
                                           "IRQBALANCE_BANNED_CPULIST=2-4"),)


def test_banned_cpus_as_irqbalance_computes_them(tmp_path: Path) -> None:
    assert banned_cpus(TREE, "IRQBALANCE_BANNED_CPUS=0000003c\0") == (
        frozenset({2, 3, 4, 5}), "IRQBALANCE_BANNED_CPUS=0000003c")
    assert banned_cpus(TREE, "IRQBALANCE_BANNED_CPUS=1,00000000\0")[0] == frozenset({32})
    # the list wins over the mask; an empty value is no value
    assert banned_cpus(TREE, "IRQBALANCE_BANNED_CPUS=ff\0IRQBALANCE_BANNED_CPULIST=3\0")[0] == (
        frozenset({3}))
    assert banned_cpus(TREE, "IRQBALANCE_BANNED_CPULIST=\0") == (
        frozenset({2, 3, 4, 5}), "sysfs isolated and nohz_full CPUs 2-5")
    assert banned_cpus(tmp_path, "") == (frozenset(), "sysfs isolated and nohz_full CPUs (none)")
    banned, _ = banned_cpus(TREE, "IRQBALANCE_BANNED_CPULIST=2-x\0")
    assert isinstance(banned, ReadError)


def test_missing_interrupts_is_an_error(tmp_path: Path) -> None:
    table = read_irqs(tmp_path, None, read_cmdline(tmp_path), read_cgroups(tmp_path))
    assert isinstance(table.irqs, ReadError) and "no such file" in table.irqs.reason
    assert isinstance(table.isolated, ReadError)
    assert isinstance(table.irqbalance, ReadError)
