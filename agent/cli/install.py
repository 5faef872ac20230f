"""``hostguard install-service``: configuration, policies, unit and state folder of the daemon."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.cli.output import lay_out
from agent.core import layout

EXIT_USAGE = 2


def add_parsers(sub: Any) -> None:
    """Register ``install-service`` on the top-level subparsers ``sub``."""
    cmd = sub.add_parser(
        "install-service", help="install the daemon's configuration, policies and systemd unit",
        description="Lay out /etc/hostguard/hostguard.yaml, /etc/hostguard/policies (with "
        "seccomp/), /etc/systemd/system/hostguard.service (ExecStart= naming this hostguard) "
        "and the state folder, after linting the configuration and policies as they will be. "
        "A file that differs from what would be written is kept and shown as a diff. Exit 0 "
        "installed (or already so), 1 a file kept, 2 lint errors or something in the way "
        "(nothing written), or a write failed.")
    cmd.add_argument("--root", type=Path, default=Path("/"),
                     help="put every path under this folder (tests, image building; default /)")
    cmd.add_argument("--dry-run", action="store_true", help="write nothing; say what would be "
                     "done")
    cmd.add_argument("--force", action="store_true", help="replace files and folder modes "
                     "that differ")
    cmd.add_argument("--deep-seccomp", action="store_true", help="also install the drop-in "
                     "that lets deep seccomp checks read other processes' filters (weakens the "
                     "unit's own sandbox: docs/daemon.md)")
    cmd.add_argument("--clock-read", action="store_true", help="also install the drop-in that "
                     "lets timesync checks read the kernel clock (adjtimex; docs/daemon.md)")
    cmd.set_defaults(handler=_install)


def _install(args: argparse.Namespace) -> int:
    import agent  # noqa: PLC0415 - where the package is, for the ProtectHome= check
    from agent.daemon import install  # noqa: PLC0415 - the parser is built for --help too

    root: Path = args.root.absolute()
    if not root.is_dir():
        print(f"hostguard: --root {args.root}: not a folder", file=sys.stderr)
        return EXIT_USAGE
    try:
        command = install.installed_command()
        entries = install.entries(command, args.deep_seccomp, args.clock_read)
    except install.InstallError as exc:
        print(f"hostguard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    unit = next(e for e in entries if e.path == install.UNIT)
    assert unit.content is not None
    for path in install.hidden(command, Path(agent.__file__).parent, unit.content.decode()):
        print(f"hostguard: warning: {path} is under a folder the unit's ProtectHome=yes hides "
              "from the service, which will not start: install hostguard elsewhere (a venv "
              "in /opt, or the distribution's package)", file=sys.stderr)
    steps = layout.plan(entries, root, args.force)
    if any(s.state is layout.State.BLOCKED for s in steps):
        return lay_out(steps, args.dry_run)
    clean, problems = install.lint(steps, root)
    for line in problems:
        print(line, file=sys.stderr)
    if not clean:
        print("hostguard: the configuration or policies would not lint clean: nothing written",
              file=sys.stderr)
        return EXIT_USAGE
    code = lay_out(steps, args.dry_run)
    if code == EXIT_USAGE:
        return code
    _next_steps(root, steps, args.dry_run)
    return code


def _next_steps(root: Path, steps: Sequence[layout.Step], dry_run: bool) -> None:
    then = "then" if dry_run else "now"
    if root != Path("/"):
        print(f"{then}, to enable it in that tree: systemctl --root={root} enable hostguard")
        return
    print(f"{then}, as root: systemctl daemon-reload && systemctl enable --now hostguard")
    if any(s.state in (layout.State.CREATE, layout.State.REPLACE) and s.entry.content is not None
           for s in steps):
        print("if hostguard was already running: systemctl restart hostguard (a new unit or "
              "drop-in) or systemctl reload hostguard (configuration, policies)")
