"""Assembly: the planned rules handed to libseccomp, in a child process that can be killed.

libseccomp 2.5.4 never returns from ``seccomp_rule_add`` for some rule sets (measured: ``ge 2``
then ``lt 2 and gt 7`` then ``lt 2 and eq 7`` on one syscall), so the filter is built in a forked
child with a time bound (:data:`ASSEMBLY_SECONDS`).

Filter attributes: ``CTL_NNP`` = ``profile.no_new_privs``, ``CTL_TSYNC`` = 1, ``API_SYSRAWRC`` = 1
(the kernel's own errno on a failed load) and, above :data:`TREE_THRESHOLD` syscalls with rules,
``CTL_OPTIMIZE`` = 2 (binary tree; libseccomp once mishandled level 2 with no rules). The numbers
are libseccomp's ``enum scmp_filter_attr`` (``seccomp.h`` 2.5): each is feature-tested at runtime
and recorded in :attr:`Built.attributes`.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import pyseccomp

from agent.location import Location
from agent.record import record
from agent.seccomp import syscalls
from agent.seccomp.model import Action, Profile
from agent.seccomp.plan import CompileError, Emitted, action_value, where

TREE_THRESHOLD = 8
"""More syscalls with rules than this (on one architecture) -> binary-tree optimisation."""
ASSEMBLY_SECONDS = 2.0
"""Time libseccomp gets to build one filter (2.5.4 loops forever on some rule combinations)."""

ATTR_ACT_BADARCH = 2
ATTR_CTL_NNP = 3
ATTR_CTL_TSYNC = 4
ATTR_CTL_OPTIMIZE = 8
ATTR_API_SYSRAWRC = 9
"""libseccomp ``enum scmp_filter_attr`` values (``SCMP_FLTATR_*``, stable since 2.5.0)."""

_OPS = {"ne": 1, "lt": 2, "le": 3, "eq": 4, "ge": 5, "gt": 6, "masked_eq": 7}
"""libseccomp ``enum scmp_compare``."""


@record
class Built:
    """A filter libseccomp built (not yet checked)."""

    program: bytes
    """The BPF program (``seccomp_export_bpf``)."""
    listing: str
    """libseccomp's PFC listing of it."""
    attributes: dict[str, int]
    """Filter attributes set (``nnp``, ``tsync``, ``optimize``, ``sysrawrc``, ``badarch``)."""


def syscall_token(name: str) -> int:
    """libseccomp's number for ``name`` across architectures (its native number, or a
    negative pseudo-number for one the native architecture lacks)."""
    return int(pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name))


def assemble(profile: Profile, arches: Sequence[str], emitted: Sequence[Emitted], *,
             tree: bool | None, numbers: dict[tuple[str, str], int], order: str,
             default: Action, badarch: Action) -> Built | str:
    """Build the filter in a forked child; the filter, or why not (a hang, a crash).

    ``order``: ``planned`` (as :func:`agent.seccomp.plan.plan` made them), ``short-first`` or
    ``long-first`` (by condition count). Raises :class:`CompileError` for a rule, attribute or
    merge libseccomp refused.
    """
    attributes: dict[str, int] = {}
    built = _assemble_bounded(profile, arches, emitted, numbers=numbers, order=order, tree=tree,
                              default=default, badarch=badarch, attributes=attributes)
    if isinstance(built, str):
        return built
    return Built(built[0], built[1], attributes)


def _export(method: Any) -> bytes:
    with tempfile.TemporaryFile() as tmp:
        method(tmp)
        tmp.seek(0)
        return tmp.read()


