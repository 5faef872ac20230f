"""Small policy files written by tests (audit and CLI tests share them).

Policies are written as JSON, which is YAML 1.2, so what a test builds is exactly what is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TRADING_ROOT = Path(__file__).resolve().parent / "fixtures" / "hosts" / "trading-v2"
"""Fixture host ``trd-gw-01`` (kptr_restrict 2, swappiness 1, THP never, mitigations=off)."""


def check(cid: str, kind: str, spec: Mapping[str, Any], severity: str = "high",
          title: str | None = None) -> dict[str, Any]:
    """One check with every required field."""
    return {"id": cid, "kind": kind, "title": title or f"check {cid}", "severity": severity,
            "rationale": "test rationale", "remediation": "test remediation", "spec": dict(spec)}


def sysctl(cid: str, key: str, op: str, value: Any, **extra: Any) -> dict[str, Any]:
    """A sysctl check."""
    return check(cid, "sysctl", {"key": key, "op": op, "value": value, **extra})


def policy(
    name: str,
    checks: Sequence[Mapping[str, Any]] = (),
    *,
    hosts: Mapping[str, Any] | None = None,
    waivers: Sequence[Mapping[str, Any]] = (),
    extends: Sequence[str] = (),
    overrides: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A policy document."""
    doc: dict[str, Any] = {"apiVersion": "hostguard/v1", "kind": "Policy",
                           "metadata": {"name": name, "version": "1"}}
    if extends:
        doc["extends"] = list(extends)
    if hosts is not None:
        doc["hosts"] = dict(hosts)
    doc["checks"] = [dict(c) for c in checks]
    if overrides:
        doc["overrides"] = [dict(o) for o in overrides]
    if waivers:
        doc["waivers"] = [dict(w) for w in waivers]
    return doc


def write(path: Path, doc: Mapping[str, Any]) -> Path:
    """Write ``doc`` to ``path`` (folders created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path
