"""The command line's parser class, and argument types shared by the commands' parsers."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import IO, Any, NoReturn

_INVALID_CHOICE = re.compile(r"argument (\S+): invalid choice: '([^']*)'")
"""argparse's message for a word none of a parser's choices has (3.11's wording)."""


class Parser(argparse.ArgumentParser):
    """Every parser of the command line (subparsers are built of their parent's class).

    An argument a command does not know is refused by that command's own parser, with its usage
    and the nearest of its options (``--lable`` -> ``--label``). argparse would hand such words
    up to the top-level parser, which refuses them with the top-level usage and no hint.
    """

    def parse_known_args(self, args: Iterable[str] | None = None,
                         namespace: Any = None) -> tuple[Any, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}{self._suggest(extras)}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        """argparse's refusal, with the nearest command for a mistyped one (``audti`` ->
        ``audit``)."""
        wrong = _INVALID_CHOICE.match(message)
        if wrong is not None:
            import difflib  # noqa: PLC0415 - a usage error only, not every start

            commands = [name for action in self._actions
                        if isinstance(action.choices, Mapping)  # a subparsers action
                        and action.metavar == wrong[1] for name in action.choices]
            near = difflib.get_close_matches(wrong[2], commands, n=1, cutoff=0.6)
            if near:
                message += f" (did you mean {near[0]}?)"
        super().error(message)

    def _suggest(self, extras: list[str]) -> str:
        """`` (did you mean --label?)`` for the first unknown option that is near one of ours."""
        import difflib  # noqa: PLC0415 - a usage error only, not every start

        known = [o for action in self._actions for o in action.option_strings
                 if o.startswith("--")]
        for word in extras:
            if not word.startswith("--"):
                continue
            near = difflib.get_close_matches(word.partition("=")[0], known, n=1, cutoff=0.6)
            if near:
                return f" (did you mean {near[0]}?)"
        return ""


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
