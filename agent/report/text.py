"""Plain-text audit summary for terminals and logs."""

from __future__ import annotations

from agent.result import AuditRun, Status

_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.WAIVED: 2, Status.PASS: 3,
          Status.NOT_APPLICABLE: 4}
_SEVERITY = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def _clean(text: str) -> str:
    # Host data may carry terminal escapes; show control characters instead of obeying them.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def summary(run: AuditRun) -> str:
    """Counts (last), after a line on applicability when most checks did not apply."""
    host = run.host
    counts = ", ".join(f"{n} {s}" for s, n in run.counts.items() if n)
    kernel = _clean(host.kernel_release or "?")
    return applicability(run) + (
        f"hostguard audit of {_clean(host.hostname)} (kernel {kernel}) "
        f"at {run.started}: {len(run.results)} checks, {counts or 'nothing to check'} "
        f"[{run.duration_ms:.0f} ms, policy {run.policy_digest[:12]}]\n")


def applicability(run: AuditRun) -> str:
    """A line when no check applied (loud: that is not compliance) or when most did not,
    saying how many and why; empty otherwise."""
    total = len(run.results)
    missed = total - run.evaluated
    if run.not_evaluated:
        return (f"NOT EVALUATED: none of the {total} checks applies to this host, nothing was "
                f"checked and this is not a compliant result: "
                f"{_clean(run.not_applicable_reasons())}\n")
    if 2 * missed > total:
        return (f"{missed} of {total} checks not applicable: "
                f"{_clean(run.not_applicable_reasons())}\n")
    return ""


def render(run: AuditRun, verbose: bool = False) -> str:
    """Failures and errors first, then the rest when ``verbose``; summary last."""
    lines = []
    ordered = sorted(run.results, key=lambda r: (_ORDER[r.status],
                                                 _SEVERITY[r.check.severity.value], r.check.id))
    for r in ordered:
        if not verbose and r.status in (Status.PASS, Status.NOT_APPLICABLE):
            continue
        lines.append(f"{r.status.value.upper():<14} {r.check.severity.value:<8} {r.check.id:<10} "
                     f"{_clean(r.check.title)}")
        lines.append(f"{'':<34}{_clean(r.message)}  ({r.check.location})")
    return "\n".join(lines) + ("\n" if lines else "") + summary(run)
