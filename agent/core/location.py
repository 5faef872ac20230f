"""Source positions: every finding and every result points at ``path:line:col``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Location:
    """A 1-based position in a source file."""

    path: str
    """The file as the user named it (or as reached through ``extends``)."""
    line: int = 1
    """1-based line number."""
    col: int = 1
    """1-based column number."""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


def display_path(path: Path) -> str:
    """Path as shown in diagnostics: relative to the working folder when inside it, unless
    that folder is ``/``.

    A service runs in ``/``, where every path is inside the working folder: relative to it,
    ``/etc/hostguard/policies/x.yaml`` would read ``etc/hostguard/policies/x.yaml`` in the
    journal, the status line and the reports, as if relative to wherever the reader is.
    """
    absolute = os.path.abspath(path)
    cwd = os.getcwd()
    if cwd == os.path.sep:
        return absolute
    relative = os.path.relpath(absolute, cwd)
    return absolute if relative.startswith("..") else relative
