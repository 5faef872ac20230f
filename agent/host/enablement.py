"""Whether a systemd unit is enabled, as ``systemctl is-enabled`` decides it from the files.

``systemctl --root=DIR is-enabled`` does not ask the service manager: it looks for the unit
file along the search path and for the symbolic links ``systemctl enable`` makes. This module
repeats that decision (systemd's ``src/shared/install.c``, ``unit_file_lookup_state``) so an
audit of a mounted image or of a host without a running manager gives the same word:

- the first search folder holding the name (an instance ``a@b.service`` falls back to its
  template ``a@.service``) decides; a link there to ``/dev/null``, or an empty file, is
  ``masked`` (``masked-runtime`` under ``/run``); a link to a unit of another name makes the
  name an ``alias``; a link to a file outside the search path is followed;
- then the ``.wants/``, ``.requires/`` and ``.upholds/`` links of ``/etc/systemd/system`` and
  the folders under ``/run`` (systemctl 252 looks at no other): one named after the unit (or
  an ``Alias=``, or the template with its ``DefaultInstance=``) in ``/etc/systemd/system`` is
  ``enabled``, under ``/run`` ``enabled-runtime``; a link to the unit under another name at the
  top of those folders ``indirect``; a folder's own link of the unit's name to it ``linked``
  (``linked-runtime``);
- none: ``disabled`` when ``[Install]`` names ``WantedBy=``, ``RequiredBy=``, ``UpheldBy=`` or
  ``Alias=``, ``indirect`` when it names ``Also=`` only, else ``static``. Like systemctl, the
  ``[Install]`` lines of drop-ins count.

The files themselves are read by :mod:`agent.host.unitfiles`; only the links and where the
unit was found are looked at here, with links resolved inside the root.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from agent.core.record import record
from agent.host.facts import ReadError
from agent.host.files import resolve
from agent.host.unitfiles import SEARCH_PATH

PERSISTENT_CONFIG = "/etc/systemd/system"
_GENERATORS = ("/run/systemd/generator.early", "/run/systemd/generator",
               "/run/systemd/generator.late")
_TRANSIENT = "/run/systemd/transient"
_LINK_DIRS = (".wants", ".requires", ".upholds")
_RULES = ("WantedBy", "RequiredBy", "UpheldBy", "Alias")

STATES = ("enabled", "enabled-runtime", "linked", "linked-runtime", "alias", "masked",
          "masked-runtime", "static", "indirect", "disabled", "generated", "transient",
          "not-found")
"""The words ``systemctl is-enabled`` prints (``not-found`` where it says no such file)."""


@record
class Install:
    """What ``[Install]`` says, fragment and drop-ins together."""

    rules: bool
    """``WantedBy=``, ``RequiredBy=``, ``UpheldBy=`` or ``Alias=`` is set."""
    also: bool
    """``Also=`` is set."""
    aliases: tuple[str, ...]
    """``Alias=`` names."""
    default_instance: str | None
    """``DefaultInstance=``."""


InstallOf = Callable[[str], "Install | ReadError"]
"""Reads the ``[Install]`` section of the unit of a name."""


@record
class _Found:
    name: str
    path: str
    """Host path of the file (after following a link to a file of the same name)."""
    masked: bool


def _runtime(folder: str) -> bool:
    return folder.startswith("/run/")


def _template(name: str) -> str | None:
    """``getty@tty1.service`` -> ``getty@.service``; None for a name with no instance."""
    prefix, at, rest = name.partition("@")
    if not at or not rest or rest.startswith("."):
        return None
    return f"{prefix}@{rest[rest.rfind('.'):]}" if "." in rest else None


def _discover(base: str, name: str, depth: int = 0) -> _Found | ReadError | None:
    """Where the unit of ``name`` is, as systemctl finds it; None: nowhere."""
    if depth > 8:
        return ReadError(f"too many aliases leading to {name}")
    for candidate in (name, _template(name)):
        if candidate is None:
            continue
        for folder in SEARCH_PATH:
            path = f"{folder}/{candidate}"
            try:
                mode = os.lstat(base + path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                return ReadError(f"{os.strerror(exc.errno or 0).lower()}: {path}")
            if not stat.S_ISLNK(mode.st_mode):
                return _Found(name, path, _null_or_empty(mode))
            target = resolve(base, path, follow=True)
            if isinstance(target, ReadError):
                return target
            try:
                seen = os.stat(base + target)
            except FileNotFoundError:
                seen = None
            except OSError as exc:
                return ReadError(f"{os.strerror(exc.errno or 0).lower()}: {target}")
            if target == "/dev/null" or (seen is not None and _null_or_empty(seen)):
                return _Found(name, path, True)
            target_folder, target_name = target.rsplit("/", 1)
            if seen is None and (target_folder or "/") in SEARCH_PATH:
                return ReadError(f"{path} -> {target}: link has been severed (no such unit)")
            if seen is None:
                return None  # a dangling link: systemctl says no such file, looks no further
            if target_name != candidate:
                aliased = _discover(base, target_name, depth + 1)
                return ReadError(f"{path} -> {target}: no unit") if aliased is None else aliased
            if (target_folder or "/") in SEARCH_PATH:
                # systemctl refuses a link to the same name in another search folder.
                return ReadError(f"{path} -> {target}: too many levels of symbolic links "
                                 "(a unit linked to its own name in the search path)")
            return _Found(name, target, False)
    return None


def _null_or_empty(mode: os.stat_result) -> bool:
    return (stat.S_ISCHR(mode.st_mode) and mode.st_rdev == os.makedev(1, 3)) or (
        stat.S_ISREG(mode.st_mode) and mode.st_size == 0)


def _known(name: str, found: _Found, install: Install) -> bool:
    if name == found.name or name in install.aliases:
        return True
    template = found.name if _template(found.name) is None and "@." in found.name else None
    if template and install.default_instance:
        return name == template.replace("@.", f"@{install.default_instance}.", 1)
    return False


def _links_in(base: str, folder: str, found: _Found, install: Install, *, match_name: bool,
              ignore_same_name: bool) -> tuple[bool, bool]:
    """(symlinks to the unit found, a same-name link found) in one search folder."""
    try:
        entries = sorted(os.scandir(base + folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return False, False
    except OSError:
        return False, False  # systemctl skips folders it cannot open
    for entry in entries:
        if entry.name.endswith(_LINK_DIRS) and entry.is_dir(follow_symlinks=False):
            try:
                links = sorted(os.scandir(entry.path), key=lambda e: e.name)
            except OSError:
                continue
            for link in links:
                if not link.is_symlink():
                    continue
                # In .wants/ and the like the link's name counts, not its target.
                hit = link.name == found.name or _template(link.name) == found.name
                if hit and (not match_name or _known(link.name, found, install)):
                    return True, False
    same = False
    for entry in entries:
        if not entry.is_symlink():
            continue
        try:
            target = os.readlink(entry.path)
        except OSError:
            continue
        dest = target.rstrip("/").rsplit("/", 1)[-1]
        by_dest = dest == found.name
        by_path = not ignore_same_name and entry.name == found.name
        if by_dest and by_path:
            same = True  # the folder's own link of the unit's name to it
        elif (by_dest or by_path) and (not match_name or _known(entry.name, found, install)):
            return True, same
    return False, same


def _in_scope(base: str, found: _Found, install: Install, match_name: bool) -> str | None:
    enabled_runtime = same_runtime = same_config = False
    ignore_same_name = False
    for folder in SEARCH_PATH:
        # Links count in /etc/systemd/system and under /run only: systemctl 252 reports a
        # unit linked in a vendor folder, /etc/systemd/system.control or .attached by its
        # [Install] section alone.
        hit, same = ((False, False) if not (folder == PERSISTENT_CONFIG or _runtime(folder))
                     else _links_in(base, folder, found, install, match_name=match_name,
                                ignore_same_name=ignore_same_name))
        if hit:
            if folder == PERSISTENT_CONFIG:
                return "enabled"
            enabled_runtime = True
        elif same:
            if folder == PERSISTENT_CONFIG:
                same_config = True
            elif _runtime(folder):
                same_runtime = True
        if found.path.startswith(folder + "/"):
            ignore_same_name = True  # links below the unit file are hidden by it
    if enabled_runtime:
        return "enabled-runtime"
    if same_runtime:
        return "linked-runtime"
    return "linked" if same_config else None


def unit_state(root: Path, name: str, install_of: InstallOf) -> str | ReadError:
    """What ``systemctl --root=ROOT is-enabled NAME`` prints (``not-found`` for no unit)."""
    base = os.path.realpath(root).rstrip("/")
    found = _discover(base, name)
    if found is None:
        return "not-found"
    if isinstance(found, ReadError):
        return found
    if found.masked:
        return "masked-runtime" if _runtime(found.path) else "masked"
    if found.path.rsplit("/", 1)[1] != name and _template(name) is None:
        return "alias"
    folder = found.path.rsplit("/", 1)[0]
    if folder in _GENERATORS:
        return "generated"
    if folder == _TRANSIENT:
        return "transient"
    install = install_of(found.path.rsplit("/", 1)[1])  # an instance's: its template's
    if isinstance(install, ReadError):
        return install
    state = _in_scope(base, found, install, match_name=True)
    if state is not None:
        return state
    if _in_scope(base, found, install, match_name=False) is not None:
        return "indirect"
    if install.rules:
        return "disabled"
    return "indirect" if install.also else "static"
