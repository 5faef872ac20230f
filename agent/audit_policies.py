"""The policies of an audit: the one rule for what refuses an audit and what it goes on without.

Both the one-shot audit (``hostguard audit``) and the daemon load their policies here, linted
as ``hostguard lint`` lints them. Any lint error refuses the audit but one: an expired waiver
fails CI's lint, yet on the host the audit must go on (without the waiver), since refusing to
audit from the expiry day on would hide everything. A set of policies without a single check
refuses the audit too: it would report a compliant host having looked at nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from agent.core.diagnostic import Diagnostic, Level
from agent.core.record import record
from agent.core.yamlload import Document
from agent.lint.documents import LINTERS
from agent.lint.engine import discover
from agent.policy.resolve import PolicySet, PolicyStore, resolve

TOLERATED = frozenset({"waiver-expired"})
"""Lint errors that do not stop an audit (it goes on without the expired waiver)."""


@record
class AuditPolicies:
    """Policies loaded for an audit, with what refuses it and what it goes on without."""

    policy_set: PolicySet
    """The policies found, merged (whatever could be loaded, even when refused)."""
    files: tuple[Path, ...]
    """Files found under the paths given (policies and documents of other kinds)."""
    usage: tuple[str, ...]
    """Paths that cannot be used (missing, unreadable), in words."""
    errors: tuple[Diagnostic, ...]
    """Lint errors that refuse the audit."""
    tolerated: tuple[Diagnostic, ...]
    """Lint errors the audit goes on without (:data:`TOLERATED`)."""

    @property
    def refused(self) -> bool:
        """Whether nothing may be audited: an unusable path, a lint error not tolerated, or not
        a single check."""
        return bool(self.usage or self.errors or not self.policy_set.checks)


def load_for_audit(paths: Iterable[str], today: dt.date) -> AuditPolicies:
    """The policies under ``paths`` (files, or folders searched as ``hostguard lint`` does),
    waivers judged as of ``today``."""
    files, diagnostics, usage = discover(paths)
    # Documents of other kinds (seccomp profiles, the daemon's configuration) may share the
    # folder: they are not audited, and ``hostguard lint`` lints them.
    store = PolicyStore(today, dict.fromkeys(LINTERS, _not_linted))
    policy_set = resolve(files, today, store)
    found = sorted(set(diagnostics) | set(policy_set.diagnostics))
    return AuditPolicies(
        policy_set=policy_set,
        files=tuple(files),
        usage=tuple(usage),
        errors=tuple(d for d in found if d.level is Level.ERROR and d.rule not in TOLERATED),
        tolerated=tuple(d for d in found if d.rule in TOLERATED),
    )


def _not_linted(doc: Document, today: dt.date) -> list[Diagnostic]:
    return []
