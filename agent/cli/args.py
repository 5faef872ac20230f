"""Argument types shared by the commands' parsers."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any, NoReturn


def date(value: str) -> dt.date:
    """``--today YYYY-MM-DD``."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def runs_a_command(parser: Any, name: str, status: int) -> None:
    """Usage errors of a command that runs ``CMD`` (``exec``, ``seccomp record``) exit
    ``status``, not argparse's 2, which could be taken for CMD's own exit status, and say that
    CMD was not run."""

    def refuse(message: str) -> NoReturn:
        parser.print_usage(sys.stderr)
        print(f"{name}: {message}; the command was not run", file=sys.stderr)
        sys.exit(status)
    parser.error = refuse


def command_words(args: argparse.Namespace) -> list[str]:
    """``CMD [ARGS...]`` as given after the options (``argparse.REMAINDER``), without a
    leading ``--``."""
    words = list(args.command)
    return words[1:] if words[:1] == ["--"] else words
