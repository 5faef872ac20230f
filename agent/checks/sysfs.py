"""``sysfs``: a kernel setting under ``/sys`` compared with an expected value.

Passes (the active choice is the bracketed one)::

    - id: LAT-010
      kind: sysfs
      spec: {path: kernel/mm/transparent_hugepage/enabled, op: in, value: [never, madvise]}
      # host file reads "always [madvise] never"

Fails::

    - id: LAT-010
      kind: sysfs
      spec: {path: kernel/mm/transparent_hugepage/enabled, value: never}
      # host file reads "[always] madvise never"
"""

from __future__ import annotations

import re

from agent.checks.valuekind import ValueKind, ValueSpec, value_schema
from agent.host.facts import ReadError
from agent.host.snapshot import Snapshot, SnapshotRequest, Values

_SELECTED = re.compile(r"\[([^\]\s]+)\]")


def selected(text: str) -> str:
    """``always [madvise] never`` -> ``madvise``; text without a bracketed choice unchanged."""
    match = _SELECTED.search(text)
    return match.group(1) if match else text


class SysfsKind(ValueKind):
    """Kernel settings under /sys."""

    name = "sysfs"
    summary = "A kernel setting under /sys; for choice lists the bracketed entry is compared."
    field = "path"
    noun = "sysfs path"
    spec_schema = value_schema(summary, field, {
        "description": "Path relative to /sys; '*' matches within a component.",
        "examples": ["kernel/mm/transparent_hugepage/enabled"],
    })

    def request(self, spec: ValueSpec) -> SnapshotRequest:
        return SnapshotRequest(sysfs=frozenset({spec.key}))

    def values(self, spec: ValueSpec, snapshot: Snapshot) -> Values | None:
        values = snapshot.sysfs.get(spec.key)
        if values is None:
            return None
        return {k: v if isinstance(v, ReadError) else selected(v) for k, v in values.items()}
