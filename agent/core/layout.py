"""Files and folders laid out under a root without overwriting what an administrator changed.

A :class:`Entry` says what should be at a path (a folder, or a file's bytes) and with which
mode; :func:`plan` compares each with what is there and :func:`apply` writes what is missing
(and, when forced, what differs). A file or an owned folder that differs from what would be
written is the administrator's: it is kept and shown as a unified diff unless ``force``.
Files are written atomically (:mod:`agent.core.atomic`). ``hostguard install-service`` and
``hostguard policies copy`` use it.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Iterable, Sequence
from enum import StrEnum
from pathlib import Path

from agent.core.atomic import write_atomic
from agent.core.record import record


class State(StrEnum):
    """What :func:`apply` does (or did) with an entry."""

    CREATE = "create"
    """Missing: written."""
    UNCHANGED = "unchanged"
    """Already there, same content and mode: left alone."""
    KEEP = "keep"
    """There, but different (the administrator's): kept, unless forced."""
    REPLACE = "replace"
    """Different, and forced: replaced."""
    BLOCKED = "blocked"
    """Something of another type is there (a folder where a file goes, or the reverse):
    nothing is written, even when forced."""


@record
class Entry:
    """What should be at one path."""

    path: Path
    """The path on the target host (absolute), before any root is put in front."""
    mode: int
    """Permission bits of the file or folder."""
    content: bytes | None = None
    """The file's bytes; None for a folder."""


@record
class Step:
    """One entry against what is on disk."""

    entry: Entry
    target: Path
    """Where it is written: the entry's path under the root."""
    state: State
    difference: str = ""
    """For :attr:`State.KEEP`, :attr:`State.REPLACE` and :attr:`State.BLOCKED`: how the path
    differs, in words and, for a file's content, a unified diff."""


def target(root: Path, path: Path) -> Path:
    """``path`` (absolute) under ``root``."""
    return root / path.relative_to(path.anchor)


def plan(entries: Iterable[Entry], root: Path, force: bool = False) -> list[Step]:
    """Each entry compared with what is under ``root``, in the order given."""
    return [_step(entry, target(root, entry.path), force) for entry in entries]


def _step(entry: Entry, where: Path, force: bool) -> Step:
    try:
        info = os.lstat(where)
    except FileNotFoundError:
        return Step(entry, where, State.CREATE)
    except OSError as exc:  # a file where a parent folder should be, a folder it cannot search
        return Step(entry, where, State.BLOCKED, f"{where}: {exc.strerror or exc}")
    is_folder = entry.content is None
    if is_folder and stat.S_ISLNK(info.st_mode):  # a link to a folder serves as the folder
        try:
            info = os.stat(where)
        except OSError:
            return Step(entry, where, State.BLOCKED, f"{where} is a dangling symbolic link")
    if is_folder and not stat.S_ISDIR(info.st_mode):
        return Step(entry, where, State.BLOCKED, f"{where} is not a folder")
    if not is_folder and not stat.S_ISREG(info.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
        if stat.S_ISDIR(info.st_mode):
            return Step(entry, where, State.BLOCKED, f"{where} is a folder")
        # A link may point anywhere: it is never followed, only replaced when forced.
        return _differs(entry, where, force, f"{where} is {kind}")
    words = []
    mode = stat.S_IMODE(info.st_mode)
    if mode != entry.mode:
        words.append(f"{where} has mode {mode:04o}, hostguard writes {entry.mode:04o}")
    if entry.content is not None:
        try:
            current = where.read_bytes()
        except OSError as exc:
            return Step(entry, where, State.BLOCKED, f"{where}: {exc.strerror or exc}")
        if current != entry.content:
            words.append(unified_diff(current, entry.content, str(where)))
    if not words:
        return Step(entry, where, State.UNCHANGED)
    return _differs(entry, where, force, "\n".join(words))


def _differs(entry: Entry, where: Path, force: bool, difference: str) -> Step:
    return Step(entry, where, State.REPLACE if force else State.KEEP, difference)


def unified_diff(current: bytes, new: bytes, name: str) -> str:
    """``current`` -> ``new`` as a unified diff (undecodable bytes shown as escapes)."""
    def lines(data: bytes) -> list[str]:
        return data.decode("utf-8", "backslashreplace").splitlines(keepends=True)

    diff = difflib.unified_diff(lines(current), lines(new), f"{name} (on disk)",
                                f"{name} (hostguard)")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in diff).rstrip("\n")


def apply(steps: Sequence[Step]) -> None:
    """Write every step to :attr:`State.CREATE` or :attr:`State.REPLACE`, in order.

    Missing parents of a target are made with mode 0755 (those above the entries' own folders:
    ``/etc/systemd/system`` under an empty root). A folder's mode is set after it is made, so
    the umask does not loosen or tighten it.
    """
    for step in steps:
        if step.state not in (State.CREATE, State.REPLACE):
            continue
        entry, where = step.entry, step.target
        where.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if entry.content is None:
            if step.state is State.CREATE:
                where.mkdir(mode=entry.mode)
            os.chmod(where, entry.mode)
        else:
            write_atomic(where, entry.content, entry.mode)
