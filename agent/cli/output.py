"""Where a command's words go: its output to stdout or a file replaced atomically (``-o FILE``),
why it cannot go on to stderr."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from agent.core.atomic import write_atomic
from agent.core.diagnostic import Diagnostic

if TYPE_CHECKING:
    from agent.core import layout
    from agent.seccomp.compile import CompiledFilter
    from agent.seccomp.model import Profile


def write_output(data: bytes, output: Path | None, mode: int) -> str | None:
    """``data`` to stdout as it is, or atomically to ``output`` with ``mode``; None when written,
    else why not (``cannot write FILE: reason``)."""
    if output is None:
        sys.stdout.flush()  # what was printed before comes first
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return None
    try:
        write_atomic(output, data, mode=mode)
    except OSError as exc:
        return f"cannot write {output}: {exc.strerror or exc}"
    return None


def say_wrote(path: Path, then: str = "", *, to: TextIO | None = None) -> None:
    """The one way a command says it wrote a file: ``wrote PATH`` (and ``then``), on stdout, or
    on ``to`` when stdout carries something else (JSON, a diff)."""
    print(f"wrote {path}{then}", file=to or sys.stdout)


def say_invalid(diagnostics: Iterable[Diagnostic], verdict: str) -> None:
    """A document that cannot be used, on stderr: each of its diagnostics, then
    ``hostguard: verdict``."""
    for diagnostic in diagnostics:
        print(diagnostic, file=sys.stderr)
    print(f"hostguard: {verdict}", file=sys.stderr)


def profile_or_say(path: Path) -> Profile | None:
    """The seccomp profile at ``path``, or None after saying on stderr why it cannot be used."""
    from agent.seccomp.profile import load_profile  # noqa: PLC0415 - seccomp commands only

    loaded = load_profile(path)
    if isinstance(loaded, list):
        say_invalid(loaded, f"invalid profile {path}")
        return None
    return loaded


def compiled_or_say(path: Path, mode: str | None) -> CompiledFilter | None:
    """The filter the profile at ``path`` compiles to (in ``mode``, if given), or None after
    saying on stderr why it cannot be used."""
    from agent.seccomp.compile import build_filter  # noqa: PLC0415 - seccomp commands only
    from agent.seccomp.plan import CompileError  # noqa: PLC0415 - seccomp commands only

    loaded = profile_or_say(path)
    if loaded is None:
        return None
    try:
        return build_filter(loaded, mode)
    except CompileError as exc:
        print(f"hostguard: cannot compile {path}: {exc}", file=sys.stderr)
        return None


def lay_out(steps: list[layout.Step], dry_run: bool) -> int:
    """Write the steps (unless ``dry_run``), saying what each does; the exit status: 0 done, 1 a
    file kept, 2 something in the way (nothing written) or a write failed (the steps told
    before it were written)."""
    from agent.core import layout  # noqa: PLC0415 - the installers only, not every command

    blocked = [s for s in steps if s.state is layout.State.BLOCKED]
    for step in blocked:
        # What is in the way of a folder is in the way of all it would hold: told once.
        if not any(step.target.is_relative_to(b.target) for b in blocked if b is not step):
            print(f"hostguard: cannot write {step.target}: {step.difference}", file=sys.stderr)
    if blocked:
        print("hostguard: nothing written", file=sys.stderr)
        return 2
    kept = False
    for step in steps:
        if step.state is layout.State.KEEP:
            kept = True
            print(f"{'would keep' if dry_run else 'kept'} {step.target}: differs from what "
                  "hostguard writes (--force replaces it)")
            print(step.difference)
            continue
        if step.state is layout.State.UNCHANGED:
            print(f"unchanged {step.target}")
            continue
        if not dry_run:
            try:
                layout.apply([step])
            except OSError as exc:
                print(f"hostguard: cannot write {exc.filename or step.target}: "
                      f"{exc.strerror or exc}", file=sys.stderr)
                return 2
        verb = "created" if step.state is layout.State.CREATE else "replaced"
        what = "folder" if step.entry.content is None else "file"
        print(f"{'would ' + verb[:-1] if dry_run else verb} {step.target} "
              f"({what}, mode {step.entry.mode:04o})")
        if step.state is layout.State.REPLACE:
            print(step.difference)
    return 1 if kept else 0
