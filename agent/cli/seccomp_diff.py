"""``hostguard seccomp diff A B``: two profiles compared by what their filters do.

Part of the CLI layer: registered by :mod:`agent.cli.seccomp`. Both profiles are compiled as
``hostguard exec`` loads them and compared with the verifier (:func:`agent.seccomp.verify.compare`,
A in the place of the loaded stack, B in that of the profile): two profiles that compile to
filters doing the same thing are equal whatever their text.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli.output import profile_or_say

EXIT_DIFFERENT = 1
EXIT_INVALID = 2
KINDS = {"abi_only_in_a": "abi_only_in_a", "abi_only_in_b": "abi_only_in_b",
         "allowed_extra": "only_a_permits",
         "denied_extra": "only_b_permits", "action_differs": "action_differs",
         "undecided": "undecided"}
"""The verifier's kinds as the two sides of a diff read them."""


def add_diff(commands: Any) -> None:
    cmd = commands.add_parser(
        "diff", help="compare two profiles by effect, syscall by syscall on every ABI",
        description="Compile both profiles as 'hostguard exec' loads them and compare what the "
        "filters do on every syscall number of every ABI this CPU can enter (and every "
        "architecture either lists), argument conditions included: profiles whose filters "
        "do the same are equal whatever their text. Each difference is printed with a call "
        "that shows it. Exit 0 equal, 1 different (or undecidable), 2 invalid input.")
    cmd.add_argument("a", type=Path, metavar="A", help="first profile")
    cmd.add_argument("b", type=Path, metavar="B", help="second profile")
    cmd.add_argument("--format", choices=["text", "json"], default="text")
    cmd.set_defaults(handler=_diff)


def _diff(args: argparse.Namespace) -> int:
    from agent.seccomp import verify  # noqa: PLC0415 - this command only
    from agent.seccomp.compile import build_filter  # noqa: PLC0415 - this command only
    from agent.seccomp.plan import CompileError  # noqa: PLC0415 - this command only

    compiled = []
    for path in (args.a, args.b):
        loaded = profile_or_say(path)
        if loaded is None:
            return EXIT_INVALID
        try:
            compiled.append(build_filter(loaded))
        except CompileError as exc:
            print(f"hostguard: cannot compile {path}: {exc}", file=sys.stderr)
            return EXIT_INVALID
    one, other = compiled
    result = verify.compare([one.bpf()], other, one.arches)
    privs = (one.profile.no_new_privs, other.profile.no_new_privs)
    equal = result.equivalent and privs[0] == privs[1]
    differences = _fold_abis(result.differences, one.arches, other.arches)
    names = ("A", "B")
    if args.format == "json":
        print(json.dumps({
            "a": str(args.a), "b": str(args.b), "equal": equal, "arches": list(result.arches),
            "syscalls": result.syscalls,
            "no_new_privs": {"a": privs[0], "b": privs[1]},
            "differences": [{"kind": KINDS[d.kind], "arch": d.arch, "syscall": d.syscall,
                             "nr": d.nr, "a": d.loaded, "b": d.declared, "count": d.count,
                             "args": None if d.args is None else list(d.args),
                             "instruction_pointer": d.instruction_pointer}
                            for d in differences],
        }, indent=2))
    else:
        print(f"A: {args.a}\nB: {args.b}")
        for diff in differences:
            print(_line(diff, names))
        if privs[0] != privs[1]:
            print(f"no_new_privs: {names[0]} {str(privs[0]).lower()}, "
                  f"{names[1]} {str(privs[1]).lower()}")
        count = len(differences) + (privs[0] != privs[1])
        verdict = "equal" if equal else f"{count} difference(s)"
        print(f"A and B: {verdict} ({result.syscalls} syscall numbers on "
              f"{', '.join(result.arches)})")
    return 0 if equal else EXIT_DIFFERENT


def _fold_abis(found: Any, mine: tuple[str, ...], theirs: tuple[str, ...]) -> list[Any]:
    """An ABI only one profile handles (the other kills all of it) as one difference: the
    count of syscall numbers that differ, not one line each."""
    from agent.seccomp.verify import Difference  # noqa: PLC0415 - this command only

    out = [d for d in found if (d.arch in mine) == (d.arch in theirs)]
    for arch in (*mine, *(a for a in theirs if a not in mine)):
        if (arch in mine) == (arch in theirs):
            continue
        here = [d for d in found if d.arch == arch]
        if here:
            side = "a" if arch in mine else "b"
            numbers: dict[int | None, int] = {}  # a number may differ in several ways
            for diff in here:
                numbers[diff.nr] = numbers.get(diff.nr, 0) + diff.count \
                    if diff.nr is None else diff.count
            count = sum(numbers.values())
            out.append(Difference(f"abi_only_in_{side}", arch, "", None, "", "", count=count))
    return out


def _line(diff: Any, names: tuple[str, str]) -> str:
    a, b = names
    if diff.kind.startswith("abi_only_in_"):
        handles, kills = (a, b) if diff.kind.endswith("_a") else (b, a)
        return (f"{diff.arch}: only {handles} handles this ABI, {kills} kills every "
                f"{diff.arch} syscall ({diff.count} syscall number(s) differ)")
    if diff.kind == "undecided":
        return f"{diff.call}: cannot decide: {diff.loaded}"
    return f"{diff.call}: {a} {diff.loaded}, {b} {diff.declared}"
