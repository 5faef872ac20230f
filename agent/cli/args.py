"""Argument types shared by the commands' parsers."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from typing import IO, Any, NoReturn


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


COLOR_CHOICES = ("auto", "always", "never")


def add_color(parser: argparse.ArgumentParser) -> None:
    """``--color auto|always|never`` on a command that prints the text report."""
    parser.add_argument("--color", choices=COLOR_CHOICES, default="auto",
                        help="colour status and severity: auto (default) on a terminal unless "
                        "NO_COLOR is set, always, never")


def use_color(choice: str, stream: IO[Any] | None) -> bool:
    """Whether ``--color choice`` colours text written to ``stream`` (None: a file).

    ``auto`` colours a terminal only, and not when ``NO_COLOR`` is set to anything but the empty
    string (no-color.org); ``always`` and ``never`` are the user's word for this run and
    override ``NO_COLOR``, as that convention asks of command-line options.
    """
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return stream is not None and stream.isatty()
    except ValueError:  # closed
        return False
