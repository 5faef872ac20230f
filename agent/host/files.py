"""Files named by absolute paths or globs: their type, owner, group and mode, and on request
their SHA-256 and text.

Paths are the host's (``/etc/shadow``) and are resolved inside the root as the host itself
would resolve them: a symbolic link's absolute target starts again from the root and ``..``
never climbs above it, so an audit of a mounted image (``--root /mnt/img``) reads the image,
never the auditor's own ``/etc``. Glob expansion is bounded (:data:`MAX_MATCHES` paths,
:data:`MAX_ENTRIES` entries in any directory listed); past a bound the pattern's result holds
an error instead of a partial list. Nothing here raises for what is found on the host: a file
that cannot be examined is a :class:`ReadError` naming it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import os
import stat
from pathlib import Path

from agent.core.record import record
from agent.host.accounts import IdNames, read_id_names
from agent.host.facts import ReadError
from agent.host.sshd import SshdConfig, parse_sshd_config

MAX_MATCHES = 1000
"""Paths one pattern may match."""
MAX_ENTRIES = 10000
"""Entries of one directory a glob may list."""
MAX_TEXT = 1 << 20
"""Bytes of a file read as text (configuration files are far smaller)."""
MAX_DIGEST = 1 << 30
"""Bytes of a file hashed."""
_MAX_LINKS = 40
"""Symbolic links followed in one resolution, as the kernel's MAXSYMLINKS."""
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | os.O_NOFOLLOW

TYPES = {stat.S_IFREG: "file", stat.S_IFDIR: "directory", stat.S_IFLNK: "symlink",
         stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "char",
         stat.S_IFBLK: "block"}
"""File type bits -> the name policies use."""


@record
class FileRequest:
    """Which files to examine, and how deeply (hashable, so requests merge)."""

    pattern: str
    """Absolute path; ``*``, ``?`` and ``[...]`` glob within one component."""
    follow: bool = True
    """Follow a symbolic link at the end of a matched path (links above it always are)."""
    digest: bool = False
    """Compute the SHA-256 of each regular file."""
    text: bool = False
    """Read each regular file as text."""
    config: str | None = None
    """Also parse each file as this program's configuration, following its includes
    (``sshd``: :mod:`agent.host.sshd`); needs ``text``."""


@record
class FileEntry:
    """One matched path."""

    path: str
    """The path as matched, in the host's namespace."""
    type: str
    """``file``, ``directory``, ``symlink``, ``fifo``, ``socket``, ``char`` or ``block``."""
    mode: int
    """Permission bits with set-id and sticky bits (``st_mode & 0o7777``)."""
    uid: int
    """Owner."""
    gid: int
    """Group."""
    size: int
    """Bytes."""
    link: str | None
    """The target of ``path`` when ``path`` itself is a symbolic link."""
    resolved: str
    """The path examined: ``path`` with every symbolic link followed when following, else
    with those above its last component followed."""
    followed: bool
    """Whether a symbolic link at the end was followed."""
    sha256: str | ReadError | None = None
    """Hex digest, when asked for and the file is regular."""
    text: str | ReadError | None = None
    """Contents (invalid UTF-8 replaced), when asked for and the file is regular."""
    config: SshdConfig | ReadError | None = None
    """The configuration the file starts, includes followed, when asked for."""


@record
class FileSet:
    """What one :class:`FileRequest` found, with the names of the ids it found."""

    entries: tuple[FileEntry | ReadError, ...]
    """One per matched path, sorted; empty when nothing matched."""
    users: IdNames | ReadError
    """``etc/passwd`` of the root."""
    groups: IdNames | ReadError
    """``etc/group`` of the root."""


def read_files(root: Path, request: FileRequest, users: IdNames | ReadError | None = None,
               groups: IdNames | ReadError | None = None) -> FileSet:
    """Examine what ``request.pattern`` matches under ``root`` (names read unless given)."""
    base = os.path.realpath(root).rstrip("/")
    entries: list[FileEntry | ReadError] = []
    for path in _expand(base, request.pattern):
        entries.append(path if isinstance(path, ReadError) else _examine(base, path, request))
    return FileSet(tuple(entries),
                   users if users is not None else read_id_names(root, "passwd"),
                   groups if groups is not None else read_id_names(root, "group"))


def _reason(exc: OSError, path: str) -> ReadError:
    return ReadError(f"{os.strerror(exc.errno).lower() if exc.errno else exc}: {path}")


def resolve(base: str, path: str, follow: bool) -> str | ReadError:
    """``path`` (absolute, on the host) with symbolic links followed inside ``base`` (the
    root, ``""`` for ``/``), the last one only when ``follow``; a missing component ends the
    walk with the rest appended unresolved (examining it then says it does not exist)."""
    todo = [p for p in path.split("/") if p]
    done = ""
    links = 0
    while todo:
        name = todo.pop(0)
        if name == ".":
            continue
        if name == "..":
            done = done.rsplit("/", 1)[0]  # "" stays "": nothing is above the root
            continue
        candidate = f"{done}/{name}"
        if not todo and not follow:
            return candidate
        try:
            mode = os.lstat(base + candidate).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return "/".join([candidate, *todo])
        except OSError as exc:
            return _reason(exc, candidate)
        if not stat.S_ISLNK(mode):
            done = candidate
            continue
        links += 1
        if links > _MAX_LINKS:
            return ReadError(f"too many levels of symbolic links: {path}")
        try:
            target = os.readlink(base + candidate)
        except OSError as exc:
            return _reason(exc, candidate)
        if target.startswith("/"):
            done = ""
        todo[:0] = [p for p in target.split("/") if p]
    return done or "/"


