"""The systemd units a name or glob selects, each with its files merged as systemd merges them
(:mod:`agent.host.unitfiles`) and its enablement as ``systemctl is-enabled`` says it
(:mod:`agent.host.enablement`).

A glob (``*``, ``?``, ``[...]``) is matched against the names of the unit files in the search
path; a plain name is always read, so a unit that does not exist is there to be judged
("not-found"). Nothing here raises for what is found on the host: a unit systemd would refuse
or that cannot be read is a :class:`ReadError` naming ``file:line:col``.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from agent.core.record import record
from agent.host.enablement import Install, unit_state
from agent.host.facts import ReadError
from agent.host.unitfiles import UnitFileError, UnitFiles, load_unit, load_units, unit_names

_GLOB = frozenset("*?[")


@record
class UnitReading:
    """One selected unit."""

    name: str
    """The unit's name as selected."""
    files: UnitFiles | ReadError
    """Its fragment, drop-ins and assignments, or why they cannot be read."""
    state: str | ReadError
    """The word ``systemctl is-enabled`` prints (``not-found`` for no unit file)."""


@record
class UnitSet:
    """What one name or glob selected."""

    units: tuple[UnitReading, ...]
    """Sorted by name; empty when a glob matches nothing."""
    error: ReadError | None = None
    """Why the unit names could not be listed (then ``units`` is empty)."""


def _problem(exc: UnitFileError) -> ReadError:
    where = exc.path if exc.line == 0 else f"{exc.path}:{exc.line}:{exc.col}"
    return ReadError(f"{where}: {exc.message}")


def install_of(files: UnitFiles) -> Install:
    """The ``[Install]`` section as ``systemctl enable`` reads it (drop-ins included)."""
    aliases = tuple(word for value in files.values("Install", "Alias") for word in value.split())
    return Install(
        rules=bool(aliases) or any(files.values("Install", key)
                                   for key in ("WantedBy", "RequiredBy", "UpheldBy")),
        also=bool(files.values("Install", "Also")), aliases=aliases,
        default_instance=files.last("Install", "DefaultInstance") or None)


def read_unit(root: Path, name: str,
              loaded: dict[str, UnitFiles | UnitFileError] | None = None) -> UnitReading:
    """One unit's files and enablement (``loaded``: units already read, by name)."""
    cache: dict[str, UnitFiles | UnitFileError] = loaded if loaded is not None else {}

    def load(unit: str) -> UnitFiles | ReadError:
        if unit not in cache:
            try:
                cache[unit] = load_unit(root, unit)
            except UnitFileError as exc:
                cache[unit] = exc
        found = cache[unit]
        return _problem(found) if isinstance(found, UnitFileError) else found

    def install(unit: str) -> Install | ReadError:
        files = load(unit)
        return files if isinstance(files, ReadError) else install_of(files)

    return UnitReading(name, load(name), unit_state(root, name, install))


def read_units(root: Path, pattern: str,
               loaded: dict[str, UnitFiles | UnitFileError] | None = None) -> UnitSet:
    """The units ``pattern`` (a unit name or glob) selects under ``root`` (``loaded``: units
    already read, by name, shared with the other patterns of one snapshot)."""
    cache: dict[str, UnitFiles | UnitFileError] = loaded if loaded is not None else {}
    if not _GLOB & set(pattern):
        return UnitSet((read_unit(root, pattern, cache),))
    try:
        names = [name for name in unit_names(root) if fnmatch.fnmatchcase(name, pattern)]
        # the search path listed once for them all
        cache.update(load_units(root, [name for name in names if name not in cache]))
    except UnitFileError as exc:
        return UnitSet((), _problem(exc))
    return UnitSet(tuple(read_unit(root, name, cache) for name in sorted(names)))
