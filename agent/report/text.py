"""Plain-text audit summary for terminals and logs.

A finding's long lists are folded: a run of more than :data:`FOLD_AFTER` comma-separated words
(capability names, pids, syscalls) shows its first ones and ``(+N more)``; ``verbose`` shows every
finding whole, and each failing check's remediation below it.

With ``color``, status and severity carry ANSI SGR colours (whether to is the command line's
choice: a terminal, ``NO_COLOR``, ``--color``). Columns are padded before they are painted, so
they line up alike with and without colour. Host data never reaches the terminal as control
characters: they print as escapes (``\\x1b``), so only the colours this module adds are obeyed.
"""

from __future__ import annotations

import re

from agent.policy.model import Severity
from agent.report.score import FAILING, score
from agent.result import AuditRun, Status

# A check that could not be evaluated is as urgent as one that failed: both are not compliant,
# so severity alone orders them (a critical error before a low failure).
_ORDER = {Status.FAIL: 0, Status.ERROR: 0, Status.WAIVED: 1, Status.PASS: 2,
          Status.NOT_APPLICABLE: 3}
_SEVERITY = {severity: rank for rank, severity in enumerate(Severity)}
_STATUS_SGR = {Status.FAIL: "1;31", Status.ERROR: "1;35", Status.WAIVED: "33",
               Status.PASS: "32", Status.NOT_APPLICABLE: "2"}
"""Bold red, bold magenta, yellow, green, dim."""
_SEVERITY_SGR = {Severity.CRITICAL: "1;31", Severity.HIGH: "31", Severity.MEDIUM: "33",
                 Severity.LOW: "36", Severity.INFO: "2"}
"""Bold red, red, yellow, cyan, dim."""


FOLD_AFTER = 6
"""Longest list of words a finding shows whole without ``verbose``."""
_SHOWN = 4
"""Words a folded list shows before ``(+N more)``."""
_WORD = r"[^\s,;()\[\]]+"
_LIST = re.compile(rf"(?<![^\s(\[]){_WORD}(?:, {_WORD}){{{FOLD_AFTER},}}(?![^\s;)\]])")
"""More than FOLD_AFTER words (no spaces, commas or brackets in one) joined by ", "."""
_INDENT = " " * 34


def fold(message: str) -> str:
    """``message`` with each list of more than :data:`FOLD_AFTER` words cut to its first ones
    and ``(+N more)``."""
    def cut(match: re.Match[str]) -> str:
        words = match.group(0).split(", ")
        return f"{', '.join(words[:_SHOWN])} (+{len(words) - _SHOWN} more)"
    return _LIST.sub(cut, message)


def _paint(text: str, sgr: str, color: bool) -> str:
    return f"\x1b[{sgr}m{text}\x1b[0m" if color else text


def _clean(text: str) -> str:
    # Host data may carry terminal escapes; show control characters instead of obeying them.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def summary(run: AuditRun) -> str:
    """Counts (last) and the hardening score (when anything weighs), after a line on
    applicability when most checks did not apply."""
    host = run.host
    counts = ", ".join(f"{n} {s}" for s, n in run.counts.items() if n)
    kernel = _clean(host.kernel_release or "?")
    scored = score(run)
    weighed = "" if scored is None else f", score {scored:.1f}%"
    return applicability(run) + (
        f"hostguard audit of {_clean(host.hostname)} (kernel {kernel}) "
        f"at {run.started}: {len(run.results)} checks, {counts or 'nothing to check'}"
        f"{weighed} [{run.duration_ms:.0f} ms, policy {run.policy_digest[:12]}]\n")


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


def render(run: AuditRun, verbose: bool = False, *, color: bool = False) -> str:
    """Failures and errors first (by severity), waivers, then the rest when ``verbose``; summary
    last. ``color``: status and severity in ANSI colours."""
    lines = []
    ordered = sorted(run.results, key=lambda r: (_ORDER[r.status], _SEVERITY[r.check.severity],
                                                 r.check.id))
    for r in ordered:
        if not verbose and r.status in (Status.PASS, Status.NOT_APPLICABLE):
            continue
        status = _paint(f"{r.status.value.upper():<14}", _STATUS_SGR[r.status], color)
        severity = _paint(f"{r.check.severity.value:<8}", _SEVERITY_SGR[r.check.severity], color)
        lines.append(f"{status} {severity} {r.check.id:<10} {_clean(r.check.title)}")
        message = _clean(r.message if verbose else fold(r.message))
        lines.append(f"{_INDENT}{message}  ({r.check.location})")
        if verbose and r.status in FAILING and r.check.remediation.strip():
            fix = r.check.remediation.strip().splitlines()
            lines.append(f"{_INDENT}fix: {_clean(fix[0])}")
            lines.extend(f"{_INDENT}     {_clean(line)}" for line in fix[1:])
    return "\n".join(lines) + ("\n" if lines else "") + summary(run)
