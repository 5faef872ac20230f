"""``sysctl``: a kernel parameter under ``/proc/sys`` compared with an expected value.

Passes::

    - id: KRN-001
      kind: sysctl
      spec: {key: kernel.kptr_restrict, op: ge, value: 1}     # host has 2

Fails::

    - id: NET-010
      kind: sysctl
      spec: {key: net.ipv4.conf.*.accept_redirects, value: 0}  # one interface has 1

Keys are dotted, or slashed when a component holds a dot (``net/ipv4/conf/eth0.100/rp_filter``);
``*`` in a component matches every entry and every match must satisfy the condition. A key that
does not exist is ``error`` unless ``missing`` says otherwise.
"""

from __future__ import annotations

from agent.checks.valuekind import ValueKind, ValueSpec, value_schema
from agent.host.snapshot import Snapshot, SnapshotRequest, Values


class SysctlKind(ValueKind):
    """Kernel parameters under /proc/sys."""

    name = "sysctl"
    summary = "A kernel parameter under /proc/sys compared with an expected value."
    field = "key"
    noun = "sysctl key"
    spec_schema = value_schema(summary, field, {
        "description": "sysctl key, dotted or slashed; '*' matches within a component.",
        "examples": ["kernel.kptr_restrict", "net.ipv4.conf.*.rp_filter"],
    })

    def separator(self, key: str) -> str:
        return "/" if "/" in key else "."

    def request(self, spec: ValueSpec) -> SnapshotRequest:
        return SnapshotRequest(sysctl=frozenset({spec.key}))

    def values(self, spec: ValueSpec, snapshot: Snapshot) -> Values | None:
        return snapshot.sysctl.get(spec.key)
