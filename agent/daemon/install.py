"""What ``hostguard install-service`` lays out for the daemon, and the lint it passes first.

The configuration (``/etc/hostguard/hostguard.yaml``, from the shipped sample), the shipped
policies with their seccomp profiles (``/etc/hostguard/policies``, ``seccomp/`` beside them,
since ``gateway-seccomp.yaml`` names ``seccomp/trading-gateway.yaml``), the unit with
``ExecStart=`` naming the hostguard that runs the install, the deep-seccomp or clock-read drop-in
when asked for, and the state folder the unit's ``StateDirectory=`` names. Folders holding the
configuration and policies are 0750, the files 0640 (a host's policies and waivers say what it
does not enforce); unit files are 0644, as systemd's own.

Before anything is written, the configuration and the policies folder as they would be after
the install (the administrator's kept files and own policies included) are linted as
``hostguard lint`` lints them, in a staging copy: an install that would leave a daemon unable to
start writes nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from agent.core import layout, shipped
from agent.core.layout import Entry, State, Step
from agent.core.location import display_path
from agent.lint.engine import lint_paths

CONFIG_FOLDER = Path("/etc/hostguard")
CONFIG = shipped.SYSTEM_CONFIG
POLICIES = shipped.SYSTEM_POLICIES
UNIT = Path("/etc/systemd/system/hostguard.service")
DROP_IN = Path("/etc/systemd/system/hostguard.service.d/deep-seccomp.conf")
CLOCK_DROP_IN = DROP_IN.with_name("clock-read.conf")
STATE_ROOT = Path("/var/lib")
PRIVATE_FOLDER, PRIVATE_FILE, UNIT_FILE, UNIT_FOLDER = 0o750, 0o640, 0o644, 0o755
HIDDEN_BY_PROTECT_HOME = (Path("/home"), Path("/root"), Path("/run/user"))
"""What the unit's ``ProtectHome=yes`` makes inaccessible to the service."""


class InstallError(Exception):
    """The shipped files cannot be laid out (say why, exit 2)."""


