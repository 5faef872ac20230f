"""The result model: what one check found, and what one audit run produced."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import field
from enum import StrEnum
from typing import Any

from agent.core.record import record
from agent.host.facts import HostFacts
from agent.policy.model import Check, Waiver


class Status(StrEnum):
    """Verdict of one check on one host."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    """Could not be evaluated (unreadable, vanished, ...); never counts as compliant."""
    WAIVED = "waived"
    NOT_APPLICABLE = "not_applicable"


@record
class Evidence:
    """Expected vs actual, plus the rows that back the verdict."""

    expected: str
    """What the check requires, in words (``kernel.kptr_restrict >= 1``)."""
    actual: str
    """What was found (``0``), or why nothing could be read."""
    items: tuple[Mapping[str, Any], ...] = ()
    """One row per thing looked at (sysctl key, parameter, socket ...), JSON-serialisable."""


@record
class Outcome:
    """What a check kind's ``evaluate`` returns: a verdict before waivers apply."""

    status: Status
    """``pass``, ``fail``, ``error`` or ``not_applicable``."""
    message: str
    """One line for humans."""
    evidence: Evidence
    """Expected vs actual."""


@record
class Result:
    """The final verdict of one check, waivers and host selection applied."""

    check: Check
    """The (merged) check that was evaluated."""
    status: Status
    """Final status."""
    message: str
    """One line for humans."""
    evidence: Evidence
    """Expected vs actual."""
    waiver: Waiver | None = None
    """The waiver that turned this result into ``waived``."""
    waived_status: Status | None = None
    """For a waived check: the verdict the waiver covers (so auditors see what is hidden)."""
    duration_ms: float = 0.0
    """Time spent evaluating."""


@record
class PolicyFile:
    """A policy file that took part in the audit."""

    path: str
    """As loaded (relative paths kept)."""
    name: str
    """``metadata.name``."""
    version: str | None
    """``metadata.version``."""
    sha256: str
    """Digest of the file's bytes."""


@record
class AuditRun:
    """Everything one ``hostguard audit`` produced."""

    host: HostFacts
    """Who was audited."""
    root: str
    """Root the host was read from."""
    labels: Mapping[str, str]
    """Host labels given on the command line."""
    policies: tuple[PolicyFile, ...]
    """Every file loaded, roots and the files they extend."""
    policy_digest: str
    """SHA-256 over the loaded files' paths and digests."""
    started: str
    """UTC start time, ISO 8601."""
    duration_ms: float
    """Wall time of snapshot plus evaluation."""
    results: tuple[Result, ...]
    """One per check, in policy order."""
    tool_version: str = ""
    """hostguard version."""
    counts: Mapping[str, int] = field(default_factory=dict)
    """Results per status."""

    @property
    def evaluated(self) -> int:
        """Checks that applied to the host (every status but ``not_applicable``)."""
        return sum(r.status is not Status.NOT_APPLICABLE for r in self.results)

    @property
    def not_evaluated(self) -> bool:
        """Not a single check applied: the run says nothing about compliance."""
        return bool(self.results) and not self.evaluated

    def not_applicable_reasons(self, limit: int = 3) -> str:
        """Why checks were not applicable, most frequent reason first, at most ``limit`` of
        them: ``policy 'P' (FILE:LINE:COL) does not select host 'H': why (12 checks); ...``."""
        reasons = Counter(r.message for r in self.results
                          if r.status is Status.NOT_APPLICABLE)
        ranked = sorted(reasons.items(), key=lambda kv: -kv[1])
        words = [f"{why} ({n} check{'' if n == 1 else 's'})" for why, n in ranked[:limit]]
        if len(ranked) > limit:
            words.append(f"{len(ranked) - limit} more reason(s)")
        return "; ".join(words)
