"""Readers for ``/proc/sys``, ``/sys``, ``/proc/cmdline`` and the host's identity files.

Every reader takes the host root (``/`` live, a fixture tree in tests) and never raises for
anything found on the host: a value that cannot be read becomes a :class:`ReadError` saying why,
and a key that does not exist is simply absent from the result.
"""

from __future__ import annotations

import fnmatch
import os
import shlex
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from agent.host.cmdline import KernelCmdline, parse_cmdline
from agent.host.facts import HostFacts, ReadError

_MAX_BYTES = 1 << 20
"""Cap on one file: kernel values are tiny, so anything larger is not one."""

# O_NONBLOCK: opening a FIFO that slipped past the stat check must not wait for a writer.
# O_NOFOLLOW: paths are resolved and confined before opening; a symlink now is a swap.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | os.O_NOFOLLOW

_MISSING = (FileNotFoundError, NotADirectoryError)
"""What means "not there" rather than "could not read"."""

Values = dict[str, str | ReadError]


def read_sysctl(root: Path, pattern: str) -> Values:
    """Read the sysctl ``pattern`` under ``root/proc/sys``.

    As in sysctl(8), a key containing ``/`` is a path (``net/ipv4/conf/eth0.100/rp_filter``),
    otherwise dots separate its components (``kernel.kptr_restrict``). ``*``, ``?`` and
    ``[...]`` glob within one component (``net.ipv4.conf.*.rp_filter``). Keys come back dotted
    unless a component contains a dot, then slashed. Values keep the kernel's text minus
    trailing newlines.
    """
    parts = pattern.split("/") if "/" in pattern else pattern.split(".")
    return _read_tree(root / "proc" / "sys", pattern, parts, _sysctl_key)


def read_sysfs(root: Path, pattern: str) -> Values:
    """Read ``pattern``, a path relative to ``/sys`` (globs per component), under ``root/sys``."""
    return _read_tree(root / "sys", pattern, pattern.split("/"), "/".join)


def read_cmdline(root: Path) -> KernelCmdline | ReadError:
    """Parse ``root/proc/cmdline``."""
    text = _read_file(root / "proc", ("cmdline",))
    if text is None:
        return ReadError(f"no such file: {root / 'proc' / 'cmdline'}")
    if isinstance(text, ReadError):
        return text
    return parse_cmdline(text)


def read_facts(root: Path) -> HostFacts:
    """Identity of the host under ``root``; unreadable fields are ``None``, hostname ``unknown``."""
    arch = _sysctl_fact(root, "kernel.arch")
    if arch is None and _is_live(root):
        arch = os.uname().machine  # a kernel without kernel.arch: ask the running one
    return HostFacts(
        hostname=_sysctl_fact(root, "kernel.hostname") or "unknown",
        kernel_release=_sysctl_fact(root, "kernel.osrelease"),
        kernel_version=_sysctl_fact(root, "kernel.version"),
        boot_id=_sysctl_fact(root, "kernel.random.boot_id"),
        machine_id=_text_fact(_read_file(root, ("etc", "machine-id"))),
        arch=arch,
        os_name=_os_name(root),
    )


def read_file(root: Path, relative: str) -> str | ReadError | None:
    """The text of the regular file ``relative`` (slash-separated) under ``root``, symlinks
    resolved but confined to ``root``; ``None`` when it does not exist."""
    return _read_file(root, relative.split("/"))


def list_dir(root: Path, relative: str) -> list[str] | ReadError | None:
    """Sorted entry names of the folder ``relative`` under ``root`` (confined as
    :func:`read_file`); ``None`` when it does not exist."""
    try:
        real_root = Path(os.path.realpath(root, strict=True))
    except (OSError, ValueError):
        return None
    shown = root.joinpath(*relative.split("/"))
    real = _confine(real_root.joinpath(*relative.split("/")), real_root)
    if isinstance(real, ReadError):
        return real
    try:
        return sorted(os.listdir(real))
    except _MISSING:
        return None
    except OSError as exc:
        return _error(exc, shown)


# --- identity helpers -------------------------------------------------------------------------


def _is_live(root: Path) -> bool:
    return os.path.realpath(root) == "/"


def _text_fact(value: str | ReadError | None) -> str | None:
    """A stripped, non-empty value or ``None``: an empty identity is no identity."""
    return (value.strip() or None) if isinstance(value, str) else None


def _sysctl_fact(root: Path, key: str) -> str | None:
    return _text_fact(read_sysctl(root, key).get(key))


def _os_name(root: Path) -> str | None:
    """``PRETTY_NAME`` from os-release(5), which says to fall back to ``usr/lib/os-release``."""
    for parts in (("etc", "os-release"), ("usr", "lib", "os-release")):
        text = _read_file(root, parts)
        if isinstance(text, str):
            return _os_release_field(text, "PRETTY_NAME")
    return None


def _os_release_field(text: str, field: str) -> str | None:
    value: str | None = None
    for line in text.splitlines():
        name, sep, raw = line.strip().partition("=")
        if sep and name == field:
            try:  # values use shell quoting
                words = shlex.split(raw)
            except ValueError:
                words = [raw.strip("\"'")]
            value = " ".join(words)  # the last assignment wins, as in a shell
    return value or None


