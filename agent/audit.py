"""The one orchestrator: merged policies + one host snapshot -> results."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING

from agent import __version__
from agent.checks import KINDS
from agent.core.digest import sha256_hex
from agent.host.snapshot import OwnListener, Snapshot, SnapshotRequest, take
from agent.policy.model import Check, Waiver
from agent.policy.resolve import PolicySet
from agent.result import AuditRun, Evidence, Outcome, PolicyFile, Result, Status

if TYPE_CHECKING:
    from agent.host.dump_cache import DumpCache
    from agent.host.fdwalk import FdWalk


def policy_files(policy_set: PolicySet) -> tuple[PolicyFile, ...]:
    """The files that took part, with their digests."""
    return tuple(
        PolicyFile(f.display, f.policy.name, f.policy.version, f.policy.sha256)
        for f in policy_set.files if f.policy is not None
    )


def policy_digest(files: Sequence[PolicyFile]) -> str:
    """SHA-256 over the sorted (policy name, file digest) pairs: one value names the policy in
    force, the same whichever folder the audit runs from."""
    lines = sorted(f"{f.name}\0{f.sha256}\n" for f in files)
    return sha256_hex("".join(lines).encode())


def waivers_for(policy_set: PolicySet, hostname: str, labels: Mapping[str, str]) -> list[Waiver]:
    """The waivers whose declaring policy selects this host.

    A waiver written in a policy for other hosts (``hosts: {hostnames: [stg-*]}``) must not
    cover the same check brought in for this host by another policy.
    """
    scopes = {w: f.policy.hosts for f in policy_set.files if f.policy is not None
              for w in f.policy.waivers}
    return [w for w in policy_set.waivers
            if w not in scopes or scopes[w].matches(hostname, labels)]


def request_for(checks: Sequence[Check],
                deep_allowed: Callable[[Check], bool] | None = None) -> SnapshotRequest:
    """Everything the checks need read from the host.

    ``deep_allowed`` (the daemon's ``deep_seccomp`` list) decides which checks may stop
    processes to read their seccomp filters; None allows every check that asks.
    """
    def one(check: Check) -> SnapshotRequest:
        wanted = KINDS[check.kind].request(check.spec)
        if wanted.seccomp_dumps and deep_allowed is not None and not deep_allowed(check):
            return dataclasses.replace(wanted, seccomp_dumps=frozenset())
        return wanted

    return reduce(lambda a, c: a | one(c), checks, SnapshotRequest())


def run(
    policy_set: PolicySet,
    root: Path,
    labels: Mapping[str, str] | None = None,
    today: dt.date | None = None,
    *,
    deep_allowed: Callable[[Check], bool] | None = None,
    dump_cache: DumpCache | None = None,
    fd_walk: FdWalk | None = None,
    own_listeners: tuple[OwnListener, ...] = (),
) -> AuditRun:
    """Read the host once and evaluate every check (see :func:`request_for` for
    ``deep_allowed``; ``dump_cache`` keeps seccomp filter dumps across runs; ``fd_walk``: how
    the fd tables are walked, see :class:`agent.host.fdwalk.FdWalk`; ``own_listeners``: the
    sockets the auditing agent itself is configured to listen on, which the ``ports`` kind
    tolerates and shows)."""
    labels = dict(labels or {})
    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    snapshot = take(root, request_for(policy_set.checks, deep_allowed), dump_cache, fd_walk)
    if own_listeners:
        snapshot = dataclasses.replace(snapshot, own_listeners=own_listeners)
    day = today or started.date()
    waivers = waivers_for(policy_set, snapshot.facts.hostname, labels)
    results = tuple(evaluate(check, snapshot, waivers, labels, day) for check in policy_set.checks)
    files = policy_files(policy_set)
    counts = Counter(r.status.value for r in results)
    return AuditRun(
        host=snapshot.facts,
        root=str(root),
        labels=labels,
        policies=files,
        policy_digest=policy_digest(files),
        started=started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        duration_ms=round((time.monotonic() - clock) * 1000, 3),
        results=results,
        tool_version=__version__,
        counts={s.value: counts.get(s.value, 0) for s in Status},
    )


def not_selected(check: Check, hostname: str, labels: Mapping[str, str]) -> str | None:
    """Why ``check`` does not apply to the host, naming the selector that decided (its policy
    and ``file:line:col``); None when it applies.

    The defining policy's selector decides first; else, when no root policy that brought the
    check in selects the host, each of theirs is named (a site policy extending a baseline is
    the one to blame, not the baseline).
    """
    own = check.hosts.not_selected(hostname, labels)
    if own is not None:
        return own
    if not check.roots or any(r.matches(hostname, labels) for r in check.roots):
        return None
    return "; ".join(dict.fromkeys(str(r.not_selected(hostname, labels)) for r in check.roots))


def evaluate(
    check: Check,
    snapshot: Snapshot,
    waivers: Sequence[Waiver],
    labels: Mapping[str, str],
    today: dt.date,
) -> Result:
    """Final verdict of one check: applicability, the kind's evaluation, then waivers."""
    hostname = snapshot.facts.hostname
    clock = time.perf_counter()
    refused = not_selected(check, hostname, labels)
    if refused is not None:
        outcome = Outcome(Status.NOT_APPLICABLE, refused,
                          Evidence("host selected by the policy", hostname))
    else:
        try:
            outcome = KINDS[check.kind].evaluate(check.spec, snapshot)
        except Exception as exc:  # a bug in one kind must not hide every other verdict
            outcome = Outcome(Status.ERROR, f"internal error: {type(exc).__name__}: {exc}",
                              Evidence("evaluation", "failed"))
    elapsed = round((time.perf_counter() - clock) * 1000, 3)
    if outcome.status in (Status.FAIL, Status.ERROR):
        mine = [w for w in waivers if w.check == check.id]
        active = next((w for w in mine if w.applies(hostname, today)), None)
        if active is not None:
            return Result(check, Status.WAIVED, f"waived until {active.expires}: {active.reason}",
                          outcome.evidence, active, outcome.status, elapsed)
        # Only waivers that would cover this host are worth a mention once they have expired.
        expired = [w for w in mine if w.expires < today and w.applies(hostname, w.expires)]
        if expired:
            note = f" (waiver expired on {max(w.expires for w in expired)})"
            return Result(check, outcome.status, outcome.message + note, outcome.evidence,
                          duration_ms=elapsed)
    return Result(check, outcome.status, outcome.message, outcome.evidence, duration_ms=elapsed)


EXIT_NOT_EVALUATED = 5
"""Every check was ``not_applicable``: nothing was looked at, which is not compliance."""


def exit_code(run_: AuditRun) -> int:
    """0 compliant, 1 a check failed, 3 nothing failed but something could not be evaluated,
    5 not a single check applied (:data:`EXIT_NOT_EVALUATED`)."""
    if run_.counts.get(Status.FAIL.value, 0):
        return 1
    if run_.counts.get(Status.ERROR.value, 0):
        return 3
    if run_.results and not run_.evaluated:
        return EXIT_NOT_EVALUATED
    return 0
