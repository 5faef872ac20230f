"""The daemon's configuration file (``kind: AgentConfig``), linted like a policy.

A passing configuration::

    apiVersion: hostguard/v1
    kind: AgentConfig
    policies: [/etc/hostguard/policies]
    interval: 300
    output_dir: /var/lib/hostguard/reports
    reports: [json]

A failing one (``intervall`` is an unknown key, with a suggestion; ``reports`` names a format
that does not exist)::

    apiVersion: hostguard/v1
    kind: AgentConfig
    policies: [/etc/hostguard/policies]
    intervall: 300                  # error: unknown key 'intervall' (did you mean 'interval'?)
    reports: [pdf]                  # error: reports[0] must be one of html, json, junit, sarif

Relative paths are taken relative to the folder of the configuration file, so a configuration
and its policies can move together.

``enforce:`` bindings (off when absent) put a seccomp profile's filter on the running processes
a selector picks, each cycle (:mod:`agent.daemon.enforce`)::

    enforce:
      - id: fixgw                      # names the binding in the log, history and metrics
        unit: fixgw.service            # or name / exe / cmdline / user, as the seccomp check
        profile: seccomp/fixgw.yaml    # relative to this file
        mode: log                      # log or enforce
        enforce_from: 2026-12-14       # from this day (UTC) on, log becomes enforce
        stop_isolated: false           # never stop a process that may run on an isolated CPU
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Mapping
from dataclasses import field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from agent.checks.base import SpecProblem
from agent.checks.selectors import SELECTOR_KEYS, SELECTOR_PROPERTIES, Selector, parse_selector
from agent.core.diagnostic import Diagnostic, Level
from agent.core.location import Location
from agent.core.record import record
from agent.core.schema_errors import schema_report
from agent.core.schemafile import API_VERSION, document
from agent.core.yamlload import Document, LoadError, load_file
from agent.daemon.metrics import parse_address
from agent.seccomp.model import MODES

KIND = "AgentConfig"
DEFAULT_PATH = Path("/etc/hostguard/hostguard.yaml")
REPORT_FORMATS = ("html", "json", "junit", "sarif")
"""Formats the configuration may name; which of them this build can write is checked too."""

_PATH = {"type": "string", "minLength": 1}
RETENTION_KEYS = ("history_max_age_days", "history_max_runs")
DEFAULT_INTERVAL = 300

_BINDING: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["id", "profile", "mode"],
    "properties": {
        "id": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
               "description": "Names the binding in the log, the history and the metrics."},
        **SELECTOR_PROPERTIES,
        "profile": {**_PATH, "description": "Seccomp profile (relative to this file)."},
        "mode": {"enum": list(MODES), "description": "log: nothing is denied, the "
                 "kernel logs what would be; enforce: the profile's actions."},
        "enforce_from": {"type": "string", "minLength": 1,
                         "description": "With mode log: from this date (YYYY-MM-DD, UTC) on, "
                         "the filter applied is the enforcing one."},
        "stop_isolated": {"type": "boolean", "default": False,
                          "description": "Apply to a process that may run on an isolated CPU "
                          "(it is stopped for a moment)."},
    },
}

SCHEMA: dict[str, Any] = document(
    "https://hostguard.invalid/schema/agent-config-v1.json", "hostguard agent configuration",
    "Configuration of `hostguard daemon` (docs/daemon.md).", kind=KIND, required=["policies"],
    properties={
        "policies": {"type": "array", "minItems": 1, "items": _PATH,
                     "description": "Policy files and folders (folders searched recursively)."},
        "interval": {"type": "number", "exclusiveMinimum": 0,
                     "description": "Seconds between audit starts (default 300)."},
        "jitter": {"type": "number", "minimum": 0,
                   "description": "Up to this many random seconds added to each start "
                   "(at most half the interval)."},
        "output_dir": {**_PATH, "description": "Folder for report files."},
        "reports": {"type": "array", "items": {"enum": list(REPORT_FORMATS)},
                    "uniqueItems": True, "description": "Report formats (default [json])."},
        "keep": {"type": "integer", "minimum": 1,
                 "description": "Keep the newest N report files per format."},
        "history": {**_PATH, "description": "SQLite history database."},
        "history_max_age_days": {"type": "number", "exclusiveMinimum": 0,
                                 "description": "Prune the history's runs started more than "
                                 "this many days ago, when the hourly verification passes."},
        "history_max_runs": {"type": "integer", "minimum": 1,
                             "description": "Prune the history to its newest N runs, when the "
                             "hourly verification passes."},
        "metrics": {**_PATH, "description": "Prometheus textfile-collector file."},
        "metrics_listen": {"type": "string", "minLength": 1,
                           "description": "Serve the metrics over HTTP at HOST:PORT "
                           "(e.g. 127.0.0.1:9420)."},
        "deep_seccomp": {"type": "array", "items": {"type": "string", "minLength": 1},
                         "uniqueItems": True,
                         "description": "Check ids allowed to take deep seccomp dumps."},
        "labels": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "Host labels for policies' hosts.labels selectors."},
        "root": {**_PATH, "description": "Host root to audit (default /)."},
        "cpu_budget_seconds": {"type": "number", "exclusiveMinimum": 0,
                               "description": "CPU seconds a cycle may spend (with the helper "
                               "processes it reaped); over it, the next cycle is skipped."},
        "rss_budget_mib": {"type": "number", "exclusiveMinimum": 0,
                           "description": "Resident memory (MiB) the daemon may hold at the "
                           "end of a cycle; over it, the next cycle is skipped."},
        "enforce": {"type": "array", "items": _BINDING,
                    "description": "Seccomp profiles the daemon applies to running processes "
                    "(docs/daemon.md); none when absent."},
    })
"""JSON Schema of the configuration file."""


@record
class Binding:
    """One ``enforce:`` entry: which processes get which profile's filter, in which mode."""

    id: str
    """Names the binding in the log, the history and the metrics."""
    selector: Selector
    """The processes it applies to, selected as the ``seccomp`` check selects them."""
    profile_path: Path
    """The profile file, absolute."""
    profile: Any = field(compare=False, hash=False)
    """The loaded :class:`~agent.seccomp.model.Profile`."""
    mode: str = "log"
    """``log`` or ``enforce``."""
    enforce_from: dt.date | None = None
    """With mode ``log``: from this UTC day on, the mode is ``enforce``."""
    stop_isolated: bool = False
    """Whether a process that may run on an isolated CPU may be stopped to apply."""
    location: Location = field(default_factory=lambda: Location(""), compare=False, hash=False)
    """Where the binding is written."""

    def mode_on(self, day: dt.date) -> str:
        """The mode in force on ``day`` (UTC)."""
        if self.enforce_from is not None and day >= self.enforce_from:
            return "enforce"
        return self.mode


