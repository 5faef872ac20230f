"""CPU list formatting and the CPUs ``isolcpus=`` takes out of the scheduler."""

from __future__ import annotations

import pytest

from agent.host.cmdline import parse_cmdline
from agent.host.cpus import format_cpus, isolcpus


@pytest.mark.parametrize(("cpus", "text"), [
    ({0, 1, 2, 5}, "0-2,5"), ({7}, "7"), (set(), "(none)"), ({1, 3, 4, 5, 9, 10}, "1,3-5,9-10")])
def test_format_cpus(cpus: set[int], text: str) -> None:
    assert format_cpus(cpus) == text


@pytest.mark.parametrize(("line", "cpus"), [
    ("isolcpus=2-5", {2, 3, 4, 5}),
    ("isolcpus=domain,managed_irq,2-3", {2, 3}),
    ("isolcpus=managed_irq,2-3", set()),          # without domain nothing leaves load balancing
    ("isolcpus=nohz,domain,1,7", {1, 7}),
    ("isolcpus=2-1", set()),                      # malformed: isolates nothing
    ("quiet", set()),
    ("isolcpus=1 isolcpus=3", {3}),               # the last occurrence is the one in force
])
def test_isolcpus(line: str, cpus: set[int]) -> None:
    assert isolcpus(parse_cmdline(line)) == frozenset(cpus)
