"""The mount table of a mount namespace, from ``/proc/<pid>/mountinfo`` (proc(5)).

Each line is ``id parent major:minor root mount-point mount-options [optional...] - fstype
source super-options``. The kernel escapes space, tab, newline and backslash in paths and the
source as ``\\ooo`` octal (``/mnt/my\\040disk``); they are decoded here. A line that does not
have that shape makes the whole table a :class:`ReadError`: a check never judges half a table.
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.core.record import record
from agent.host.facts import ReadError
from agent.host.procfs import read_proc_file

_ESCAPE = re.compile(r"\\([0-7]{3})")


@record
class Mount:
    """One line of ``mountinfo``."""

    mount_id: int
    """Unique id of the mount."""
    parent_id: int
    """Id of the mount it sits on (itself for the root of the namespace)."""
    root: str
    """The directory of the filesystem mounted here (``/`` unless a bind mount of a subtree)."""
    mount_point: str
    """Where it is mounted, escapes decoded."""
    options: tuple[str, ...]
    """Per-mount options (``rw``, ``nosuid``, ``nodev``, ``noexec``, ``relatime`` ...)."""
    fstype: str
    """Filesystem type, ``type.subtype`` for FUSE (``fuse.sshfs``)."""
    source: str
    """Filesystem-specific source (``/dev/vda1``, ``tmpfs``), escapes decoded."""
    super_options: tuple[str, ...]
    """Per-superblock options (``size=``, ``mode=``, ``pagesize=`` ...)."""

    def effective_options(self) -> tuple[str, ...]:
        """Per-mount then per-superblock options, each once, as ``findmnt`` shows them: the
        superblock's ``rw`` is implied by the mount's; a read-only superblock makes the mount
        read-only whatever its own flag says."""
        merged = [o for o in self.options if o != "rw" or "ro" not in self.super_options]
        if "ro" in self.super_options and "ro" not in merged:
            merged.insert(0, "ro")
        merged += [o for o in self.super_options if o not in ("rw", "ro") and o not in merged]
        return tuple(merged)


MountTable = tuple[Mount, ...]


def decode(text: str) -> str:
    """``/mnt/my\\040disk`` -> ``/mnt/my disk``."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str, shown: str) -> MountTable | ReadError:
    """The mounts of a ``mountinfo`` text (``shown`` names it in errors), in kernel order."""
    mounts: list[Mount] = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        fields = line.split(" ")
        try:
            dash = fields.index("-", 6)
        except ValueError:
            return ReadError(f"{shown}:{number}: no '-' separator in {line!r}")
        if len(fields) != dash + 4 or not (fields[0].isdigit() and fields[1].isdigit()):
            return ReadError(f"{shown}:{number}: not a mountinfo line: {line!r}")
        mounts.append(Mount(
            mount_id=int(fields[0]), parent_id=int(fields[1]), root=decode(fields[3]),
            mount_point=decode(fields[4]), options=tuple(fields[5].split(",")),
            fstype=fields[dash + 1], source=decode(fields[dash + 2]),
            super_options=tuple(o for o in fields[dash + 3].split(",") if o),
        ))
    return tuple(mounts)


def read_mountinfo(root: Path, pid: str) -> MountTable | ReadError:
    """The mount table of the mount namespace of process ``pid`` (``self``: the reader's own)
    under ``root``; a table that cannot be read or parsed is a :class:`ReadError`."""
    if pid != "self" and not (pid.isascii() and pid.isdigit()):
        return ReadError(f"not a process id: {pid!r}")
    shown = f"{root / 'proc' / pid / 'mountinfo'}"
    text = read_proc_file(root, (pid, "mountinfo"))
    if text is None:
        return ReadError(f"no such file: {shown}")
    if isinstance(text, ReadError):
        return text
    return parse_mountinfo(text, shown)