@record
class Config:
    """What ``hostguard daemon`` runs with."""

    path: Path
    """The configuration file itself."""
    policies: tuple[Path, ...]
    """Policy files and folders, made absolute against the configuration's folder."""
    interval: float = 300.0
    """Seconds between audit starts."""
    jitter: float = 0.0
    """Up to this many random seconds added to each start (spreads a fleet's load)."""
    output_dir: Path | None = None
    """Where report files go; no reports when unset."""
    reports: tuple[str, ...] = ("json",)
    """Report formats written to ``output_dir``."""
    keep: int | None = None
    """Keep the newest N report files per format (all when unset)."""
    history: Path | None = None
    """SQLite history database; no history when unset."""
    history_max_age_days: float | None = None
    """Prune runs older than this (hourly, after the chain verifies); all kept when unset."""
    history_max_runs: int | None = None
    """Prune to the newest N runs (hourly, after the chain verifies); all kept when unset."""
    metrics: Path | None = None
    """Prometheus textfile; no metrics when unset."""
    metrics_listen: str | None = None
    """HOST:PORT of an HTTP metrics endpoint; none when unset."""
    deep_seccomp: tuple[str, ...] = ()
    """Check ids allowed to take deep seccomp dumps (carried for the seccomp checks)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Host labels for policies' ``hosts.labels`` selectors."""
    root: Path = Path("/")
    """Host root the audit reads."""
    cpu_budget_seconds: float | None = None
    """CPU seconds a cycle may spend; no limit when unset."""
    rss_budget_mib: float | None = None
    """Resident MiB the daemon may hold at the end of a cycle; no limit when unset."""
    enforce: tuple[Binding, ...] = ()
    """Profiles applied to running processes each cycle; none when empty."""


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(SCHEMA)


