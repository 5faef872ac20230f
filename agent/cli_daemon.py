"""Command line of the daemon commands (part of the CLI layer, with ``cli.py``).

Each command registers its parser through a function appended to ``_COMMANDS``; a parser sets
``set_defaults(handler=...)``, and a handler returns the exit status.
"""

from __future__ import annotations

from typing import Any

_COMMANDS: list[Any] = []
"""``_add_<name>(sub)``: one per top-level command."""


def add_parsers(sub: Any) -> None:
    """Register this module's commands on the top-level subparsers ``sub``."""
    for add in _COMMANDS:
        add(sub)
