"""Policies across files: ``extends``, overrides, waivers and id uniqueness.

Merging, exactly:

1. A policy's parents (``extends``) are resolved first, depth-first, in the order listed; each file
   is loaded once however many policies extend it (a shared base is fine, a cycle is an error).
2. Checks keep the order in which they are first met. The same check reached along two routes
   is one check; when two parents carry different overrides of it, the later parent's wins.
3. A policy's own ``checks`` are new: an id that is already defined anywhere else is an error.
4. A policy's ``overrides`` then replace fields of inherited checks: ``title``, ``severity``,
   ``rationale``, ``remediation``, ``references`` and ``spec`` (replaced whole; the kind stays).
   There is no way to delete a check: only a waiver, with reason and expiry, turns it off.
5. Waivers accumulate from every file; each must name a check of its own policy or of one it
   extends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from agent.checks import KINDS
from agent.checks.base import SpecError
from agent.core.diagnostic import Diagnostic, Level
from agent.core.location import Location, display_path
from agent.core.schema_errors import short, suggest
from agent.core.schemafile import API_VERSION
from agent.core.yamlload import Document, LoadError, load_file
from agent.policy.loader import _spec_validator, parse_policy, validate
from agent.policy.model import Check, Policy, Severity, Waiver

_ID_CUTOFF = 0.8
"""Ids are short: only a near-miss (KRN-01 for KRN-001) is worth a "did you mean"."""


DocumentLinter = Callable[[Document, dt.date], list[Diagnostic]]
"""Lints one loaded document of a kind other than Policy."""


def _other_kind(doc: Document, others: Mapping[str, DocumentLinter]) -> str | None:
    data = doc.data
    if not isinstance(data, dict) or data.get("apiVersion") != API_VERSION:
        return None
    kind = data.get("kind")
    return kind if isinstance(kind, str) and kind in others else None


@dataclass
class LoadedFile:
    """One file as loaded: its document (if it parsed) and policy (if valid)."""

    key: Path
    """Real path: identity for cycles and the same file reached twice."""
    display: str
    """Name used in locations."""
    document: Document | None
    policy: Policy | None
    diagnostics: list[Diagnostic]
    kind: str = "Policy"
    """The document's ``kind``; other kinds (``SeccompProfile``) are linted by their own module."""


@dataclass
class Closure:
    """A policy with everything it extends, merged."""

    checks: dict[str, Check] = field(default_factory=dict)
    waivers: list[Waiver] = field(default_factory=list)
    files: dict[Path, LoadedFile] = field(default_factory=dict)


