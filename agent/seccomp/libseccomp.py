"""libseccomp itself: the one module that builds filters with it, run as a child process.

:func:`build` takes a :data:`Request` (what :mod:`agent.seccomp.assemble` decided: one filter per
architecture, its attributes and its rules as libseccomp values) and returns the program and
its PFC listing, or what libseccomp refused. :func:`main` is the child's entry point: the
request on stdin (JSON), a newline on stdout once the interpreter and libseccomp are loaded (the
parent's time bound starts then), the answer (JSON) after it. It imports nothing of hostguard,
so the child starts with little more than the interpreter and pyseccomp.

Filter attributes: ``CTL_NNP`` = the profile's no_new_privs, ``CTL_TSYNC`` = 1,
``API_SYSRAWRC`` = 1 (the kernel's own errno on a failed load), ``ACT_BADARCH`` and, where the
request asks for it, ``CTL_OPTIMIZE`` = 2 (binary tree). The numbers are libseccomp's ``enum
scmp_filter_attr`` (``seccomp.h`` 2.5, stable since 2.5.0); the optional ones are feature-tested
(an older libseccomp lacks them and the filter is still exact) and the answer lists those set.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any

import pyseccomp

ATTR_ACT_BADARCH = 2
ATTR_CTL_NNP = 3
ATTR_CTL_TSYNC = 4
ATTR_CTL_OPTIMIZE = 8
ATTR_API_SYSRAWRC = 9
"""libseccomp ``enum scmp_filter_attr`` values (``SCMP_FLTATR_*``)."""
OPS = {"ne": 1, "lt": 2, "le": 3, "eq": 4, "ge": 5, "gt": 6, "masked_eq": 7}
"""libseccomp ``enum scmp_compare``."""

Request = dict[str, Any]
"""What to build (JSON): ``default`` and ``badarch`` (``SCMP_ACT_*`` values), ``nnp`` (0 or 1)
and ``filters``, one per architecture, merged in order: ``token`` (``SCMP_ARCH_*``; None for
the native one), ``optimize`` (1 or 2) and ``rules``, each ``[action value, syscall number,
[[index, op, a, b], ...]]`` in the order they are added."""


def main() -> int:
    """The child: a :data:`Request` on stdin, the answer of :func:`build` on stdout."""
    out = sys.stdout.buffer
    out.write(b"\n")
    out.flush()
    try:
        answer = build(json.loads(sys.stdin.buffer.read()))
    except BaseException as err:
        answer = {"failed": str(err)}
    out.write(json.dumps(answer).encode())
    out.flush()
    return 0


def build(request: Request) -> dict[str, Any]:
    """Run ``request`` through libseccomp: ``bpf`` (hex), ``pfc`` and ``attributes``; or what
    it refused: ``refused`` ([filter, rule]), ``merge`` (filter) or ``attribute`` (and
    ``value``), each with libseccomp's ``strerror``."""
    attributes: dict[str, int] = {}
    handle: Any = None
    for f, spec in enumerate(request["filters"]):
        ctx = pyseccomp.SyscallFilter(request["default"])
        if spec["token"] is not None:
            ctx.add_arch(spec["token"])
            ctx.remove_arch(pyseccomp.Arch.NATIVE)
        wanted = [("badarch", ATTR_ACT_BADARCH, request["badarch"], True),
                  ("nnp", ATTR_CTL_NNP, request["nnp"], True),
                  ("tsync", ATTR_CTL_TSYNC, 1, True),
                  ("sysrawrc", ATTR_API_SYSRAWRC, 1, False)]
        if spec["optimize"] == 2:
            wanted.append(("optimize", ATTR_CTL_OPTIMIZE, 2, False))
        for label, attr, value, required in wanted:
            try:
                ctx.set_attr(attr, value)
            except OSError as err:
                if required:
                    return {"attribute": label, "value": value, "strerror": err.strerror}
                continue  # an older libseccomp: feature absent, the filter is still exact
            attributes[label] = value
        attributes.setdefault("optimize", 1)
        for r, (action, number, conds) in enumerate(spec["rules"]):
            try:
                ctx.add_rule(action, number, *(pyseccomp.Arg(*c) for c in conds))
            except OSError as err:
                return {"refused": [f, r], "strerror": err.strerror}
        if handle is None:
            handle = ctx
        else:
            try:
                handle.merge(ctx)
            except OSError as err:
                return {"merge": f, "strerror": err.strerror}
    return {"bpf": _export(handle.export_bpf).hex(), "pfc": _export(handle.export_pfc).decode(),
            "attributes": attributes}


def _export(method: Any) -> bytes:
    """What ``seccomp_export_bpf``/``_pfc`` write (to a descriptor)."""
    with open(os.memfd_create("hostguard-export", os.MFD_CLOEXEC), "w+b") as out:
        method(out)
        out.seek(0)
        return out.read()


def syscall_token(name: str) -> int:
    """libseccomp's number for ``name`` across architectures (its native number, or a
    negative pseudo-number for one the native architecture lacks)."""
    return int(pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name))


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
