"""Command line: the only place that parses argv or prints.

One module per command group registers its commands' parsers (``add_parsers(sub)``, each parser
with ``set_defaults(handler=...)``, a handler returning the exit status). :data:`COMMANDS` names
the module of every top-level command (agent/core/registry.py): a command line that names one
imports that module alone, so `hostguard audit` never loads Jinja2, libseccomp,
prometheus_client or the daemon (tests/cli/test_imports.py holds this); ``--help``,
``--version`` or no command load them all.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TextIO

from agent import __version__
from agent.cli.args import Parser
from agent.core.native import MissingLibrary
from agent.core.registry import LazyRegistry

COMMANDS: LazyRegistry[Callable[[Any], None]] = LazyRegistry({
    "lint": "agent.cli.lint:add_parsers",
    "audit": "agent.cli.audit:add_parsers",
    "exec": "agent.cli.seccomp:add_parsers",
    "seccomp": "agent.cli.seccomp:add_parsers",
    "report": "agent.cli.report:add_parsers",
    "daemon": "agent.cli.daemon:add_parsers",
    "history": "agent.cli.history:add_parsers",
    "policies": "agent.cli.policies:add_parsers",
    "install-service": "agent.cli.install:add_parsers",
})
"""Top-level command -> the function that registers it (and the other commands of its module)
on the top-level subparsers; the help lists them in this order."""
ONE_SHOT = frozenset({"lint", "audit"})
"""Commands run with the cycle collector paused (:func:`_one_run`)."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``command`` (a key of :data:`COMMANDS`) only the commands
    of its module (the others' modules are then not imported)."""
    parser = Parser(
        prog="hostguard",
        description="Host-hardening audit and policy enforcement for Linux trading hosts.",
    )
    parser.add_argument("--version", action="version", version=f"hostguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    names = [command] if command is not None else list(COMMANDS)
    for register in dict.fromkeys(COMMANDS[name] for name in names):  # one call per module
        register(sub)
    return parser


def run() -> NoReturn:
    """The ``hostguard`` program (and ``python -m agent``): :func:`main` on ``sys.argv``.

    stdout and stderr are flushed here, so that output that cannot be written is told: a closed
    pipe exits 1, as it does within ``main``; another failure is told on fd 2 and exits 120, as
    Python's own exit does (without its traceback).
    """
    code = main(ending=True)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            if stream is not None:
                stream.flush()
        except BrokenPipeError:
            code = 1
            _discard(stream)
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or exc
            with contextlib.suppress(OSError):
                os.write(2, f"hostguard: cannot write {name}: {why}\n".encode())
            code = 120
            _discard(stream)
    sys.exit(code)


def _discard(stream: TextIO) -> None:
    """Point ``stream``'s file at /dev/null: what it still holds cannot be written, and the
    interpreter's own flush at exit must not fail again (and print a traceback)."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a file (a test's stand-in), or already closed
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None, *, ending: bool = False) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return its exit status;
    ``ending``: the process ends right after (:func:`run`)."""
    words = sys.argv[1:] if argv is None else list(argv)
    # Subcommand names are never abbreviated: a first word that names a command is that
    # command, and the other commands' parsers play no part in parsing it. Anything else (no
    # command, --help, --version) gets the whole command line.
    command = words[0] if words and words[0] in COMMANDS else None
    with _one_run(ending) if command in ONE_SHOT else contextlib.nullcontext():
        try:
            return _run(build_parser(command).parse_args(words))
        except MissingLibrary as exc:  # libseccomp: reached by a command, or by its parser
            print(f"hostguard: {exc}", file=sys.stderr)
            return 2


def _run(args: argparse.Namespace) -> int:
    # Host data read with surrogateescape must print as escapes, never crash the report.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        code: int = args.handler(args)
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


@contextlib.contextmanager
def _one_run(ending: bool) -> Iterator[None]:
    """A lint or an audit: a few thousand short-lived objects and few cycles, then the exit.

    The cycle collector is paused while it runs (it would walk every object again and again for
    almost nothing), and whatever is alive at exit is frozen, so that the interpreter's last
    full collection does not walk it all once more. When the process is ``ending`` right
    after, the collector stays off: turned on, its first collection would walk every object
    once more. Long-lived commands (the daemon) never come here.
    """
    global _FREEZE_AT_EXIT  # noqa: PLW0603 - registered once per process
    if not _FREEZE_AT_EXIT:
        atexit.register(gc.freeze)
        _FREEZE_AT_EXIT = True
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled and not ending:
            gc.enable()


_FREEZE_AT_EXIT = False