class PolicyStore:
    """Loads each file once and resolves closures; collects every diagnostic once."""

    def __init__(self, today: dt.date, others: Mapping[str, DocumentLinter] | None = None) -> None:
        self.today = today
        self.others: Mapping[str, DocumentLinter] = others if others is not None else {}
        """Linters of the other document kinds that may share a folder with policies (looked
        up only for a document of that kind: a linter's module loads when first needed)."""
        self.files: dict[Path, LoadedFile] = {}
        self.closures: dict[Path, Closure | None] = {}
        self.extra: list[Diagnostic] = []
        self.roots: set[Path] = set()

    def load(self, path: Path) -> LoadedFile:
        """Load (once) the policy file at ``path``."""
        key = Path(os.path.realpath(path))
        if key in self.files:
            return self.files[key]
        display = display_path(path)
        result = load_file(path, display)
        if isinstance(result, LoadError):
            diag = Diagnostic(result.location, Level.ERROR, result.message, result.rule)
            loaded = LoadedFile(key, display, None, None, [diag])
        elif (kind := _other_kind(result, self.others)) is not None:
            loaded = LoadedFile(key, display, result, None, self.others[kind](result, self.today),
                                kind)
        else:
            policy, diagnostics = parse_policy(result, self.today)
            loaded = LoadedFile(key, display, result, policy, diagnostics)
        self.files[key] = loaded
        return loaded

    def diagnostics(self) -> list[Diagnostic]:
        """Every diagnostic found so far, deduplicated and sorted by location."""
        # A base that cannot be read at all is reported where it is named (extends-missing),
        # not at a position inside a file that does not exist.
        found = {d for f in self.files.values() if f.document is not None or f.key in self.roots
                 for d in f.diagnostics} | set(self.extra)
        return sorted(found)

    def report(self, loc: Location, message: str, rule: str) -> None:
        self.extra.append(Diagnostic(loc, Level.ERROR, message, rule))

    def closure(self, loaded: LoadedFile, stack: tuple[Path, ...] = ()) -> Closure | None:
        """``loaded`` merged with what it extends; None when it cannot be built."""
        if loaded.key in self.closures:
            return self.closures[loaded.key]
        policy = loaded.policy
        if policy is None:
            return None
        stack = (*stack, loaded.key)
        merged = Closure(files={loaded.key: loaded})
        incomplete = False  # a parent was skipped: its checks are unknown here, not absent
        for target, loc in policy.extends:
            if "\0" in target:  # no file has such a name; the OS calls would raise ValueError
                self.report(loc, f"cannot extend {short(target)}: a path cannot contain a NUL "
                            "character", "extends-missing")
                incomplete = True
                continue
            parent_path = Path(loaded.display).parent / target
            parent_key = Path(os.path.realpath(parent_path))
            if parent_key in stack:
                chain = " -> ".join(self.files[k].display for k in stack[stack.index(parent_key):])
                self.report(loc, f"extends cycle: {chain} -> {self.files[parent_key].display}",
                            "extends-cycle")
                incomplete = True
                continue
            parent = self.load(parent_path)
            if parent.document is None:
                reason = "unreadable"
                if parent.diagnostics:
                    first = parent.diagnostics[0]
                    # A file that exists but does not parse: say where, it may not be linted.
                    where = f" (at {first.location})" if first.rule != "read-error" else ""
                    reason = first.message + where
                self.report(loc, f"cannot extend {short(target)}: {reason}", "extends-missing")
                incomplete = True
                continue
            if parent.kind != "Policy":
                self.report(loc, f"cannot extend {short(target)}: it is a {parent.kind}, "
                            "not a Policy", "extends-invalid")
                incomplete = True
                continue
            sub = self.closure(parent, stack)
            if sub is None:
                self.report(loc, f"extended policy {short(target)} has errors",
                            "extends-invalid")
                incomplete = True
                continue
            self._inherit(merged, sub)
        inherited = set(merged.checks)
        self._own_checks(merged, policy)
        self._overrides(merged, policy, inherited, incomplete)
        self._waivers(merged, policy, incomplete)
        self.closures[loaded.key] = merged
        return merged

    def _inherit(self, merged: Closure, sub: Closure) -> None:
        for cid, check in sub.checks.items():
            known = merged.checks.get(cid)
            if known is not None and known.location != check.location:
                self.report(check.location, f"duplicate check id {cid!r}: also defined at "
                            f"{known.location}", "duplicate-id")
                continue
            merged.checks[cid] = check
        merged.waivers.extend(w for w in sub.waivers if w not in merged.waivers)
        merged.files.update(sub.files)

    def _own_checks(self, merged: Closure, policy: Policy) -> None:
        for check in policy.checks:
            known = merged.checks.get(check.id)
            if known is not None:
                self.report(check.location, f"check {check.id!r} is already defined at "
                            f"{known.location}; change an inherited check under overrides",
                            "duplicate-id")
                continue
            merged.checks[check.id] = check

    def _overrides(
        self, merged: Closure, policy: Policy, inherited: set[str], incomplete: bool
    ) -> None:
        loaded = self.files[Path(os.path.realpath(policy.path))]
        for override in policy.overrides:
            if override.id not in inherited:
                if incomplete and override.id not in merged.checks:
                    continue  # it may be defined by the parent already reported as broken
                hint = " (it is defined here: edit it directly)" if override.id in merged.checks \
                    else suggest(override.id, sorted(inherited), _ID_CUTOFF)
                self.report(override.location, f"override of {override.id!r}: no extended policy "
                            f"defines that check{hint}", "override-unknown")
                continue
            base = merged.checks[override.id]
            changes: dict[str, Any] = {}
            for name, value in override.fields.items():
                if name == "spec":
                    spec = self._override_spec(loaded, base.kind, value, override.index)
                    if spec is None:
                        break
                    changes.update(spec=spec, raw_spec=value)
                elif name == "severity":
                    changes["severity"] = Severity(value)
                elif name == "references":
                    changes["references"] = tuple(value)
                else:
                    changes[name] = value
            else:
                merged.checks[override.id] = dataclasses.replace(
                    base, **changes, overridden_at=(*base.overridden_at, override.location)
                )

    def _override_spec(
        self, loaded: LoadedFile, kind: str, raw: Any, index: int
    ) -> Any:
        doc = loaded.document
        assert doc is not None
        prefix = ("overrides", index, "spec")
        found = validate(doc, raw, KINDS[kind].spec_schema, partial(_spec_validator, kind),
                         prefix).diagnostics
        if found:
            self.extra.extend(found)
            return None
        assert isinstance(raw, dict)
        try:
            return KINDS[kind].parse_at(raw, Path(doc.path))
        except SpecError as exc:
            for problem in exc.problems:
                self.extra.append(Diagnostic(doc.at((*prefix, *problem.path)), Level.ERROR,
                                             problem.message, problem.rule))
            return None

    def _waivers(self, merged: Closure, policy: Policy, incomplete: bool) -> None:
        for waiver in policy.waivers:
            if waiver.check not in merged.checks:
                if incomplete:
                    continue  # it may be defined by the parent already reported as broken
                self.report(waiver.location, f"waiver for unknown check {short(waiver.check)}"
                            f"{suggest(waiver.check, sorted(merged.checks), _ID_CUTOFF)}",
                            "waiver-unknown-check")
            elif waiver not in merged.waivers:
                merged.waivers.append(waiver)


