"""Lint a set of files and folders: discovery, per-file checks, cross-file resolution."""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from agent.core.diagnostic import Diagnostic, Level
from agent.core.location import Location, display_path
from agent.core.record import record
from agent.lint.documents import LINTERS
from agent.policy.resolve import PolicyStore, resolve

SUFFIXES = (".yaml", ".yml")


@record
class LintReport:
    """What ``hostguard lint`` found."""

    diagnostics: tuple[Diagnostic, ...]
    """Sorted by location."""
    files: int
    """How many policy files were read (bases reached through ``extends`` included)."""
    usage_errors: tuple[str, ...]
    """Paths named on the command line that do not exist or cannot be read (exit 2)."""

    @property
    def errors(self) -> int:
        return sum(d.level is Level.ERROR for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.level is Level.WARNING for d in self.diagnostics)

    def exit_code(self, strict: bool = False) -> int:
        """0 clean, 1 errors (or warnings when strict), 2 unusable arguments."""
        if self.usage_errors:
            return 2
        if self.errors or (strict and self.warnings):
            return 1
        return 0


def discover(paths: Iterable[str]) -> tuple[list[Path], list[Diagnostic], list[str]]:
    """Policy files under ``paths``: named files as they are, folders searched recursively.

    Symlinked folders are followed once each; a link back into its own ancestry is reported
    rather than followed, so a loop costs nothing.
    """
    files: list[Path] = []
    diagnostics: list[Diagnostic] = []
    usage: list[str] = []
    for arg in paths:
        path = Path(arg)
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            usage.append(f"{arg}: {exc.strerror or exc}")
            continue
        if not stat.S_ISDIR(mode):
            files.append(path)
            continue
        found = _walk(path, diagnostics)
        if not found:
            diagnostics.append(Diagnostic(Location(display_path(path)), Level.WARNING,
                                          "folder holds no *.yaml or *.yml file", "no-policies"))
        files.extend(found)
    return files, diagnostics, usage


def _walk(top: Path, diagnostics: list[Diagnostic]) -> list[Path]:
    found: list[Path] = []
    visited: set[str] = set()
    stack: list[tuple[Path, tuple[str, ...]]] = [(top, ())]
    while stack:
        folder, ancestors = stack.pop()
        real = os.path.realpath(folder)
        if real in ancestors:
            diagnostics.append(Diagnostic(Location(display_path(folder)), Level.ERROR,
                                          f"symbolic-link loop: {display_path(folder)} leads back "
                                          f"to {display_path(Path(real))}", "symlink-loop"))
            continue
        if real in visited:
            continue
        visited.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            diagnostics.append(Diagnostic(Location(display_path(folder)), Level.ERROR,
                                          f"cannot read folder: {exc.strerror or exc}",
                                          "read-error"))
            continue
        subfolders: list[tuple[Path, tuple[str, ...]]] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows links; a dangling link is not a folder
            except OSError:
                is_dir = False
            if is_dir:
                subfolders.append((Path(entry.path), (*ancestors, real)))
            elif entry.name.endswith(SUFFIXES):
                found.append(Path(entry.path))
        stack.extend(reversed(subfolders))
    return sorted(found)


def lint_paths(paths: Iterable[str], today: dt.date | None = None) -> LintReport:
    """Lint every policy file under ``paths``."""
    files, diagnostics, usage = discover(paths)
    # The UTC date, as the audit judges waivers: lint and audit agree on the day a waiver ends.
    store = PolicyStore(today or dt.datetime.now(dt.UTC).date(), LINTERS)
    policy_set = resolve(files, store.today, store)
    found = sorted(set(diagnostics) | set(policy_set.diagnostics))
    read = sum(1 for f in store.files.values() if f.document is not None or f.key in store.roots)
    return LintReport(tuple(found), read, tuple(usage))
