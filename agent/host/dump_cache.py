"""The seccomp filter stacks already read, so an unchanged thread is never stopped twice.

:func:`agent.host.seccomp_dump.dump_filters` stops a thread to read its filters; a stack is only
ever appended to, so (tid, start time, filter count) names it, and :class:`DumpCache` keeps what
was read under that key: in memory for the caller's lifetime (the daemon keeps one) and, with a
path, in a JSON file that outlives the process but not the boot::

    cache = DumpCache(Path("/var/lib/hostguard/seccomp-filters.json"))  # or DumpCache()
    dump = dump_filters(tid, cache=cache)     # stops the thread at most once per stack
    cache.retain(alive)                       # now and then: forget threads that exited
    cache.save()                              # atomically, mode 0600
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from agent.core.atomic import write_atomic
from agent.core.digest import sha256_hex
from agent.host.seccomp_dump import BPF_MAXINSNS, INSN_SIZE, CacheKey, read_boot_id

CACHE_FORMAT = "hostguard/seccomp-dump-cache/v1"
_MAX_CACHE_FILE = 64 << 20


class DumpCache:
    """Filter stacks already read, so an unchanged thread is never stopped twice.

    Owned by the caller (the daemon keeps one for its lifetime). With a ``path`` it is loaded
    from and :meth:`save`\\ d to that JSON file, written atomically with mode 0600. The file is
    ignored (and :attr:`ignored` says why) unless it is a regular file owned by this user, not
    accessible to others, well-formed, written during this boot (``boot_id``), and every
    filter's bytes match their sha256 and look like a program. Thread-safe.

    JSON: ``{"format", "boot_id", "entries": [{"tid", "start_time", "filters": [sha256...]}],
    "filters": {sha256: base64}}`` (threads sharing a filter share one copy).
    """

    def __init__(self, path: Path | None = None, *, boot_id: str | None = None,
                 max_entries: int = 65536) -> None:
        self.path = path
        self.boot_id = boot_id if boot_id is not None else read_boot_id()
        """Entries from a file written during another boot are ignored."""
        self.max_entries = max_entries
        self.ignored: str | None = None
        """Why the file was not loaded (None when it was, or there was none)."""
        self._entries: OrderedDict[CacheKey, tuple[bytes, ...]] = OrderedDict()
        self._pool: dict[bytes, bytes] = {}
        self._dirty = False
        self._lock = threading.Lock()
        if path is not None:
            self._load(path)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> tuple[bytes, ...] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: CacheKey, filters: tuple[bytes, ...]) -> None:
        with self._lock:
            self._entries[key] = tuple(self._pool.setdefault(f, f) for f in filters)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            self._dirty = True

    def retain(self, alive: Iterable[tuple[int, int]]) -> None:
        """Keep only entries of the (tid, start time) pairs in ``alive``."""
        keep = set(alive)
        with self._lock:
            for key in [k for k in self._entries if (k[0], k[1]) not in keep]:
                del self._entries[key]
                self._dirty = True
            used = {f for stack in self._entries.values() for f in stack}
            self._pool = {f: f for f in used}

    def save(self) -> None:
        """Write the file (when there is a path, a boot id, and something changed)."""
        if self.path is None or self.boot_id is None:
            return
        with self._lock:
            if not self._dirty:
                return
            blobs: dict[str, str] = {}
            entries = []
            for (tid, start, _), stack in sorted(self._entries.items()):
                names = []
                for program in stack:
                    name = sha256_hex(program)
                    blobs.setdefault(name, base64.b64encode(program).decode("ascii"))
                    names.append(name)
                entries.append({"tid": tid, "start_time": start, "filters": names})
            doc = {"format": CACHE_FORMAT, "boot_id": self.boot_id, "entries": entries,
                   "filters": blobs}
            write_atomic(self.path, json.dumps(doc, separators=(",", ":")).encode(), 0o600)
            self._dirty = False

    def _load(self, path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.ignored = f"{path}: {exc.strerror}"
            return
        try:
            info = os.fstat(fd)
            problem = _untrusted(info)
            if problem is not None:
                self.ignored = f"{path}: {problem}"
                return
            with os.fdopen(os.dup(fd), "rb") as handle:
                raw = handle.read(_MAX_CACHE_FILE + 1)
        except OSError as exc:
            self.ignored = f"{path}: {exc.strerror}"
            return
        finally:
            os.close(fd)
        try:
            boot, entries = _parse_cache(raw)
        except (ValueError, TypeError) as exc:
            self.ignored = f"{path}: corrupt ({exc})"
            return
        if self.boot_id is None or boot != self.boot_id:
            self.ignored = f"{path}: written during another boot"
            return
        for key, stack in entries.items():
            self._entries[key] = tuple(self._pool.setdefault(f, f) for f in stack)


def _untrusted(info: os.stat_result) -> str | None:
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_uid != os.geteuid():
        return f"owned by uid {info.st_uid}, not by this user"
    if info.st_mode & 0o077:
        return f"mode {stat.S_IMODE(info.st_mode):04o} gives others access (expected 0600)"
    if info.st_size > _MAX_CACHE_FILE:
        return f"{info.st_size} bytes, too big for a cache"
    return None


def _parse_cache(raw: bytes) -> tuple[str, dict[CacheKey, tuple[bytes, ...]]]:
    """Validate everything; ValueError/TypeError on anything off (the file is then ignored)."""
    if len(raw) > _MAX_CACHE_FILE:
        raise ValueError("too big")
    doc = json.loads(raw)
    if not isinstance(doc, dict) or doc.get("format") != CACHE_FORMAT:
        raise ValueError("not a hostguard seccomp dump cache")
    boot, entries, blobs = doc.get("boot_id"), doc.get("entries"), doc.get("filters")
    if not isinstance(boot, str) or not isinstance(entries, list) or not isinstance(blobs, dict):
        raise ValueError("boot_id, entries or filters missing")
    programs: dict[str, bytes] = {}
    for name, text in blobs.items():
        if not isinstance(text, str):
            raise TypeError(f"filter {name[:16]}: not a string")
        try:
            program = base64.b64decode(text, validate=True)
        except binascii.Error:
            raise ValueError(f"filter {name[:16]}: bad base64") from None
        if sha256_hex(program) != name:
            raise ValueError(f"filter {name[:16]}: sha256 does not match its bytes")
        if not program or len(program) % INSN_SIZE or len(program) > BPF_MAXINSNS * INSN_SIZE:
            raise ValueError(f"filter {name[:16]}: {len(program)} bytes is not a program")
        programs[name] = program
    out: dict[CacheKey, tuple[bytes, ...]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise TypeError("entry is not an object")
        tid, start, names = entry.get("tid"), entry.get("start_time"), entry.get("filters")
        if (not isinstance(tid, int) or not isinstance(start, int) or isinstance(tid, bool)
                or isinstance(start, bool) or tid <= 0 or start < 0
                or not isinstance(names, list) or not names):
            raise ValueError("entry needs tid, start_time and a non-empty filters list")
        if not all(isinstance(n, str) and n in programs for n in names):
            raise ValueError(f"entry for thread {tid} names a filter that is not stored")
        out[(tid, start, len(names))] = tuple(programs[n] for n in names)
    return boot, out