@dataclass
class PolicySet:
    """Everything loaded from a set of root policies."""

    checks: list[Check]
    """Merged checks, in first-met order; each knows the selectors that gate it."""
    waivers: list[Waiver]
    """Every waiver in force."""
    files: list[LoadedFile]
    """Every file loaded, roots and bases, in load order."""
    diagnostics: list[Diagnostic]
    """Everything wrong, sorted by location."""

    @property
    def ok(self) -> bool:
        """True when no error-level diagnostic was found."""
        return not any(d.level is Level.ERROR for d in self.diagnostics)


def resolve(roots: Iterable[Path], today: dt.date, store: PolicyStore | None = None) -> PolicySet:
    """Load ``roots`` with what they extend and merge them into one set of checks."""
    store = store or PolicyStore(today)
    checks: dict[str, Check] = {}
    waivers: list[Waiver] = []
    for root in roots:
        loaded = store.load(root)
        store.roots.add(loaded.key)
        if loaded.kind != "Policy":
            continue
        merged = store.closure(loaded)
        if merged is None or loaded.policy is None:
            continue
        root_hosts = loaded.policy.hosts
        for cid, check in merged.checks.items():
            known = checks.get(cid)
            if known is not None and known.location != check.location:
                store.report(check.location, f"duplicate check id {cid!r}: also defined at "
                             f"{known.location}", "duplicate-id")
                continue
            base = known or check
            checks[cid] = dataclasses.replace(base, roots=(*base.roots, root_hosts))
        waivers.extend(w for w in merged.waivers if w not in waivers)
    return PolicySet(list(checks.values()), waivers, list(store.files.values()),
                     store.diagnostics())
