"""Verdict, hardening score and drift between two runs: shared by the reports.

Score: ``100 * sum(weight of passing checks) / sum(weight of checks that pass, fail or error)``,
with ``Severity.weight`` (critical 27, high 9, medium 3, low 1, info 0). Waived and not-applicable
checks are left out of both sums; an ``error`` counts as not passing. ``None`` when nothing
weighs (no scored check, or only ``info`` ones).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from agent.core.digest import sha256_hex
from agent.core.record import record
from agent.policy.model import Severity
from agent.result import AuditRun, Evidence, Result, Status

SCORED = (Status.PASS, Status.FAIL, Status.ERROR)
"""Statuses that take part in the score."""
FAILING = (Status.FAIL, Status.ERROR)
"""Statuses that count as not compliant."""


def weights(run: AuditRun) -> tuple[int, int]:
    """(weight of passing checks, weight of checks that pass, fail or error)."""
    return weighed((r.status, r.check.severity) for r in run.results)


def weighed(verdicts: Iterable[tuple[Status, Severity]]) -> tuple[int, int]:
    """``weights`` of the results that these (status, severity) pairs are of."""
    total = passed = 0
    for status, severity in verdicts:
        if status in SCORED:
            weight = severity.weight
            total += weight
            if status is Status.PASS:
                passed += weight
    return passed, total


def score(run: AuditRun) -> float | None:
    """The hardening score in percent, rounded to one decimal, or ``None`` when nothing weighs."""
    return percent(weights(run))


def percent(passed_total: tuple[int, int]) -> float | None:
    """``score`` of these ``weights``."""
    passed, total = passed_total
    return round(100 * passed / total, 1) if total else None


def evidence_digest(evidence: Evidence) -> str:
    """SHA-256 of the evidence's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps({"expected": evidence.expected, "actual": evidence.actual,
                            "items": [dict(i) for i in evidence.items]},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return sha256_hex(canonical.encode())


@record
class Change:
    """One check compared between a baseline run and the current one."""

    id: str
    """Check id."""
    title: str
    """Current title (the baseline's when the check is gone)."""
    before: Result | None
    """Baseline result; ``None`` when the check is new."""
    after: Result | None
    """Current result; ``None`` when the check is gone."""


@record
class Drift:
    """What changed since the baseline, compared by check id."""

    newly_failing: tuple[Change, ...]
    """Now ``fail``/``error``, before anything else (or absent)."""
    fixed: tuple[Change, ...]
    """Before ``fail``/``error``, now ``pass``."""
    status_changed: tuple[Change, ...]
    """Any other change of status (e.g. ``fail`` -> ``waived``, ``pass`` -> ``not_applicable``)."""
    evidence_changed: tuple[Change, ...]
    """Same status, different evidence digest."""
    removed: tuple[Change, ...]
    """In the baseline only (whatever its status there: a check gone is not a fix)."""

    @property
    def empty(self) -> bool:
        """True when nothing changed."""
        return not (self.newly_failing or self.fixed or self.status_changed
                    or self.evidence_changed or self.removed)


def drift(run: AuditRun, baseline: AuditRun) -> Drift:
    """Compare ``run`` with ``baseline``; lists follow the current run's order, then the
    baseline's for checks that are gone."""
    before: Mapping[str, Result] = {r.check.id: r for r in baseline.results}
    seen: set[str] = set()
    newly, fixed, status, evidence, removed = [], [], [], [], []
    for after in run.results:
        cid = after.check.id
        seen.add(cid)
        old = before.get(cid)
        change = Change(cid, after.check.title, old, after)
        if after.status in FAILING and (old is None or old.status not in FAILING):
            newly.append(change)
        elif old is None:
            continue  # a new check that does not fail is no drift
        elif old.status in FAILING and after.status is Status.PASS:
            fixed.append(change)
        elif old.status is not after.status:
            status.append(change)
        elif evidence_digest(old.evidence) != evidence_digest(after.evidence):
            evidence.append(change)
    for old in baseline.results:
        if old.check.id not in seen:
            removed.append(Change(old.check.id, old.check.title, old, None))
    return Drift(tuple(newly), tuple(fixed), tuple(status), tuple(evidence), tuple(removed))


@record
class Verdict:
    """What a run says about the host, in one word and one sentence."""

    state: str
    """``compliant``, ``not_compliant`` or ``not_evaluated``."""
    words: str
    """The state as a reader says it ("not compliant")."""
    detail: str
    """Why, with counts."""


EVALUATED = (Status.PASS, Status.FAIL, Status.ERROR, Status.WAIVED)
"""Statuses of a check that was judged on the host (a waiver covers a judged verdict)."""


def verdict(run: AuditRun) -> Verdict:
    """Not compliant when a check fails or errs; not evaluated when no check was judged (all
    not applicable, or no check at all); compliant otherwise."""
    counts = {s: 0 for s in Status}
    for r in run.results:
        counts[r.status] += 1
    failing = counts[Status.FAIL] + counts[Status.ERROR]
    if failing:
        return Verdict("not_compliant", "not compliant",
                       f"{failing} of {len(run.results)} checks fail or could not be evaluated "
                       f"({counts[Status.FAIL]} fail, {counts[Status.ERROR]} error)")
    if not any(counts[s] for s in EVALUATED):
        why = (f"all {len(run.results)} checks are not applicable to this host"
               if run.results else "the policies hold no check")
        return Verdict("not_evaluated", "not evaluated", f"no check was evaluated: {why}")
    return Verdict("compliant", "compliant",
                   f"{counts[Status.PASS]} pass, {counts[Status.WAIVED]} waived, "
                   f"{counts[Status.NOT_APPLICABLE]} not applicable; none fails")


SCORE_BANDS = ((100.0, "excellent", "every scored check passes"),
               (90.0, "good", "little of the severity weight fails"),
               (70.0, "fair", "a notable share of the severity weight fails"),
               (0.0, "poor", "much of the severity weight fails"))
"""(lowest score, band, meaning), best first."""


def score_band(value: float | None) -> tuple[str, str]:
    """(band, meaning in words) of a score; ``("none", ...)`` when nothing weighs."""
    if value is None:
        return "none", "not scored: no check that weighs passed, failed or errored"
    for floor, band, meaning in SCORE_BANDS:
        if value >= floor:
            return band, meaning
    return SCORE_BANDS[-1][1:]