def installed_command(argv0: str | None = None, executable: str | None = None) -> tuple[str, ...]:
    """The command that runs this hostguard, absolute: the ``hostguard`` console script this
    process was started as, else this interpreter with ``-m agent``.

    Paths are made absolute but not resolved: a virtual environment is known by the path of
    its interpreter, not by where that links to.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    script = Path(argv0)
    if script.name == "hostguard" and script.is_file() and os.access(script, os.X_OK):
        return (os.path.abspath(script),)
    if not executable:
        raise InstallError("cannot tell which Python runs hostguard (sys.executable is empty)")
    return (os.path.abspath(executable), "-m", "agent")


_PLAIN = re.compile(r"[A-Za-z0-9/._+:@,=-]+")


def quote(word: str) -> str:
    """One word of a unit's command line (systemd.service, "Command lines")."""
    word = word.replace("%", "%%").replace("$", "$$")
    if _PLAIN.fullmatch(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def with_exec_start(unit: str, command: Sequence[str]) -> str:
    """``unit`` with the program of its one ``ExecStart=`` replaced by ``command`` (its
    arguments and any ``-@:+!`` prefix kept)."""
    lines = unit.splitlines(keepends=True)
    found = [i for i, line in enumerate(lines) if line.startswith("ExecStart=")]
    if len(found) != 1:
        raise InstallError(f"the shipped unit has {len(found)} ExecStart= lines, expected one")
    line = lines[found[0]]
    value = line[len("ExecStart="):].rstrip("\n")
    flags = value[:len(value) - len(value.lstrip("-@:+!"))]
    _, _, arguments = value[len(flags):].partition(" ")
    program = " ".join(quote(word) for word in command)
    lines[found[0]] = f"ExecStart={flags}{program} {arguments}".rstrip() + "\n"
    return "".join(lines)


def _setting(unit: str, key: str) -> str | None:
    """The last value of ``key=`` in ``unit`` (later assignments win)."""
    values = re.findall(rf"^{re.escape(key)}=(.*)$", unit, re.M)
    return values[-1].strip() if values else None


def state_folders(unit: str) -> list[Entry]:
    """The folders of the unit's ``StateDirectory=``, with its ``StateDirectoryMode=``."""
    names = (_setting(unit, "StateDirectory") or "").split()
    mode = int(_setting(unit, "StateDirectoryMode") or "0755", 8)
    return [Entry(STATE_ROOT / name, mode) for name in names]


def entries(command: Sequence[str], deep_seccomp: bool, clock_read: bool = False) -> list[Entry]:
    """Everything the install lays out, parents before what they hold. The clock-read drop-in
    is left out beside the deep-seccomp one, which lifts every filter, adjtimex's too."""
    try:
        packaging = shipped.packaging()
        top = shipped.policies()
        files = shipped.policy_files()
        unit = (packaging / "systemd" / "hostguard.service").read_text(encoding="utf-8")
        config = (packaging / "hostguard.yaml").read_bytes()
        drop_in = (packaging / "systemd" / "deep-seccomp.conf").read_bytes()
        clock_drop_in = (packaging / "systemd" / CLOCK_DROP_IN.name).read_bytes()
    except (shipped.NotShipped, OSError) as exc:
        raise InstallError(str(exc)) from None
    found = [Entry(CONFIG_FOLDER, PRIVATE_FOLDER), Entry(CONFIG, PRIVATE_FILE, config),
             Entry(POLICIES, PRIVATE_FOLDER)]
    for folder in sorted({p.parent.relative_to(top) for p in files} - {Path()}):
        found.append(Entry(POLICIES / folder, PRIVATE_FOLDER))
    found += [Entry(POLICIES / p.relative_to(top), PRIVATE_FILE, p.read_bytes()) for p in files]
    found.append(Entry(UNIT, UNIT_FILE, with_exec_start(unit, command).encode()))
    if deep_seccomp:
        found += [Entry(DROP_IN.parent, UNIT_FOLDER), Entry(DROP_IN, UNIT_FILE, drop_in)]
    elif clock_read:
        found += [Entry(CLOCK_DROP_IN.parent, UNIT_FOLDER),
                  Entry(CLOCK_DROP_IN, UNIT_FILE, clock_drop_in)]
    return found + state_folders(unit)


def hidden(command: Sequence[str], package: Path, unit: str) -> list[Path]:
    """What the service needs (the program, the ``agent`` package) and its unit's
    ``ProtectHome=yes`` would hide from it."""
    if _setting(unit, "ProtectHome") not in ("yes", "true", "1", "on", "tmpfs"):
        return []
    needed = [Path(command[0]), package]
    return [p for p in needed if any(p.is_relative_to(h) for h in HIDDEN_BY_PROTECT_HOME)]


def lint(steps: Sequence[Step], root: Path, today: dt.date | None = None) -> tuple[bool, list[str]]:
    """Lint the configuration and the policies folder under ``root`` as the steps would leave
    them: (clean, each diagnostic and usage error named by its path under ``root``)."""
    config, policies = layout.target(root, CONFIG), layout.target(root, POLICIES)
    with tempfile.TemporaryDirectory(prefix="hostguard-install-") as name:
        stage = Path(name)
        staged_config = layout.target(stage, CONFIG)
        staged_policies = layout.target(stage, POLICIES)
        try:
            if policies.is_dir():
                shutil.copytree(policies, staged_policies, ignore_dangling_symlinks=True)
            if config.is_file():
                staged_config.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(config, staged_config)
        except (OSError, shutil.Error) as exc:
            return False, [f"cannot read what is installed: {exc}"]
        for step in steps:
            if step.state in (State.CREATE, State.REPLACE) and step.entry.content is not None \
                    and step.entry.path.is_relative_to(CONFIG_FOLDER):
                where = layout.target(stage, step.entry.path)
                where.parent.mkdir(parents=True, exist_ok=True)
                where.write_bytes(step.entry.content)
        report = lint_paths([str(staged_config), str(staged_policies)], today)
        ok = report.exit_code() == 0
        lines = [str(d) for d in report.diagnostics] + list(report.usage_errors)
        # Named as they will be: the staging folder's path (as shown, and in full) -> root.
        shown = str(root).rstrip("/")
        for prefix in sorted({str(stage), display_path(stage)}, key=len, reverse=True):
            lines = [line.replace(prefix, shown) for line in lines]
    return ok, lines
