"""The shipped files are found in a checkout (the editable install the suite runs from);
tests/test_installed.py finds them in a wheel."""

from __future__ import annotations

from pathlib import Path

from agent.core import shipped
from tests.support import PROJECT


def test_a_checkout_reads_the_top_level_folders() -> None:
    assert shipped.policies() == PROJECT / "policies"
    assert shipped.packaging() == PROJECT / "packaging"


def test_policy_files_are_every_policy_and_profile_sorted_by_path() -> None:
    names = [p.relative_to(PROJECT / "policies").as_posix() for p in shipped.policy_files()]
    assert names == sorted(p.relative_to(PROJECT / "policies").as_posix()
                           for p in (PROJECT / "policies").rglob("*.yaml"))
    assert "seccomp/trading-gateway.yaml" in names
    assert "trading-baseline.yaml" in names


def test_the_system_policies_are_the_default_when_they_exist(tmp_path: Path) -> None:
    system = tmp_path / "etc" / "hostguard" / "policies"
    assert shipped.default_policies(system) == PROJECT / "policies"
    system.mkdir(parents=True)
    assert shipped.default_policies(system) == system
