"""Policy texts with predictable line numbers, for tests that assert exact positions.

``policy("p", extends=["b.yaml"], checks=["A-1", "A-2"])`` gives::

    1 apiVersion: hostguard/v1
    2 kind: Policy
    3 metadata: {name: p}
    4 extends: [b.yaml]           # entries at 4:11, then 2 + len(previous entry) further on
    5 checks:
    6   - id: A-1                 # the check's location is 6:5, its id value 6:9
   ..     (seven lines per check)
   13   - id: A-2                 # 13:5
   20 <rest>

Without ``extends`` everything moves one line up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

CHECK_LINES = 7


def check(cid: str, key: str = "kernel.kptr_restrict") -> str:
    """One sysctl check as a ``checks`` list item (seven lines)."""
    return (
        f"  - id: {cid}\n"
        "    kind: sysctl\n"
        f"    title: title of {cid}\n"
        "    severity: high\n"
        "    rationale: why\n"
        "    remediation: how\n"
        f"    spec: {{key: {key}, op: ge, value: 1}}\n"
    )


def policy(
    name: str,
    *,
    extends: Sequence[str] | None = None,
    hosts: str | None = None,
    checks: Sequence[str] = (),
    rest: str = "",
) -> str:
    """A policy; ``hosts`` is written after ``checks``, then ``rest`` (raw YAML)."""
    text = f"apiVersion: hostguard/v1\nkind: Policy\nmetadata: {{name: {name}}}\n"
    if extends is not None:
        text += f"extends: [{', '.join(extends)}]\n"
    if checks:
        text += "checks:\n" + "".join(check(c) for c in checks)
    if hosts is not None:
        text += f"hosts: {hosts}\n"
    return text + rest


def write(folder: Path, files: Mapping[str, str | bytes]) -> None:
    """Write ``{relative name: text}`` under ``folder``, creating subfolders."""
    for name, body in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body, encoding="utf-8")