def _expand(base: str, pattern: str) -> list[str | ReadError]:
    """The host paths ``pattern`` matches (literal components are not checked here)."""
    parts = [p for p in pattern.split("/") if p]
    frontier = [""]
    for part in parts:
        if not any(c in part for c in "*?["):
            frontier = [f"{prefix}/{part}" for prefix in frontier]
            continue
        following: list[str] = []
        for prefix in frontier:
            directory = resolve(base, prefix or "/", True)
            if isinstance(directory, ReadError):
                return [directory]
            try:
                with os.scandir(base + directory) as it:
                    names = []
                    for entry in it:
                        names.append(entry.name)
                        if len(names) > MAX_ENTRIES:
                            return [ReadError(f"more than {MAX_ENTRIES} entries in "
                                              f"{prefix or '/'}: {pattern} is not expanded")]
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                return [_reason(exc, prefix or "/")]
            # As the shell: a leading '.' is matched only by a pattern that starts with one.
            following += [f"{prefix}/{name}" for name in sorted(names)
                          if fnmatch.fnmatchcase(name, part)
                          and (part.startswith(".") or not name.startswith("."))]
            if len(following) > MAX_MATCHES:
                return [ReadError(f"{pattern} matches more than {MAX_MATCHES} paths")]
        frontier = following
    found: list[str | ReadError] = []
    for path in frontier:
        where = _unfollowed(base, path)
        try:
            os.lstat(base + where)
        except (FileNotFoundError, NotADirectoryError):
            continue  # a literal component that does not exist: no match
        except OSError:
            pass  # examined below, which says why
        found.append(path or "/")
    return found


def _unfollowed(base: str, path: str) -> str:
    """``path`` with the links above its last component followed (the link itself kept)."""
    resolved = resolve(base, path, False)
    return resolved if isinstance(resolved, str) else path


def _examine(base: str, path: str, request: FileRequest) -> FileEntry | ReadError:
    resolved = resolve(base, path, request.follow)
    if isinstance(resolved, ReadError):
        return resolved
    here = _unfollowed(base, path)
    try:
        link = os.readlink(base + here) if os.path.islink(base + here) else None
        st = os.lstat(base + resolved)
    except (FileNotFoundError, NotADirectoryError):
        if resolved != here:
            return ReadError(f"dangling symbolic link: {path} -> {resolved}")
        return ReadError(f"vanished while examined: {path}")
    except OSError as exc:
        return _reason(exc, path)
    kind = TYPES.get(stat.S_IFMT(st.st_mode), "unknown")
    entry = FileEntry(path=path, type=kind, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid,
                      gid=st.st_gid, size=st.st_size, link=link, resolved=resolved,
                      followed=link is not None and request.follow)
    if not (request.digest or request.text):
        return entry
    if kind != "file":
        why = ReadError(f"not a regular file ({kind}): {path}")
        return dataclasses.replace(entry, sha256=why if request.digest else None,
                                   text=why if request.text else None,
                                   config=why if request.config else None)
    digest, text = _contents(base + resolved, path, st, request)
    config: SshdConfig | ReadError | None = None
    if request.config == "sshd":
        config = parse_sshd_config(path, text, lambda pattern: _included(base, pattern)) \
            if isinstance(text, str) else text or ReadError(f"not read as text: {path}")
    return dataclasses.replace(entry, sha256=digest, text=text, config=config)


def _included(base: str, pattern: str) -> list[tuple[str, str]] | ReadError:
    """(path, text) of each file ``pattern`` matches, for a configuration's include: one
    that cannot be read as text is an error, as it is for the program that includes it."""
    found: list[tuple[str, str]] = []
    for path in _expand(base, pattern):
        if isinstance(path, ReadError):
            return path
        entry = _examine(base, path, FileRequest(path, text=True))
        if isinstance(entry, ReadError):
            return entry
        if not isinstance(entry.text, str):
            return entry.text or ReadError(f"not read: {path}")
        found.append((path, entry.text))
    return found


def _contents(real: str, shown: str, seen: os.stat_result, request: FileRequest
              ) -> tuple[str | ReadError | None, str | ReadError | None]:
    """The SHA-256 and text asked for, from one open of the file ``stat`` looked at."""
    try:
        fd = os.open(real, _OPEN_FLAGS)
    except OSError as exc:
        error = _reason(exc, shown)
        return (error if request.digest else None), (error if request.text else None)
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino) or not stat.S_ISREG(st.st_mode):
            error = ReadError(f"changed while read: {shown}")
            return (error if request.digest else None), (error if request.text else None)
        hasher = hashlib.sha256()
        kept: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1 << 16):
            size += len(chunk)
            if size > MAX_DIGEST:
                error = ReadError(f"larger than {MAX_DIGEST} bytes: {shown}")
                return error if request.digest else None, error if request.text else None
            hasher.update(chunk)
            if request.text and size <= MAX_TEXT:
                kept.append(chunk)
            elif not request.digest:
                break
    except OSError as exc:
        error = _reason(exc, shown)
        return (error if request.digest else None), (error if request.text else None)
    finally:
        os.close(fd)
    digest = hasher.hexdigest() if request.digest else None
    text: str | ReadError | None = None
    if request.text:
        text = (ReadError(f"larger than {MAX_TEXT} bytes to read as text: {shown}")
                if size > MAX_TEXT else b"".join(kept).decode("utf-8", "replace"))
    return digest, text
