"""``kmod``: kernel modules that must not be loaded, must be disabled for loading, or module
loading switched off altogether.

Passes::

    - id: MOD-001
      kind: kmod
      spec: {not_loaded: [cramfs, usb-storage], disabled: [cramfs, usb-storage]}
      # host: neither in /proc/modules nor modules.builtin;
      # /etc/modprobe.d/cis.conf: "install cramfs /bin/false", "blacklist usb-storage"

Fails::

    - id: MOD-002
      kind: kmod
      spec: {disabled: [dccp], loading_disabled: true}
      # host: no modprobe.d line for dccp; kernel.modules_disabled = 0

``disabled`` reads the modprobe configuration as kmod merges it (:mod:`agent.host.kmod`): the
first ``install`` line for a module is the one modprobe runs, and it disables the module when it
runs ``/bin/false`` or ``/bin/true`` (nothing else); a ``blacklist`` line stops loading by
alias only, so ``disabled_by`` says which of the two counts. A kernel without module support
(no ``/proc/modules``) cannot load any module, and one with ``kernel.modules_disabled = 1``
no further one: both pass every expectation, saying so, with one exception: a module already
loaded or built in is never "not loaded".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from agent.checks.base import CheckKind, SpecError, SpecProblem
from agent.checks.rows import outcome_of
from agent.core.record import record
from agent.host.facts import ReadError
from agent.host.kmod import ModprobeRule, Modules, module_name
from agent.host.snapshot import Snapshot, SnapshotRequest
from agent.result import Evidence, Outcome, Status

MODULES_DISABLED = "kernel.modules_disabled"

_REFUSING = frozenset({"/bin/false", "/bin/true", "/usr/bin/false", "/usr/bin/true", "false",
                       "true"})
"""Install commands that load nothing (modprobe runs them with ``/bin/sh -c``)."""

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_BY = ("any", "install", "both")

_MODULE_LIST: dict[str, Any] = {
    "type": "array", "minItems": 1, "uniqueItems": True,
    "items": {"type": "string", "pattern": r"^[A-Za-z0-9_-]+$"},
}


@record
class KmodSpec:
    """Parsed ``kmod`` spec; module names as kmod spells them (``-`` read as ``_``)."""

    not_loaded: tuple[str, ...]
    disabled: tuple[str, ...]
    disabled_by: str
    """``any``: an ``install`` that refuses, or a ``blacklist``; ``install``; ``both``."""
    loading_disabled: bool


def _row(part: str, module: str, verdict: str, found: str) -> dict[str, Any]:
    finding = found if module == "*" else f"{module}: {found}"
    return {"expectation": part, "module": module, "verdict": verdict, "finding": finding}


class KmodKind(CheckKind[KmodSpec]):
    """Kernel modules: loaded, built in, disabled by modprobe.d, or loading switched off."""

    name = "kmod"
    summary = ("Kernel modules that must not be loaded or must be disabled for loading "
               "(modprobe.d), or module loading switched off (kernel.modules_disabled).")
    spec_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "description": summary,
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "not_loaded": {**_MODULE_LIST, "description": "Modules that must be neither "
                           "loaded (/proc/modules) nor built in (modules.builtin)."},
            "disabled": {**_MODULE_LIST, "description": "Modules modprobe must refuse to load "
                         "(install NAME /bin/false or /bin/true, or blacklist NAME)."},
            "disabled_by": {"enum": list(_BY), "default": "any",
                            "description": "What disables a module: 'any' (an install that "
                            "refuses, or a blacklist), 'install' (blacklist stops loading by "
                            "alias only), or 'both'."},
            "loading_disabled": {"const": True, "description": "Module loading is switched "
                                 "off (kernel.modules_disabled = 1)."},
        },
    }

    def parse(self, raw: Mapping[str, Any]) -> KmodSpec:
        problems: list[SpecProblem] = []
        lists: dict[str, tuple[str, ...]] = {}
        for part in ("not_loaded", "disabled"):
            names: list[str] = []
            for index, name in enumerate(raw.get(part, [])):
                if not _NAME.fullmatch(str(name)):
                    problems.append(SpecProblem((part, index), f"invalid module name {name!r}"))
                    continue
                normal = module_name(str(name))
                if normal in names:
                    problems.append(SpecProblem((part, index), f"module {name!r} is listed "
                                                "twice ('-' and '_' are the same to kmod)"))
                names.append(normal)
            lists[part] = tuple(names)
        if "disabled_by" in raw and "disabled" not in raw:
            problems.append(SpecProblem(("disabled_by",), "disabled_by without disabled"))
        loading = raw.get("loading_disabled") is True
        if not (lists["not_loaded"] or lists["disabled"] or loading
                or "not_loaded" in raw or "disabled" in raw):
            problems.append(SpecProblem((), "kmod check expects nothing: give not_loaded, "
                                        "disabled or loading_disabled"))
        if problems:
            raise SpecError(problems)
        return KmodSpec(lists["not_loaded"], lists["disabled"], str(raw.get("disabled_by", "any")),
                        loading)

    def request(self, spec: KmodSpec) -> SnapshotRequest:
        return SnapshotRequest(modules=True, sysctl=frozenset({MODULES_DISABLED}))

    def evaluate(self, spec: KmodSpec, snapshot: Snapshot) -> Outcome:
        expected = _describe(spec)
        modules = snapshot.modules
        if modules is None:
            return Outcome(Status.ERROR, "kernel modules were not read",
                           Evidence(expected, "not read"))
        switch = _switch(snapshot)
        rows: list[dict[str, Any]] = []
        if not modules.support:
            found = "the kernel has no module support (no /proc/modules): it loads no module"
            # What it cannot load it may have built in: modules.builtin says so when shipped.
            builtin = modules.builtin if not isinstance(modules.builtin, ReadError) else ()
            rows = [_row(part, name, "fail", f"built into the kernel ({modules.builtin_file})")
                    if part == "not_loaded" and name in builtin else _row(part, name, "pass", found)
                    for part, names in (("not_loaded", spec.not_loaded),
                                        ("disabled", spec.disabled)) for name in names]
            if spec.loading_disabled:
                rows.append(_row("loading_disabled", "*", "pass", found))
        else:
            rows += [_not_loaded(modules, name) for name in spec.not_loaded]
            rows += [_disabled(modules, name, spec.disabled_by, switch) for name in spec.disabled]
            if spec.loading_disabled:
                rows.append(_loading(switch))
        return outcome_of(expected, rows)


def _describe(spec: KmodSpec) -> str:
    parts = []
    if spec.not_loaded:
        parts.append("not loaded: " + ", ".join(spec.not_loaded))
    if spec.disabled:
        by = {"any": "", "install": " by install", "both": " by install and blacklist"}
        parts.append(f"disabled{by[spec.disabled_by]}: " + ", ".join(spec.disabled))
    if spec.loading_disabled:
        parts.append(f"{MODULES_DISABLED} = 1")
    return "; ".join(parts) or "nothing"


def _switch(snapshot: Snapshot) -> str | ReadError | None:
    """``kernel.modules_disabled`` as read (``None``: the key does not exist)."""
    values = snapshot.sysctl.get(MODULES_DISABLED)
    if values is None:
        return ReadError(f"{MODULES_DISABLED} was not read")
    return values.get(MODULES_DISABLED)


def _not_loaded(modules: Modules, name: str) -> dict[str, Any]:
    if isinstance(modules.loaded, ReadError):
        return _row("not_loaded", name, "error", modules.loaded.reason)
    if name in modules.loaded:
        return _row("not_loaded", name, "fail", "loaded (/proc/modules)")
    if isinstance(modules.builtin, ReadError):
        return _row("not_loaded", name, "error",
                    f"not loaded, but built-in modules are unknown: {modules.builtin.reason}")
    if name in modules.builtin:
        return _row("not_loaded", name, "fail", f"built into the kernel ({modules.builtin_file})")
    return _row("not_loaded", name, "pass", "neither loaded nor built in")


def refuses(rule: ModprobeRule) -> bool:
    """Whether an ``install`` line loads nothing: ``/bin/false`` or ``/bin/true`` alone (a
    shell comment after it allowed)."""
    words = rule.argument.split()
    return bool(words) and words[0] in _REFUSING and (len(words) == 1 or words[1].startswith("#"))


def _disabled(modules: Modules, name: str, by: str,
              switch: str | ReadError | None) -> dict[str, Any]:
    if isinstance(switch, str) and switch.strip() == "1":
        return _row("disabled", name, "pass", f"{MODULES_DISABLED} = 1: no module can be loaded")
    if isinstance(modules.rules, ReadError):
        return _row("disabled", name, "error", modules.rules.reason)
    install = next((r for r in modules.rules if r.command == "install" and r.module == name), None)
    blacklist = next((r for r in modules.rules if r.command == "blacklist" and r.module == name),
                     None)
    found: list[str] = []
    if install is not None:
        found.append(f"install {install.argument} ({install.file}:{install.line})")
    if blacklist is not None:
        found.append(f"blacklist ({blacklist.file}:{blacklist.line})")
    by_install = install is not None and refuses(install)
    ok = {"any": by_install or blacklist is not None, "install": by_install,
          "both": by_install and blacklist is not None}[by]
    if install is not None and not by_install:
        found.append("that install command does not refuse the load")
    return _row("disabled", name, "pass" if ok else "fail",
                "; ".join(found) or "no install or blacklist line in modprobe.d")


def _loading(switch: str | ReadError | None) -> dict[str, Any]:
    if isinstance(switch, ReadError):
        return _row("loading_disabled", "*", "error", switch.reason)
    if switch is None:
        return _row("loading_disabled", "*", "error", f"{MODULES_DISABLED} does not exist, "
                    "although the kernel has module support")
    verdict = "pass" if switch.strip() == "1" else "fail"
    return _row("loading_disabled", "*", verdict, f"{MODULES_DISABLED} = {switch.strip()}")