def available_formats() -> frozenset[str]:
    """Report formats this build can write (``agent.report.writer.FORMATS``)."""
    # Imported late: linting a configuration should not load the renderers' templates.
    writer = importlib.import_module("agent.report.writer")
    return frozenset(writer.FORMATS)


def lint_config(doc: Document, today: dt.date | None = None) -> list[Diagnostic]:
    """Every problem of a configuration document, located (``hostguard lint`` calls this)."""
    data = doc.data
    if not isinstance(data, dict):
        return [Diagnostic(doc.at(()), Level.ERROR, "a configuration is a mapping",
                           "unknown-document")]
    # Each check below reads only what the schema accepted, and runs whatever else is wrong:
    # one lint pass reports a bad HOST:PORT beside a misspelled key.
    schema = schema_report(doc, data, _validator())
    found = list(schema.diagnostics)
    reports = data.get("reports")
    if isinstance(reports, list) and schema.sound(("reports",)):
        formats = available_formats()
        for i, name in enumerate(reports):
            if name not in formats:
                found.append(Diagnostic(doc.at(("reports", i)), Level.ERROR,
                                        f"report format {name!r} is not available in this "
                                        f"build (available: {', '.join(sorted(formats))})",
                                        "schema"))
    if "metrics_listen" in data and schema.sound(("metrics_listen",)):
        try:
            parse_address(data["metrics_listen"])
        except ValueError as exc:
            found.append(Diagnostic(doc.at(("metrics_listen",)), Level.ERROR, str(exc), "schema"))
    if "jitter" in data and schema.sound(("jitter",)) and schema.sound(("interval",)):
        interval = data.get("interval", DEFAULT_INTERVAL)
        # The stale-audit alert allows 3 intervals: two starts, each up to interval + jitter
        # after the last (one cycle skipped over budget), stay within it only so.
        # A warning: such a configuration still audits, only the alert's margin is gone.
        if data["jitter"] > interval / 2:
            found.append(Diagnostic(doc.at(("jitter",)), Level.WARNING,
                                    f"jitter {data['jitter']} is more than half the interval "
                                    f"({interval}): audits could be further apart than the "
                                    "stale-audit alert's 3 intervals", "schema"))
    for key in RETENTION_KEYS:
        if key in data and "history" not in data:
            found.append(Diagnostic(doc.at((key,)), Level.ERROR,
                                    f"{key} prunes the history: it needs 'history'", "schema"))
    if schema.sound(("enforce",)) and schema.sound(("root",)):
        found.extend(_bindings(doc, data)[1])
    return sorted(found)


def _bindings(doc: Document, data: Mapping[str, Any]) -> tuple[tuple[Binding, ...],
                                                               list[Diagnostic]]:
    """The ``enforce:`` bindings of a schema-valid document, and their problems (selectors,
    profiles that do not load, dates, duplicate ids, a root other than ``/``)."""
    raw = data.get("enforce") or []
    if not raw:
        return (), []
    found: list[Diagnostic] = []

    def error(path: tuple[str | int, ...], message: str, rule: str = "schema") -> None:
        found.append(Diagnostic(doc.at(path), Level.ERROR, message, rule))

    if Path(str(data.get("root", "/"))) != Path("/"):
        error(("root",), "enforce: applies filters to this host's running processes: root "
              "must be / (or absent) when enforce: is given")
    base = Path(doc.path).parent.absolute()
    seen: dict[str, int] = {}
    bindings: list[Binding] = []
    for i, entry in enumerate(raw):
        at: tuple[str | int, ...] = ("enforce", i)
        before = len(found)
        problems: list[SpecProblem] = []
        selector = parse_selector(entry, problems)
        if not any(k in entry for k in SELECTOR_KEYS):
            error(at, "the binding selects no process: give unit, name, exe, cmdline or user "
                  "(all given must match)")
        for problem in problems:
            error((*at, *problem.path), problem.message, problem.rule)
        ident = str(entry["id"])
        if ident in seen:
            error((*at, "id"), f"binding id {ident!r} is used twice (first by "
                  f"enforce[{seen[ident]}])", "duplicate-id")
        seen.setdefault(ident, i)
        day = _day(entry, at, error)
        path = _path(base, str(entry["profile"]))
        profile = _profile(path, str(entry["profile"]), (*at, "profile"), error)
        if len(found) > before:
            continue
        bindings.append(Binding(ident, selector, path, profile, str(entry["mode"]), day,
                                bool(entry.get("stop_isolated", False)), doc.at(at)))
    return (tuple(bindings) if not found else ()), found


