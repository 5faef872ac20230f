"""Recorded histories for the tests of ``agent.daemon.history`` and ``agent.daemon.chain``: five
audits of the fixture host, and the means to tamper with the database as an intruder would."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent import audit
from agent.daemon.history import History
from agent.policy.resolve import resolve
from agent.result import AuditRun
from tests.authoring import TRADING_ROOT, policy, sysctl, write

TODAY = dt.date(2026, 6, 1)
PASS_KPTR = sysctl("KRN-001", "kernel.kptr_restrict", "ge", 1)  # the fixture host has 2
FAIL_KPTR = sysctl("KRN-001", "kernel.kptr_restrict", "ge", 3)
PASS_KPTR_2 = sysctl("KRN-001", "kernel.kptr_restrict", "ge", 2)
PASS_SWAP = sysctl("LAT-001", "vm.swappiness", "eq", 1)  # the fixture host has 1
FAIL_SWAP = sysctl("LAT-001", "vm.swappiness", "eq", 10)
ERROR_SYSRQ = sysctl("KRN-009", "kernel.sysrq", "eq", 0)  # not on the fixture host
PLAN = [
    ("2026-11-24T10:00:00Z", [PASS_KPTR, PASS_SWAP]),
    ("2026-11-24T11:00:00Z", [PASS_KPTR, FAIL_SWAP]),
    ("2026-11-24T12:00:00Z", [FAIL_KPTR, FAIL_SWAP, ERROR_SYSRQ]),
    ("2026-11-24T13:00:00Z", [PASS_KPTR_2, PASS_SWAP]),
    ("2026-11-24T14:00:00Z", [PASS_KPTR_2, PASS_SWAP]),
]
STARTED = {i + 1: started for i, (started, _) in enumerate(PLAN)}


def make_run(folder: Path, checks: Sequence[dict[str, Any]], started: str) -> AuditRun:
    path = write(folder / f"policy-{started[:13]}.yaml", policy("history-test", checks))
    policy_set = resolve([path], TODAY)
    assert policy_set.diagnostics == []
    return dataclasses.replace(audit.run(policy_set, TRADING_ROOT, today=TODAY), started=started)


def problems(path: Path) -> list[str]:
    with History(path, create=False) as history:
        return [str(p) for p in history.verify()]


def tamper(path: Path, *statements: str | tuple[str, tuple[Any, ...]]) -> None:
    """Edit the database behind hostguard's back, as an intruder with sqlite3 would."""
    con = sqlite3.connect(path)
    try:
        for statement in statements:
            if isinstance(statement, tuple):
                con.execute(*statement)
            else:
                con.execute(statement)
        con.commit()
    finally:
        con.close()


def stored(path: Path, run_id: int) -> dict[str, Any]:
    con = sqlite3.connect(path)
    try:
        row = con.execute("SELECT canonical_json FROM runs WHERE id = ?", (run_id,)).fetchone()
    finally:
        con.close()
    data: dict[str, Any] = json.loads(row[0])
    return data
