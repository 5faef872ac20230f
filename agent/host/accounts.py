"""User and group names of the host under a root, from its ``etc/passwd`` and ``etc/group``.

Only the files are read (never NSS): under ``--root`` the names are the audited tree's, and a
live audit sees what the files say, which is what ``stat`` shows for local accounts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from agent.core.record import record
from agent.host.facts import ReadError


@record
class IdNames:
    """One of ``etc/passwd`` or ``etc/group``: ids and names both ways."""

    source: str
    """The file read."""
    by_id: Mapping[int, str]
    """id -> the first name listed with it (as ``getpwuid`` answers)."""
    by_name: Mapping[str, int]
    """name -> id."""


def read_id_names(root: Path, name: str) -> IdNames | ReadError:
    """``root/etc/<name>`` (``passwd`` or ``group``): ``name:x:id:...`` lines."""
    path = root / "etc" / name
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        return ReadError(f"{reason}: {path}")
    by_id: dict[int, str] = {}
    by_name: dict[str, int] = {}
    for line in text.split("\n"):  # not splitlines(): GECOS may hold \x1c, \x85 (chfn)
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isascii() and parts[2].isdigit():
            by_id.setdefault(int(parts[2]), parts[0])
            by_name.setdefault(parts[0], int(parts[2]))
    return IdNames(str(path), by_id, by_name)
