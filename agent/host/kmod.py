"""Kernel modules: which are loaded, which are built in, and the modprobe configuration.

Loaded modules come from ``/proc/modules`` (what ``lsmod`` prints); a kernel built without
module support has no such file and cannot load any module, which :attr:`Modules.support`
records. Built-in modules come from ``lib/modules/RELEASE/modules.builtin`` for the running
release (``proc/sys/kernel/osrelease`` under the root, ``uname -r`` on a live host).

The configuration is read as kmod merges it (what ``modprobe --showconfig`` prints): every
``*.conf`` file of the folders in :data:`CONFIG_DIRS`, ordered by file name across folders, a
name already seen in an earlier folder hiding the later ones; lines are split as kmod splits
them (a trailing backslash continues a line, a first word starting with ``#`` is a comment).
"""

from __future__ import annotations

from pathlib import Path

from agent.core.record import record
from agent.host import procfs
from agent.host.facts import ReadError

CONFIG_DIRS = ("etc/modprobe.d", "run/modprobe.d", "usr/local/lib/modprobe.d",
               "usr/lib/modprobe.d", "lib/modprobe.d")
"""Where kmod reads its configuration, first folder first (libkmod's default paths)."""

RULE_COMMANDS = frozenset({"install", "blacklist"})
"""The modprobe.d commands that can keep a module from loading: the ones kept."""


@record
class ModprobeRule:
    """One ``install`` or ``blacklist`` line of the merged configuration."""

    command: str
    """``install`` or ``blacklist``."""
    module: str
    """Module name, ``-`` read as ``_`` as kmod does."""
    argument: str
    """The shell command of an ``install`` line; empty for ``blacklist``."""
    file: str
    """The file it is written in (the root's path, not the host's)."""
    line: int
    """Its line number (the first line of a continued line)."""


@record
class Modules:
    """What the kernel has loaded and built in, and the modprobe rules."""

    support: bool
    """Whether the kernel loads modules at all (``/proc/modules`` exists)."""
    loaded: frozenset[str] | ReadError
    """Names in ``/proc/modules`` (empty without module support)."""
    builtin: frozenset[str] | ReadError
    """Names from ``modules.builtin`` of the running release."""
    builtin_file: str
    """Which ``modules.builtin`` that is (or would be)."""
    rules: tuple[ModprobeRule, ...] | ReadError
    """``install`` and ``blacklist`` lines in kmod's order."""
    config_files: tuple[str, ...]
    """The configuration files read, in kmod's order."""


def module_name(name: str) -> str:
    """kmod's spelling of a module name: ``usb-storage`` is ``usb_storage``."""
    return name.replace("-", "_")


def read_modules(root: Path) -> Modules:
    """Read the module state of the host under ``root``."""
    text = procfs.read_file(root, "proc/modules")
    loaded: frozenset[str] | ReadError
    if text is None:
        support, loaded = False, frozenset()
    elif isinstance(text, ReadError):
        support, loaded = True, text
    else:
        support = True
        loaded = frozenset(line.split()[0] for line in text.splitlines() if line.split())
    builtin_file, builtin = _builtin(root)
    files, rules = read_config(root)
    return Modules(support, loaded, builtin, builtin_file, rules, files)


def _builtin(root: Path) -> tuple[str, frozenset[str] | ReadError]:
    release = procfs.read_file(root, "proc/sys/kernel/osrelease")
    if not isinstance(release, str) or not release.strip():
        reason = release.reason if isinstance(release, ReadError) else "no kernel release"
        return "lib/modules/RELEASE/modules.builtin", ReadError(
            f"the running kernel's release is unknown ({reason})")
    relative = f"lib/modules/{release.strip()}/modules.builtin"
    shown = str(root / relative)
    text = procfs.read_file(root, relative)
    if text is None:
        return shown, ReadError(f"no such file: {shown}")
    if isinstance(text, ReadError):
        return shown, text
    # kernel/fs/cramfs/cramfs.ko -> cramfs (kbuild writes names with '-' as they are)
    names = {module_name(Path(line.strip()).name.split(".ko", 1)[0])
             for line in text.splitlines() if line.strip()}
    return shown, frozenset(names)


def read_config(root: Path) -> tuple[tuple[str, ...], tuple[ModprobeRule, ...] | ReadError]:
    """The configuration files in kmod's order and their ``install``/``blacklist`` lines."""
    chosen: dict[str, str] = {}
    for folder in CONFIG_DIRS:
        names = procfs.list_dir(root, folder)
        if isinstance(names, ReadError):
            return (), names
        for name in names or ():
            # kmod: *.conf only, no hidden files; the first folder holding a name wins
            if name.endswith(".conf") and not name.startswith(".") and name not in chosen:
                chosen[name] = f"{folder}/{name}"
    files = [chosen[name] for name in sorted(chosen)]
    shown = tuple(str(root / relative) for relative in files)
    rules: list[ModprobeRule] = []
    for relative in files:
        text = procfs.read_file(root, relative)
        if isinstance(text, ReadError):
            return shown, text
        if text is None:  # vanished, or a dangling link: kmod skips it too
            continue
        rules.extend(parse_config(text, str(root / relative)))
    return shown, tuple(rules)


def parse_config(text: str, file: str) -> list[ModprobeRule]:
    """The ``install`` and ``blacklist`` lines of one modprobe.d file."""
    rules: list[ModprobeRule] = []
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        first = index + 1
        line = lines[index]
        while line.endswith("\\") and index + 1 < len(lines):
            index += 1
            line = line[:-1] + lines[index]
        index += 1
        words = line.split(None, 2)
        if not words or words[0].startswith("#") or words[0] not in RULE_COMMANDS:
            continue
        if len(words) < 2:
            continue  # kmod reports a syntax error and ignores the line
        command, module = words[0], module_name(words[1])
        if command == "install":
            if len(words) < 3:
                continue
            rules.append(ModprobeRule(command, module, words[2].strip(), file, first))
        else:
            rules.append(ModprobeRule(command, module, "", file, first))
    return rules
