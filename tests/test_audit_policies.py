"""The one rule for the policies of an audit: the one-shot audit and the daemon refuse and
tolerate exactly the same policies."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent import cli
from agent.audit_policies import load_for_audit
from agent.daemon import service
from tests.authoring import TRADING_ROOT, policy, sysctl, write

TODAY = dt.datetime.now(dt.UTC).date()
"""The daemon judges waivers as of today: so does every case here."""
KPTR = sysctl("KRN-001", "kernel.kptr_restrict", "ge", 1)
SWAP = sysctl("LAT-001", "vm.swappiness", "eq", 10)  # fails on the fixture host (1)


def waiver(check: str, days: int, reason: str = "ticket OPS-1") -> dict[str, str]:
    """A waiver of ``check`` expiring ``days`` from today (negative: expired)."""
    return {"check": check, "reason": reason,
            "expires": (TODAY + dt.timedelta(days=days)).isoformat()}


def text(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


# Each case writes files into a folder; the audit is then pointed at that folder.
Case = Callable[[Path], Any]
CASES: dict[str, tuple[Case, bool]] = {
    "clean": (lambda d: write(d / "p.yaml", policy("p", [KPTR, SWAP])), False),
    "expired waiver": (lambda d: write(d / "p.yaml", policy(
        "p", [KPTR, SWAP], waivers=[waiver("LAT-001", -10)])), False),
    "waiver in force": (lambda d: write(d / "p.yaml", policy(
        "p", [KPTR, SWAP], waivers=[waiver("LAT-001", 30)])), False),
    "waiver over a year (a warning)": (lambda d: write(d / "p.yaml", policy(
        "p", [KPTR, SWAP], waivers=[waiver("LAT-001", 400)])), False),
    "an invalid seccomp profile beside (not audited)": (lambda d: (
        write(d / "p.yaml", policy("p", [KPTR])),
        text(d / "profile.yaml", "apiVersion: hostguard/v1\nkind: SeccompProfile\n"
             "metadata: {name: s}\ndefault_action: {errno: 1}\nrules:\n"
             "  - syscalls: [nosuchcall]\n")), False),
    "waiver without a reason": (lambda d: write(d / "p.yaml", policy(
        "p", [KPTR, SWAP], waivers=[waiver("LAT-001", 30, reason=" ")])), True),
    "expired waiver without a reason": (lambda d: write(d / "p.yaml", policy(
        "p", [KPTR, SWAP], waivers=[waiver("LAT-001", -10, reason=" ")])), True),
    "waiver of an unknown check": (lambda d: write(d / "p.yaml", policy(
        "p", [KPTR], waivers=[waiver("NOPE-1", 30)])), True),
    "unknown key": (lambda d: write(d / "p.yaml", {**policy("p", [KPTR]), "chekcs": []}), True),
    "spec error": (lambda d: write(d / "p.yaml", policy(
        "p", [sysctl("KRN-001", "kernel.kptr_restrict", "ge", "high")])), True),
    "duplicate id": (lambda d: write(d / "p.yaml", policy("p", [KPTR, KPTR])), True),
    "missing extends": (lambda d: write(d / "p.yaml", policy(
        "p", [KPTR], extends=["base.yaml"])), True),
    "yaml syntax": (lambda d: text(d / "p.yaml", "checks: [\n"), True),
    "one bad file among good ones": (lambda d: (
        write(d / "a.yaml", policy("a", [KPTR])), text(d / "b.yaml", "\tkind: Policy\n")), True),
    "not a single check": (lambda d: write(d / "p.yaml", policy("p", [])), True),
    "no policy file": (lambda d: d.mkdir(parents=True), True),
    "a missing path": (lambda d: None, True),
}


def one_shot_refuses(folder: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> bool:
    """Whether ``hostguard audit`` refuses the policies under ``folder`` (exit 2, no report)."""
    code = cli.main(["audit", "--policy", str(folder), "--root", str(TRADING_ROOT),
                     "--today", TODAY.isoformat(), "--format", "json", "--output", str(out)])
    capsys.readouterr()
    assert code in (0, 1, 2, 3)
    assert out.exists() is (code != 2)
    return code == 2


def daemon_refuses(folder: Path, config_folder: Path) -> bool:
    """Whether the daemon refuses (at start and at reload) the policies under ``folder``."""
    config = write(config_folder / "hostguard.yaml", {
        "apiVersion": "hostguard/v1", "kind": "AgentConfig", "policies": [str(folder)],
        "root": str(TRADING_ROOT)})
    return isinstance(service.load_all(config, TODAY), list)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_one_shot_audit_and_the_daemon_refuse_the_same_policies(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, refused = CASES[case]
    folder = tmp_path / "policies"
    make(folder)
    assert one_shot_refuses(folder, tmp_path / "out.json", capsys) is refused
    assert daemon_refuses(folder, tmp_path / "etc") is refused
    assert load_for_audit([str(folder)], TODAY).refused is refused


def test_an_expired_waiver_is_tolerated_and_audited_without(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "p.yaml", policy("p", [KPTR, SWAP],
                                             waivers=[waiver("LAT-001", -10)]))
    found = load_for_audit([str(path)], TODAY)
    assert [d.rule for d in found.tolerated] == ["waiver-expired"]
    assert (found.errors, found.usage, found.refused) == ((), (), False)
    out = tmp_path / "out.json"
    assert not one_shot_refuses(path, out, capsys)
    statuses = {r["id"]: r["status"] for r in json.loads(out.read_text())["results"]}
    assert statuses == {"KRN-001": "pass", "LAT-001": "fail"}  # not waived


def test_what_refuses_is_told(tmp_path: Path) -> None:
    write(tmp_path / "p.yaml", policy("p", [KPTR, KPTR]))
    found = load_for_audit([str(tmp_path), str(tmp_path / "missing")], TODAY)
    assert [d.rule for d in found.errors] == ["duplicate-id"]
    assert [u.split(":")[-1].strip() for u in found.usage] == ["No such file or directory"]
    assert found.files == (tmp_path / "p.yaml",)
    assert found.refused
