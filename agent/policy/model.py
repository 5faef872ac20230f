"""The policy model: frozen, located, and free of YAML."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import field
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any

from agent.core.location import Location
from agent.core.record import record


class Severity(StrEnum):
    """How much a failure of a check matters."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def weight(self) -> int:
        """Weight in hardening scores: each level counts about three times the next."""
        return {"critical": 27, "high": 9, "medium": 3, "low": 1, "info": 0}[self.value]


@record
class HostSelector:
    """Which hosts a policy applies to; an empty selector matches every host."""

    hostnames: tuple[str, ...] = ()
    """Hostname globs; one must match (when any are given)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels the host must carry, all of them."""
    policy: str = field(default="", compare=False)
    """``metadata.name`` of the policy that wrote the selector (for messages only)."""
    location: Location | None = field(default=None, compare=False)
    """Where the selector (its ``hosts:`` key) is written; None for one read back from JSON."""

    def matches(self, hostname: str, labels: Mapping[str, str]) -> bool:
        """True when ``hostname``/``labels`` satisfy every criterion given."""
        return self.refusal(hostname, labels) is None

    def refusal(self, hostname: str, labels: Mapping[str, str]) -> str | None:
        """Why ``hostname``/``labels`` are not selected, in words; None when they are."""
        if self.hostnames and not any(fnmatchcase(hostname, g) for g in self.hostnames):
            return f"hostname {hostname!r} matches none of {', '.join(self.hostnames)}"
        for key, value in self.labels.items():
            if key not in labels:
                return f"it needs label {key}={value}, the host has no label {key!r}"
            if labels[key] != value:
                return f"it needs label {key}={value}, the host has {key}={labels[key]}"
        return None

    def not_selected(self, hostname: str, labels: Mapping[str, str]) -> str | None:
        """``policy 'P' (FILE:LINE:COL) does not select host 'H': why``; None when it does."""
        why = self.refusal(hostname, labels)
        if why is None:
            return None
        where = "" if self.location is None else f" ({self.location})"
        return f"policy {self.policy!r}{where} does not select host {hostname!r}: {why}"


@record
class Waiver:
    """A time-boxed, reasoned exception for one check."""

    check: str
    """Id of the waived check."""
    reason: str
    """Why; required."""
    expires: dt.date
    """Last day the waiver holds."""
    hosts: tuple[str, ...]
    """Hostname globs; empty means every host."""
    location: Location
    """Where the waiver is written."""

    def applies(self, hostname: str, today: dt.date) -> bool:
        """True when the waiver covers ``hostname`` on ``today``."""
        if today > self.expires:
            return False
        return not self.hosts or any(fnmatchcase(hostname, g) for g in self.hosts)


@record
class Check:
    """One check, after ``extends`` and ``overrides`` are merged."""

    id: str
    """Unique id, e.g. ``KRN-001``."""
    kind: str
    """Registered check kind."""
    title: str
    """One line."""
    severity: Severity
    """How much a failure matters."""
    rationale: str
    """Why the check exists."""
    remediation: str
    """How to fix a failure."""
    references: tuple[str, ...]
    """Benchmarks, docs."""
    spec: Any
    """The kind's parsed spec object."""
    raw_spec: Mapping[str, Any]
    """The spec as written, for reports."""
    location: Location
    """Where the check is defined (overrides applied are in ``overridden_at``)."""
    policy: str
    """``metadata.name`` of the policy that defined it."""
    hosts: HostSelector = HostSelector()
    """Selector of the defining policy: must match for the check to apply."""
    roots: tuple[HostSelector, ...] = ()
    """Selectors of the root policies that brought the check in: one must match."""
    overridden_at: tuple[Location, ...] = ()
    """Overrides applied, in order."""


@record
class Policy:
    """One policy file as written (before merging)."""

    name: str
    """``metadata.name``."""
    path: str
    """File path as loaded."""
    sha256: str
    """Digest of the file's bytes."""
    description: str | None
    """``metadata.description``."""
    version: str | None
    """``metadata.version``."""
    extends: tuple[tuple[str, Location], ...]
    """Paths as written, with their positions."""
    hosts: HostSelector
    """When this policy applies."""
    checks: tuple[Check, ...]
    """New checks defined here."""
    overrides: tuple[Override, ...]
    """Changes to inherited checks."""
    waivers: tuple[Waiver, ...]
    """Exceptions."""
    location: Location
    """Start of the document."""


@record
class Override:
    """A child policy's change to an inherited check."""

    id: str
    """The inherited check's id."""
    fields: Mapping[str, Any]
    """Replacement values: title, severity, rationale, remediation, references, raw spec."""
    location: Location
    """Where the override is written."""
    index: int
    """Position in the file's ``overrides`` list, for locating spec errors."""
