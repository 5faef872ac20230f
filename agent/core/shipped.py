"""The files hostguard ships beside its code: the policies (with their seccomp profiles under
``seccomp/``), the sample daemon configuration and the systemd units.

The repository's top-level ``policies/`` and ``packaging/`` folders are their only copy. A wheel
carries them inside the package as ``agent/shipped/policies`` and ``agent/shipped/packaging``
(pyproject.toml maps those data packages onto the two folders); run from a checkout, including
the editable install the Makefile makes (which imports ``agent`` from the checkout), they are
read where they are.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
"""The ``agent`` package folder."""

SYSTEM_POLICIES = Path("/etc/hostguard/policies")
"""Where ``hostguard install-service`` puts the policies a host is held to."""
SYSTEM_CONFIG = Path("/etc/hostguard/hostguard.yaml")
"""Where ``hostguard install-service`` puts the daemon's configuration."""


class NotShipped(LookupError):
    """The shipped files are not where this installation should have them."""


def folder(name: str) -> Path:
    """The shipped folder ``name`` (``policies`` or ``packaging``)."""
    packaged = _PACKAGE / "shipped" / name
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / name).is_dir():
        return checkout / name
    raise NotShipped(f"hostguard's shipped {name} are missing: neither {packaged} nor "
                     f"{checkout / name} (a checkout) exists; reinstall hostguard")


def policies() -> Path:
    """The shipped policies folder (``seccomp/`` holds the profiles they name)."""
    return folder("policies")


def packaging() -> Path:
    """The shipped packaging folder: ``hostguard.yaml``, ``systemd/*``."""
    return folder("packaging")


def policy_files() -> list[Path]:
    """Every shipped policy and profile file, sorted by its path below :func:`policies`."""
    top = policies()
    # As ``hostguard lint`` searches a folder: *.yaml and *.yml, hidden names left out.
    found = (p for p in top.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(top).parts))
    return sorted(found, key=lambda p: p.relative_to(top).parts)


def default_policies(system: Path = SYSTEM_POLICIES) -> Path:
    """What an audit named no policy uses: ``system`` when it exists, else the shipped ones."""
    return system if system.is_dir() else policies()
