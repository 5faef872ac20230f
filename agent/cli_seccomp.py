"""Command line of the seccomp half: ``hostguard exec`` and ``hostguard seccomp ...``.

Part of the CLI layer (with ``cli.py``): the only other place that parses argv or prints.
Each subcommand registers its parser in :func:`add_parsers` with ``set_defaults(handler=...)``;
a handler returns the exit status.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(sub: Any) -> None:
    """Register ``exec`` and ``seccomp`` (with its own subcommands) on ``sub``."""
    seccomp = sub.add_parser("seccomp", help="seccomp profiles: compile, convert, install",
                             description="Work with seccomp profiles (policies/seccomp/).")
    seccomp.set_defaults(handler=_seccomp_help(seccomp))
    commands = seccomp.add_subparsers(dest="seccomp_command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(commands)


_SUBCOMMANDS: list[Any] = []
"""``_add_<name>(commands)`` functions, one per ``hostguard seccomp`` subcommand."""


def _seccomp_help(parser: argparse.ArgumentParser) -> Any:
    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2
    return show