# --- the shared walker ------------------------------------------------------------------------


def _sysctl_key(parts: Sequence[str]) -> str:
    # Dotted only when that is unambiguous; `eth0.100` forces the slashed form.
    return "/".join(parts) if any("." in part for part in parts) else ".".join(parts)


def _invalid(pattern: str, parts: Sequence[str]) -> str | None:
    """Why ``pattern`` may not be looked up, if it may not."""
    if pattern.startswith("/"):
        return "absolute path not allowed"
    if "\0" in pattern:
        return "NUL byte not allowed"
    if any(part in ("", ".", "..") for part in parts):
        return "empty, '.' or '..' component not allowed"
    return None


def _is_glob(part: str) -> bool:
    # fnmatch semantics, as the linter validates them (agent.policy.globs): * ? and [...].
    return any(c in part for c in "*?[")


def _confine(path: Path, base: Path) -> Path | ReadError:
    """``path`` with symlinks resolved, or an error if that leaves ``base`` (a resolved dir)."""
    real = Path(os.path.realpath(path))  # unlike Path.resolve(), never raises on a loop
    if not real.is_relative_to(base):
        return ReadError(f"resolves outside {base}: {path} -> {real}")
    return real


def _walk(
    base: Path, real_base: Path, parts: Sequence[str]
) -> Iterator[tuple[tuple[str, ...], Path, Path | ReadError]]:
    """Every ``(components, path, resolved path or error)`` that ``parts`` names under ``base``.

    Walks breadth-first one component at a time, listing a directory only for a glob component.
    An error at an intermediate directory ends that branch with the error.
    """
    frontier: list[tuple[tuple[str, ...], Path, Path]] = [((), base, real_base)]
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        following: list[tuple[tuple[str, ...], Path, Path]] = []
        for names, path, real in frontier:
            if _is_glob(part):
                try:
                    entries = sorted(entry.name for entry in real.iterdir())
                except _MISSING:
                    continue
                except OSError as exc:
                    yield names, path, _error(exc, path)
                    continue
                matches = [name for name in entries if fnmatch.fnmatchcase(name, part)]
            else:
                matches = [part]
            for name in matches:
                child = path / name
                confined = _confine(real / name, real_base)
                if last or isinstance(confined, ReadError):
                    yield (*names, name), child, confined
                else:
                    following.append(((*names, name), child, confined))
        frontier = following


def _read_tree(
    base: Path, pattern: str, parts: Sequence[str], key: Callable[[Sequence[str]], str]
) -> Values:
    problem = _invalid(pattern, parts)
    if problem:
        return {pattern: ReadError(f"{problem}: {pattern!r}")}
    try:
        real_base = Path(os.path.realpath(base, strict=True))
    except (OSError, ValueError):
        return {}  # no proc/sys (or sys) in this tree at all
    found: Values = {}
    for names, path, real in _walk(base, real_base, parts):
        value = real if isinstance(real, ReadError) else _read_regular(real, path)
        if value is not None:
            found[key(names) or pattern] = value  # no names: base itself was unlistable
    return dict(sorted(found.items()))


def _read_file(base: Path, parts: Sequence[str]) -> str | ReadError | None:
    """One literal file under ``base``, confined to it; ``None`` if it does not exist."""
    try:
        real_base = Path(os.path.realpath(base, strict=True))
    except (OSError, ValueError):
        return None
    real = _confine(real_base.joinpath(*parts), real_base)
    shown = base.joinpath(*parts)
    return real if isinstance(real, ReadError) else _read_regular(real, shown)


def _read_regular(real: Path, shown: Path) -> str | ReadError | None:
    """Text of the regular file ``real`` (errors name ``shown``); ``None`` if it does not exist.

    Only regular files are opened, so a device or FIFO cannot block or change state. Proc and sys
    files report size 0, so read until EOF rather than trusting the size.
    """
    try:
        mode = real.stat().st_mode
        if stat.S_ISDIR(mode):
            return ReadError(f"is a directory: {shown}")
        if not stat.S_ISREG(mode):
            return ReadError(f"not a regular file: {shown}")
        fd = os.open(real, _OPEN_FLAGS)
    except _MISSING:
        return None
    except OSError as exc:
        return _error(exc, shown)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ReadError(f"not a regular file: {shown}")
        chunks: list[bytes] = []
        size = 0
        while size <= _MAX_BYTES:
            chunk = os.read(fd, _MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        return _error(exc, shown)
    finally:
        os.close(fd)
    if size > _MAX_BYTES:
        return ReadError(f"larger than {_MAX_BYTES} bytes: {shown}")
    return b"".join(chunks).decode("utf-8", "replace").rstrip("\n")


def _error(exc: OSError, path: Path) -> ReadError:
    """``permission denied: /proc/sys/...``: strerror in lower case, then the path."""
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    return ReadError(f"{reason}: {path}")


def read_proc_file(root: Path, parts: Sequence[str]) -> str | ReadError | None:
    """One file under ``root/proc`` (``("self", "mountinfo")``), confined to it and read as
    the readers above read theirs; ``None`` if it does not exist."""
    return _read_file(root / "proc", parts)
