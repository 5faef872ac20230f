"""Assembly: the planned rules handed to libseccomp, in a child process that can be killed.

libseccomp 2.5.4 never returns from ``seccomp_rule_add`` for some rule sets (measured: ``ge 2``
then ``lt 2 and gt 7`` then ``lt 2 and eq 7`` on one syscall), so the filter is built where it
can be killed: a child process given :data:`ASSEMBLY_SECONDS`. The child is spawned, never
forked (the daemon compiles while its watchdog and metrics threads run, and a forked child of a
threaded process inherits their locks in whatever state they were): a fresh interpreter
(``python -I -S``, importing from the parent's ``sys.path``) runs
:func:`agent.seccomp.libseccomp.main`, the request in an anonymous file on its stdin, the answer
on a pipe. The bound starts once the child says it is ready (an interpreter starting on a busy
host gets :data:`START_SECONDS` for that), so the filter gets the same two seconds it got from a
fork.

Everything but the libseccomp calls happens here: which rule goes to which architecture with
which action value, the binary tree above :data:`TREE_THRESHOLD` syscalls with rules
(``CTL_OPTIMIZE`` = 2; libseccomp once mishandled level 2 with no rules), and the messages made
of what it refused.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from agent.core.record import record
from agent.seccomp import syscalls
from agent.seccomp.libseccomp import OPS, Request
from agent.seccomp.model import Action, Profile
from agent.seccomp.plan import CompileError, Emitted, action_value, where

TREE_THRESHOLD = 8
"""More syscalls with rules than this (on one architecture) -> binary-tree optimisation."""
ASSEMBLY_SECONDS = 2.0
"""Time libseccomp gets to build one filter (2.5.4 loops forever on some rule combinations),
counted from when the child is ready."""
START_SECONDS = 60.0
"""Time the child gets to start (an interpreter and libseccomp loaded) on a busy host."""

_ROOT = str(Path(__file__).resolve().parents[2])
"""The folder holding the ``agent`` package, first on the child's path."""
_BOOT = ("import sys; sys.path[:] = sys.argv[1:]; from agent.seccomp.libseccomp import main; "
         "sys.exit(main())")
_ENV = ("PATH", "LD_LIBRARY_PATH")
"""All the child inherits of the environment: where the loader and ``ctypes.util`` look for
libseccomp."""


@record
class Built:
    """A filter libseccomp built (not yet checked)."""

    program: bytes
    """The BPF program (``seccomp_export_bpf``)."""
    listing: str
    """libseccomp's PFC listing of it."""
    attributes: dict[str, int]
    """Filter attributes set (``nnp``, ``tsync``, ``optimize``, ``sysrawrc``, ``badarch``)."""


def assemble(profile: Profile, arches: Sequence[str], emitted: Sequence[Emitted], *,
             tree: bool | None, numbers: dict[tuple[str, str], int], order: str,
             default: Action, badarch: Action) -> Built | str:
    """Build the filter in a spawned child; the filter, or why not (a hang, a crash).

    ``order``: ``planned`` (as :func:`agent.seccomp.plan.plan` made them), ``short-first`` or
    ``long-first`` (by condition count). Raises :class:`CompileError` for a rule, attribute or
    merge libseccomp refused (at the rule's or the profile's location) and when the child could
    not be started.
    """
    ordered = list(emitted)
    if order != "planned":
        ordered.sort(key=_insertion_order, reverse=order == "long-first")
    per_arch = [[e for e in ordered if (e.syscall, arch) in numbers] for arch in arches]
    native = syscalls.native_arch()
    request: Request = {
        "default": action_value(default), "badarch": action_value(badarch),
        "nnp": int(profile.no_new_privs),
        "filters": [{
            "token": None if arch == native else syscalls.arch_token(arch),
            "optimize": 2 if (tree if tree is not None
                              else len({e.syscall for e in rules}) > TREE_THRESHOLD) else 1,
            "rules": [[action_value(e.action), numbers[(e.syscall, arch)],
                       [[c.index, OPS[c.op], c.a, c.b] for c in e.conds]] for e in rules],
        } for arch, rules in zip(arches, per_arch, strict=True)],
    }
    answer = _run(request)
    if isinstance(answer, str):
        return answer
    if "refused" in answer:
        f, r = answer["refused"]
        rule, arch = per_arch[f][r], arches[f]
        raise CompileError(f"libseccomp refused the rule {rule.action} for {rule.syscall} on "
                           f"{arch} ({', '.join(map(str, rule.conds)) or 'no conditions'}): "
                           f"{answer['strerror']}", where(profile, rule.syscall))
    if "merge" in answer:
        raise CompileError(f"libseccomp could not merge the {arches[answer['merge']]} filter: "
                           f"{answer['strerror']}", profile.location)
    if "attribute" in answer:
        raise CompileError(f"libseccomp refused filter attribute {answer['attribute']}="
                           f"{answer['value']}: {answer['strerror']}")
    if "failed" in answer:
        raise CompileError(f"libseccomp failed: {answer['failed']}")
    return Built(bytes.fromhex(answer["bpf"]), str(answer["pfc"]),
                 {str(k): int(v) for k, v in answer["attributes"].items()})