def _day(entry: Mapping[str, Any], at: tuple[str | int, ...],
         error: Callable[[tuple[str | int, ...], str], None]) -> dt.date | None:
    """``enforce_from`` as a date; None when absent or wrong (reported)."""
    if "enforce_from" not in entry:
        return None
    text = str(entry["enforce_from"])
    if entry["mode"] != "log":
        error((*at, "enforce_from"), "enforce_from turns mode log into enforce: it needs "
              "mode: log")
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        error((*at, "enforce_from"), f"enforce_from {text!r} is not a date (YYYY-MM-DD)")
        return None


def _profile(path: Path, written: str, at: tuple[str | int, ...],
             error: Callable[..., None]) -> Any:
    """The profile at ``path``, or None when it cannot be used (reported with its first
    located error)."""
    # Imported late: only a configuration that binds a profile pays for the seccomp model.
    from agent.seccomp.profile import load_profile  # noqa: PLC0415 - see above

    loaded = load_profile(path)
    if isinstance(loaded, list):
        first = f": {loaded[0]}" if loaded else ""
        more = f" (and {len(loaded) - 1} more)" if len(loaded) > 1 else ""
        error(at, f"profile {written!r} cannot be used{first}{more}", "invalid-profile")
        return None
    return loaded


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)


def _path(base: Path, text: str) -> Path:
    return base / text  # an absolute text stays absolute


def load_config(path: Path) -> Config | list[Diagnostic]:
    """Read, lint and build the configuration at ``path``; located diagnostics when invalid."""
    loaded = load_file(path, str(path))
    if isinstance(loaded, LoadError):
        return [Diagnostic(loaded.location, Level.ERROR, loaded.message, loaded.rule)]
    data = loaded.data
    if isinstance(data, dict) and (data.get("apiVersion"), data.get("kind")) != (API_VERSION,
                                                                                  KIND):
        where = loaded.at(("kind",) if "kind" in data else ())
        return [Diagnostic(where, Level.ERROR, f"not a hostguard agent configuration (expected "
                           f"apiVersion {API_VERSION!r}, kind {KIND!r})", "unknown-document")]
    problems = lint_config(loaded)
    if any(d.level is Level.ERROR for d in problems):
        return problems
    base = path.parent.absolute()

    def opt(key: str) -> Path | None:
        return _path(base, data[key]) if key in data else None

    return Config(
        path=path,
        policies=tuple(_path(base, p) for p in data["policies"]),
        interval=float(data.get("interval", DEFAULT_INTERVAL)),
        jitter=float(data.get("jitter", 0)),
        output_dir=opt("output_dir"),
        reports=tuple(data.get("reports", ["json"])),
        keep=data.get("keep"),
        history=opt("history"),
        history_max_age_days=_number(data.get("history_max_age_days")),
        history_max_runs=data.get("history_max_runs"),
        metrics=opt("metrics"),
        metrics_listen=data.get("metrics_listen"),
        deep_seccomp=tuple(data.get("deep_seccomp", [])),
        labels=dict(data.get("labels", {})),
        root=_path(base, data.get("root", "/")),
        cpu_budget_seconds=_number(data.get("cpu_budget_seconds")),
        rss_budget_mib=_number(data.get("rss_budget_mib")),
        enforce=_bindings(loaded, data)[0],
    )