def _assemble_bounded(profile: Profile, arches: Sequence[str], emitted: Sequence[Emitted], *,
                      tree: bool | None,
                      numbers: dict[tuple[str, str], int], order: str, default: Action,
                      badarch: Action, attributes: dict[str, int]) -> tuple[bytes, str] | str:
    """``(bpf, pfc)`` from a forked child, or why not.

    libseccomp 2.5.4 never returns from ``seccomp_rule_add`` for some rule sets (measured: ``ge
    2`` then ``lt 2 and gt 7`` then ``lt 2 and eq 7`` on one syscall), so it runs where it can be
    killed. A CompileError in the child (a rule refused) is raised again here.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 0
        try:
            os.close(read_end)
            got: dict[str, int] = {}
            handle = _assemble(profile, arches, emitted, numbers=numbers, order=order, tree=tree,
                               default=default, badarch=badarch, attributes=got)
            payload = json.dumps({"bpf": _export(handle.export_bpf).hex(), "attributes": got,
                                  "pfc": _export(handle.export_pfc).decode()})
        except CompileError as err:
            payload = json.dumps({"error": err.message,
                                  "at": str(err.location) if err.location else None})
        except BaseException as err:
            payload = json.dumps({"error": f"libseccomp failed: {err}", "at": None})
        try:
            data = payload.encode()
            while data:
                data = data[os.write(write_end, data):]
        except BaseException:
            code = 1
        os._exit(code)
    os.close(write_end)
    chunks: list[bytes] = []
    deadline = time.monotonic() + ASSEMBLY_SECONDS
    try:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([read_end], [], [], max(left, 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                return f"libseccomp did not finish building the filter in {ASSEMBLY_SECONDS:g}s"
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    try:
        answer = json.loads(b"".join(chunks))
    except ValueError:
        return "libseccomp crashed while building the filter"
    if "error" in answer:
        at = answer["at"]
        location = None
        if at:
            path, line, col = at.rsplit(":", 2)
            location = Location(path, int(line), int(col))
        raise CompileError(answer["error"], location)
    attributes.update(answer["attributes"])
    return bytes.fromhex(answer["bpf"]), str(answer["pfc"])


def _assemble(profile: Profile, arches: Sequence[str], emitted: Sequence[Emitted], *,
              tree: bool | None,
              numbers: dict[tuple[str, str], int], order: str, default: Action,
              badarch: Action, attributes: dict[str, int]) -> Any:
    ordered = list(emitted)
    if order != "planned":
        ordered.sort(key=_insertion_order, reverse=order == "long-first")
    handle: Any = None
    for arch in arches:
        per_arch = [e for e in ordered if (e.syscall, arch) in numbers]
        ctx = _context(arch, default, badarch, nnp=profile.no_new_privs, rules=per_arch, tree=tree,
                       attributes=attributes)
        for rule in per_arch:
            args = [pyseccomp.Arg(c.index, _OPS[c.op], c.a, c.b) for c in rule.conds]
            try:
                ctx.add_rule(action_value(rule.action), numbers[(rule.syscall, arch)], *args)
            except OSError as err:
                raise CompileError(f"libseccomp refused the rule {rule.action} for "
                                   f"{rule.syscall} on {arch} "
                                   f"({', '.join(map(str, rule.conds)) or 'no conditions'}): "
                                   f"{err.strerror}", where(profile, rule.syscall)) from None
        if handle is None:
            handle = ctx
        else:
            try:
                handle.merge(ctx)
            except OSError as err:
                raise CompileError(f"libseccomp could not merge the {arch} filter: "
                                   f"{err.strerror}", profile.location) from None
    return handle


def _insertion_order(rule: Emitted) -> tuple[int, tuple[int, ...]]:
    return len(rule.conds), tuple(c.index for c in rule.conds)


def _context(arch: str, default: Action, badarch: Action, *, nnp: bool, tree: bool | None,
             rules: Sequence[Emitted], attributes: dict[str, int]) -> Any:
    ctx = pyseccomp.SyscallFilter(action_value(default))
    if arch != syscalls.native_arch():
        ctx.add_arch(syscalls.arch_token(arch))
        ctx.remove_arch(pyseccomp.Arch.NATIVE)
    if tree is None:
        tree = len({r.syscall for r in rules}) > TREE_THRESHOLD
    optimize = 2 if tree else 1
    wanted = [("badarch", ATTR_ACT_BADARCH, action_value(badarch), True),
              ("nnp", ATTR_CTL_NNP, int(nnp), True),
              ("tsync", ATTR_CTL_TSYNC, 1, True),
              ("sysrawrc", ATTR_API_SYSRAWRC, 1, False)]
    if optimize == 2:
        wanted.append(("optimize", ATTR_CTL_OPTIMIZE, 2, False))
    for label, attr, value, required in wanted:
        try:
            ctx.set_attr(attr, value)
        except OSError as err:
            if required:
                raise CompileError(f"libseccomp refused filter attribute {label}={value}: "
                                   f"{err.strerror}") from None
            continue  # an older libseccomp: feature absent, the filter is still exact
        attributes[label] = value
    attributes.setdefault("optimize", 1)
    return ctx


def libseccomp_version() -> str:
    """``major.minor.micro`` of the loaded libseccomp (for reports and benchmarks)."""
    lib = pyseccomp._libseccomp  # pyseccomp exposes no version call
    try:
        lib.seccomp_version.restype = ctypes.POINTER(_Version)
        ver = lib.seccomp_version().contents
    except (AttributeError, ValueError):
        return "unknown"
    return f"{ver.major}.{ver.minor}.{ver.micro}"


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]