def _insertion_order(rule: Emitted) -> tuple[int, tuple[int, ...]]:
    return len(rule.conds), tuple(c.index for c in rule.conds)


def _run(request: Request) -> dict[str, Any] | str:
    """The child's answer to ``request``, or why there is none (it overran or crashed)."""
    with _memfd("hostguard-assembly") as given, _memfd("hostguard-assembly-errors") as errors:
        given.write(json.dumps(request).encode())
        given.seek(0)
        written = _exchange(given, errors)
    if written is None:
        return f"libseccomp did not finish building the filter in {ASSEMBLY_SECONDS:g}s"
    try:
        answer: dict[str, Any] = json.loads(written)
    except ValueError:
        return "libseccomp crashed while building the filter"
    return answer


def _memfd(name: str) -> BinaryIO:
    """An anonymous file (no ``/tmp`` needed), for the caller to close."""
    return open(os.memfd_create(name, os.MFD_CLOEXEC), "w+b")


def _exchange(given: BinaryIO, errors: BinaryIO) -> bytes | None:
    """Start the child on ``given``: what it writes after its ready newline, None if it overran
    :data:`ASSEMBLY_SECONDS` (it is killed). Raises :class:`CompileError` when it cannot be
    started or does not get ready (its last line of ``errors`` says why)."""
    paths = dict.fromkeys([_ROOT, *(os.path.abspath(p) for p in sys.path)])
    env = {name: os.environ[name] for name in _ENV if name in os.environ}
    read_end, write_end = os.pipe()
    try:
        try:
            child = subprocess.Popen([sys.executable, "-I", "-S", "-c", _BOOT, *paths],
                                     stdin=given, stdout=write_end, stderr=errors, env=env)
        except OSError as err:
            raise CompileError(f"cannot start the libseccomp helper: {err}") from None
        finally:
            os.close(write_end)  # the child's copy is the only one left: its exit is our EOF
        with child:  # waits for it on the way out
            try:
                ready = _ready(read_end)
                written = _rest(read_end) if ready else None
            finally:
                child.kill()  # a zombie already unless it overran or hangs starting
    finally:
        os.close(read_end)
    if not ready:
        errors.seek(0)
        why = errors.read().decode(errors="replace").strip().splitlines()
        raise CompileError("cannot start the libseccomp helper"
                           + (f": {why[-1]}" if why else f" in {START_SECONDS:g}s"))
    return written


def _ready(fd: int) -> bool:
    """Whether the child wrote its ready newline within :data:`START_SECONDS`."""
    return bool(select.select([fd], [], [], START_SECONDS)[0]) and os.read(fd, 1) == b"\n"


def _rest(fd: int) -> bytes | None:
    """All the child writes until it exits; None if that takes over :data:`ASSEMBLY_SECONDS`."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + ASSEMBLY_SECONDS
    while True:
        left = deadline - time.monotonic()
        if not select.select([fd], [], [], max(left, 0))[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
