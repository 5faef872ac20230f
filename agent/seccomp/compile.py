"""Compile a :class:`~agent.seccomp.model.Profile` into a libseccomp filter (BPF, PFC, load).

What the compiled filter does, for a syscall ``S`` of an architecture the profile lists:

1. the ``deny`` rules naming ``S``, in order, then the ``rules`` naming ``S``, in order: the first
   rule whose argument conditions all hold decides (so a deny always wins over an allow);
2. no rule matches: ``default_action``.

Any other ABI the CPU can enter is killed (``SCMP_FLTATR_ACT_BADARCH`` = kill_process): on
x86_64 that is i386 (``int 0x80``, ``AUDIT_ARCH_I386``) and x32 (``nr | 0x40000000`` under
``AUDIT_ARCH_X86_64``, which libseccomp's x86_64 filter sends to the bad-arch action itself).
In ``log`` mode every action other than allow becomes ``log``: nothing is denied, the kernel
logs what would have been.

Arguments are 64-bit values, except on the 32-bit ABIs (:data:`NARROW_ARGS`: ``x86``, ``arm``
...), whose syscalls get the low 32 bits of each argument only: there a condition is about those
32 bits, and a negative value means its 32-bit two's complement (``eq -100`` is
``0xffffff9c``, as libseccomp compiles it). x32 arguments are 64-bit.

Why the rules are rewritten before they reach libseccomp (measured with libseccomp 2.5.4):
libseccomp keeps one decision tree per syscall and has no notion of rule order. For the same
syscall it *silently* keeps the first of two unconditional rules with different actions, lets an
unconditional rule swallow every conditional one whatever their actions, and rejects two
conditions on the same argument in one rule (EINVAL) and a rule whose action is the default one
(EACCES). So the ordered rules of each syscall are turned into rules that never overlap unless
they share an action: rule ``i`` becomes ``cond_i AND NOT cond_j`` for every earlier rule ``j``
with another action (``NOT (a AND b)`` is ``NOT a OR NOT b``: one libseccomp rule per choice;
``NOT masked_eq(mask, v)`` is one single-bit ``masked_eq`` per bit of the mask), conditions on the
same argument are merged (``eq 2 AND ne 17`` is ``eq 2``), impossible combinations dropped,
everything after an unconditional rule dropped as unreachable, and rules with the default action
left out (they still shadow later rules). A combination libseccomp cannot express in one rule
(``ne 1 AND ne 2`` on one argument, a range) is a :class:`CompileError` naming both rules, never a
filter that does something else.

Names resolve per architecture through :mod:`agent.seccomp.syscalls`: a name that exists on other
architectures only is skipped there (listed in :attr:`CompiledFilter.skipped`); a name that is a
syscall nowhere is an error when written by hand and skipped when it came from an ``@group``
(systemd's groups name a few calls libseccomp 2.5 does not know).

Trust but verify: libseccomp 2.5.4 also loses rules outright for some combinations of conditions
on different arguments of one syscall (the BPF disagrees with its own PFC listing), and loops
forever on others. So the filter is built in a forked child with a time bound
(:data:`ASSEMBLY_SECONDS`), and the BPF it returns is run through :mod:`agent.seccomp.bpf`
for every syscall number of every architecture and, for syscalls with conditions, for every
combination of the argument values that matter, with the ``seccomp_data`` the kernel builds
(x32 as ``AUDIT_ARCH_X86_64`` with ``nr | 0x40000000``, 32-bit ABIs with any high half in the
argument registers: :func:`check`); on a difference the next of
:data:`STRATEGIES` is tried, and if none checks out the profile is refused.
:meth:`CompiledFilter.load` loads exactly the checked bytes with ``seccomp(2)``.

Filter attributes: ``CTL_NNP`` = ``profile.no_new_privs``, ``CTL_TSYNC`` = 1, ``API_SYSRAWRC`` = 1
(the kernel's own errno on a failed load) and, above :data:`TREE_THRESHOLD` syscalls with rules,
``CTL_OPTIMIZE`` = 2 (binary tree; libseccomp once mishandled level 2 with no rules). The numbers
are libseccomp's ``enum scmp_filter_attr`` (``seccomp.h`` 2.5): each is feature-tested at runtime
and recorded in :attr:`CompiledFilter.attributes`.

::

    compiled = build_filter(profile)          # CompileError on anything it cannot compile exactly
    compiled.bpf()                            # what seccomp(2) gets, as raw sock_filter bytes
    compiled.load()                           # in the process that will execve the target
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import json
import os
import random
import select
import signal
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyseccomp

from agent.core.location import Location
from agent.core.record import record
from agent.seccomp import bpf, syscalls
from agent.seccomp.effective import kernel_token
from agent.seccomp.model import ARG_OPS, Action, ActionKind, ArgCondition, Profile, Rule

U64 = (1 << 64) - 1
U32 = 0xFFFF_FFFF
MODES = ("enforce", "log")
TREE_THRESHOLD = 8
"""More syscalls with rules than this (on one architecture) -> binary-tree optimisation."""
MAX_SPLIT = 4096
"""Upper bound on libseccomp rules one syscall may expand into (``NOT`` of many conditions)."""

ATTR_ACT_BADARCH = 2
ATTR_CTL_NNP = 3
ATTR_CTL_TSYNC = 4
ATTR_CTL_OPTIMIZE = 8
ATTR_API_SYSRAWRC = 9
"""libseccomp ``enum scmp_filter_attr`` values (``SCMP_FLTATR_*``, stable since 2.5.0)."""

_OPS = {"ne": 1, "lt": 2, "le": 3, "eq": 4, "ge": 5, "gt": 6, "masked_eq": 7}
"""libseccomp ``enum scmp_compare``."""


class CompileError(ValueError):
    """A profile the compiler cannot turn into a filter that does exactly what it says."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.message = message
        self.location = location


@dataclass(frozen=True, order=True)
class Cond:
    """One argument comparison as libseccomp takes it (``masked_eq``: ``a`` mask, ``b`` value)."""

    index: int
    op: str
    a: int
    b: int = 0

    def __str__(self) -> str:
        if self.op == "masked_eq":
            return f"arg{self.index} & 0x{self.a:x} == 0x{self.b:x}"
        return f"arg{self.index} {self.op} {self.a}"


Conj = tuple[Cond, ...]
"""Conditions that must all hold, at most one per argument, sorted."""


class _Unsat(Exception):
    """A conjunction no argument values satisfy."""


class _Inexpressible(Exception):
    """A conjunction libseccomp cannot express as one rule."""


@record
class Emitted:
    """One libseccomp rule: ``action`` for ``syscall`` when every condition holds."""

    syscall: str
    action: Action
    conds: Conj


@record
class Skipped:
    """A name left out of one architecture's filter, and why."""

    syscall: str
    arch: str
    reason: str
    """``absent`` (a syscall of other architectures) or ``unknown`` (from a group, unknown)."""


@record
class CompiledFilter:
    """A filter libseccomp generated and :func:`check` accepted, and what went into it."""

    profile: Profile
    mode: str
    """``enforce`` or ``log`` (the profile's, unless overridden)."""
    program: bytes
    """The BPF program (``struct sock_filter`` array, host byte order), as checked."""
    listing: str
    """libseccomp's PFC (pseudo filter code) for the same filter."""
    arches: tuple[str, ...]
    """Architectures the filter handles (libseccomp names); every other one is killed."""
    rules: tuple[Emitted, ...]
    """The rules given to libseccomp, architecture-independent."""
    skipped: tuple[Skipped, ...]
    attributes: dict[str, int]
    """Filter attributes set (``nnp``, ``tsync``, ``optimize``, ``sysrawrc``, ``badarch``)."""
    strategy: str = "planned/planned"
    """Which of :data:`STRATEGIES` produced a filter that checked out."""

    def load(self) -> None:
        """Load into the calling process, exactly the program that was checked.

        Sets no_new_privs first when the profile asks for it, then ``seccomp(2)`` with
        ``SECCOMP_FILTER_FLAG_TSYNC`` (what ``seccomp_load`` does with these attributes).
        Raises OSError with the kernel's errno.
        """
        if self.attributes.get("nnp", 1):
            set_no_new_privs()
        count = len(self.program) // 8
        buffer = ctypes.create_string_buffer(self.program, len(self.program))
        prog = _SockFprog(count, ctypes.cast(buffer, ctypes.c_void_p))
        flags = SECCOMP_FILTER_FLAG_TSYNC if self.attributes.get("tsync", 1) else 0
        ctypes.set_errno(0)
        result = _LIBC.syscall(_seccomp_nr(), SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(prog))
        if result != 0:
            err = ctypes.get_errno() if result < 0 else errno.EBUSY
            message = os.strerror(err) if result < 0 else f"thread {result} cannot be synchronised"
            raise OSError(err, message)

    def bpf(self) -> bytes:
        """The raw BPF program (what ``seccomp_export_bpf`` writes)."""
        return self.program

    def pfc(self) -> str:
        """libseccomp's pseudo-filter-code listing."""
        return self.listing


SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
PR_SET_NO_NEW_PRIVS = 38
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall.restype = ctypes.c_long
_LIBC.prctl.restype = ctypes.c_int


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _seccomp_nr() -> int:
    number = syscalls.resolve("seccomp")
    if number is None:
        raise OSError(errno.ENOSYS, "no seccomp syscall on this architecture")
    return number


def set_no_new_privs() -> None:
    """``prctl(PR_SET_NO_NEW_PRIVS, 1)`` (raises OSError)."""
    if _LIBC.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0),
                   ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _export(method: Any) -> bytes:
    with tempfile.TemporaryFile() as tmp:
        method(tmp)
        tmp.seek(0)
        return tmp.read()


def export_bpf(profile: Profile, mode: str | None = None) -> bytes:
    """Compile ``profile`` and return the raw BPF program."""
    return build_filter(profile, mode).bpf()


def export_pfc(profile: Profile, mode: str | None = None) -> str:
    """Compile ``profile`` and return libseccomp's PFC text."""
    return build_filter(profile, mode).pfc()


# --- actions ------------------------------------------------------------------------------------

def effective(action: Action, mode: str) -> Action:
    """``action`` as ``mode`` applies it: in log mode every non-allow action becomes ``log``."""
    if mode == "log" and action.kind is not ActionKind.ALLOW:
        return Action(ActionKind.LOG)
    return action


def action_value(action: Action) -> int:
    """The ``SCMP_ACT_*`` value of ``action``."""
    kind = action.kind
    if kind is ActionKind.ERRNO:
        if action.errno is None or not 0 <= action.errno <= 0xFFFF:
            raise CompileError(f"errno action needs an error number 0-65535, not {action.errno}")
        return int(pyseccomp.ERRNO(action.errno))
    values = {
        ActionKind.KILL_PROCESS: pyseccomp.KILL_PROCESS,
        ActionKind.KILL_THREAD: pyseccomp.KILL_THREAD,
        ActionKind.TRAP: pyseccomp.TRAP,
        ActionKind.LOG: pyseccomp.LOG,
        ActionKind.ALLOW: pyseccomp.ALLOW,
    }
    return int(values[kind])


# --- conditions ---------------------------------------------------------------------------------

def to_cond(arg: ArgCondition, location: Location | None = None) -> Cond:
    """Check one model condition and convert it (negative values are two's complement u64)."""
    if not 0 <= arg.index <= 5:
        raise CompileError(f"argument index must be 0-5, not {arg.index}", location)
    if arg.op not in ARG_OPS:
        raise CompileError(f"unknown argument op {arg.op!r} (one of {', '.join(ARG_OPS)})",
                           location)
    value = _u64(arg.value, "value", location)
    if arg.op == "masked_eq":
        if arg.mask is None:
            raise CompileError("masked_eq needs a mask", location)
        return Cond(arg.index, "masked_eq", _u64(arg.mask, "mask", location), value)
    if arg.mask is not None:
        raise CompileError(f"a mask only goes with masked_eq, not {arg.op}", location)
    return Cond(arg.index, arg.op, value)


def _u64(value: int, what: str, location: Location | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CompileError(f"{what} must be an integer, not {value!r}", location)
    if -(1 << 63) <= value < 0:
        return value & U64
    if not 0 <= value <= U64:
        raise CompileError(f"{what} {value} does not fit in 64 bits", location)
    return value


def simplify(conds: Iterable[Cond]) -> Conj:
    """Merge the conditions of a conjunction so each argument has at most one.

    Raises ``_Unsat`` when no values satisfy them and ``_Inexpressible`` when one argument keeps
    two conditions libseccomp cannot take in one rule.
    """
    by_index: dict[int, list[Cond]] = {}
    for cond in conds:
        by_index.setdefault(cond.index, []).append(cond)
    out: list[Cond] = []
    for index in sorted(by_index):
        group = sorted(set(by_index[index]))
        if len(group) == 1:
            single = _one(group[0])
            if single is not None:
                out.append(single)
        else:
            out.extend(_merge(index, group))
    return tuple(out)


def _one(cond: Cond) -> Cond | None:
    """A lone condition: None when always true; raises ``_Unsat`` when never true."""
    if cond.op == "masked_eq":
        if cond.b & ~cond.a & U64:
            raise _Unsat
        return None if cond.a == 0 else cond
    if (cond.op, cond.a) in (("lt", 0), ("gt", U64)):
        raise _Unsat
    if (cond.op, cond.a) in (("ge", 0), ("le", U64)):
        return None
    return cond


def _merge(index: int, group: Sequence[Cond]) -> list[Cond]:
    lo, hi, mask, bits = 0, U64, 0, 0
    eqs: set[int] = set()
    nes: set[int] = set()
    for cond in group:
        op, a = cond.op, cond.a
        if op == "eq":
            eqs.add(a)
        elif op == "ne":
            nes.add(a)
        elif op in ("lt", "le"):
            if op == "lt" and a == 0:
                raise _Unsat
            hi = min(hi, a - 1 if op == "lt" else a)
        elif op in ("gt", "ge"):
            if op == "gt" and a == U64:
                raise _Unsat
            lo = max(lo, a + 1 if op == "gt" else a)
        else:  # masked_eq
            if cond.b & ~a & U64 or (bits ^ cond.b) & mask & a:
                raise _Unsat
            mask, bits = mask | a, bits | cond.b
    if mask == U64:
        eqs.add(bits)
    if lo == hi:
        eqs.add(lo)
    if lo > hi or len(eqs) > 1:
        raise _Unsat
    if eqs:
        (x,) = eqs
        if not lo <= x <= hi or x in nes or x & mask != bits:
            raise _Unsat
        return [Cond(index, "eq", x)]
    nes = {n for n in nes if lo <= n <= hi and n & mask == bits}
    parts: list[Cond] = [Cond(index, "ne", n) for n in sorted(nes)]
    if lo > 0:
        parts.append(Cond(index, "ge", lo))
    if hi < U64:
        parts.append(Cond(index, "le", hi))
    if mask:
        parts.append(Cond(index, "masked_eq", mask, bits))
    if len(parts) > 1:
        raise _Inexpressible(" and ".join(str(p) for p in parts))
    return parts


def negate(cond: Cond) -> list[Cond] | None:
    """``NOT cond`` as a disjunction of conditions; None when ``NOT cond`` is always true."""
    flip = {"eq": "ne", "ne": "eq", "lt": "ge", "ge": "lt", "le": "gt", "gt": "le"}
    if cond.op != "masked_eq":
        return [Cond(cond.index, flip[cond.op], cond.a)]
    if cond.b & ~cond.a & U64:
        return None  # the condition never holds
    return [Cond(cond.index, "masked_eq", 1 << bit, (~cond.b) & (1 << bit))
            for bit in range(64) if cond.a >> bit & 1]


@record
class _Entry:
    conds: Conj
    action: Action
    rule: Rule


def order_rules(profile: Profile) -> dict[str, list[tuple[Rule, list[Cond]]]]:
    """Per syscall name, the rules naming it in decision order: deny rules, then rules."""
    table: dict[str, list[tuple[Rule, list[Cond]]]] = {}
    for rule in (*profile.deny, *profile.rules):
        conds = [to_cond(arg, rule.location) for arg in rule.args]
        for name in rule.syscalls:
            table.setdefault(name, []).append((rule, conds))
    return table


def plan(profile: Profile, mode: str | None = None, *,
         disjoint: bool = False) -> tuple[Emitted, ...]:
    """The libseccomp rules for ``profile`` (see the module docstring), architecture-free."""
    mode = _mode(profile, mode)
    default = effective(profile.default_action, mode)
    action_value(default)
    out: list[Emitted] = []
    for name, ordered in order_rules(profile).items():
        entries: list[_Entry] = []
        for rule, conds in ordered:
            action = effective(rule.action, mode)
            action_value(action)
            try:
                conj = simplify(conds)
            except _Unsat:
                continue  # never matches, shadows nothing
            except _Inexpressible as err:
                raise CompileError(f"{name}: libseccomp 2.5 cannot take {err} in one rule",
                                   rule.location) from None
            entries.append(_Entry(conj, action, rule))
            if not conj:
                break  # everything after an unconditional rule is unreachable
        out.extend(_split(name, entries, default, disjoint=disjoint))
    return tuple(out)


def _split(name: str, entries: Sequence[_Entry], default: Action, *,
           disjoint: bool) -> list[Emitted]:
    out: dict[Emitted, None] = {}
    for i, entry in enumerate(entries):
        if entry.action == default:
            continue
        blockers: list[tuple[_Entry, list[Cond]]] = []
        for earlier in entries[:i]:
            if (earlier.action == entry.action and not disjoint) or \
                    _disjoint(entry.conds, earlier.conds):
                continue
            negation = _negation(earlier.conds)
            if negation is None:
                continue
            blockers.append((earlier, negation))
        if any(not neg for _, neg in blockers):
            continue  # shadowed by an earlier unconditional rule
        total = 1
        for _, neg in blockers:
            total *= len(neg)
        if total > MAX_SPLIT:
            raise CompileError(f"{name}: the rules before this one expand into {total} "
                               f"libseccomp rules (limit {MAX_SPLIT}); simplify their argument "
                               "conditions", entry.rule.location)
        for choice in itertools.product(*(neg for _, neg in blockers)):
            try:
                conj = simplify((*entry.conds, *choice))
            except _Unsat:
                continue
            except _Inexpressible as err:
                before = ", ".join(str(e.rule.location) for e, _ in blockers
                                   if e.rule.location)
                raise CompileError(f"{name}: excluding what the earlier rule(s) {before} match "
                                   f"needs {err} on one argument, which libseccomp 2.5 cannot "
                                   "take in one rule; write the conditions so they do not "
                                   "overlap", entry.rule.location) from None
            out.setdefault(Emitted(name, entry.action, conj), None)
    return list(out)


def _disjoint(one: Conj, other: Conj) -> bool:
    try:
        simplify((*one, *other))
    except _Unsat:
        return True
    except _Inexpressible:
        return False
    return False


def _negation(conj: Conj) -> list[Cond] | None:
    """``NOT (c1 AND c2 ...)`` as a disjunction; None if always true, [] if never true."""
    out: list[Cond] = []
    for cond in conj:
        neg = negate(cond)
        if neg is None:
            return None
        out.extend(neg)
    return out


# --- building -----------------------------------------------------------------------------------

def _mode(profile: Profile, mode: str | None) -> str:
    chosen = mode or profile.mode
    if chosen not in MODES:
        raise CompileError(f"mode must be enforce or log, not {chosen!r}", profile.location)
    return chosen


def _arches(profile: Profile) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for arch in profile.architectures or ("native",):
        try:
            out.setdefault(syscalls.canonical_arch(arch), None)
        except syscalls.UnknownArch as err:
            raise CompileError(str(err), profile.location) from None
    return tuple(out)


def hand_written(profile: Profile) -> dict[str, Rule]:
    """Names written out (not from a group) -> the first rule writing them."""
    out: dict[str, Rule] = {}
    for rule in (*profile.deny, *profile.rules):
        written = rule.written or rule.syscalls
        for name in written:
            if not syscalls.is_group(name):
                out.setdefault(name, rule)
    return out


def build_filter(profile: Profile, mode: str | None = None, *,
                 tree: bool | None = None) -> CompiledFilter:
    """Compile ``profile`` (in ``mode``, default the profile's own) into a libseccomp filter.

    Raises :class:`CompileError` (with the rule's location where there is one) for anything that
    cannot be compiled exactly: unknown syscall or architecture, bad condition, a rule combination
    libseccomp cannot express, or libseccomp refusing a rule or attribute. ``tree`` forces the
    binary-tree optimisation on or off (default: on above :data:`TREE_THRESHOLD` syscalls).
    """
    chosen = _mode(profile, mode)
    arches = _arches(profile)
    emitted = plan(profile, chosen)
    default = effective(profile.default_action, chosen)
    badarch = effective(Action(ActionKind.KILL_PROCESS), chosen)
    by_hand = hand_written(profile)

    skipped: list[Skipped] = []
    numbers: dict[tuple[str, str], int] = {}
    for name in order_rules(profile):
        native = syscalls.lookup(name, "native")
        if native.status is syscalls.Status.UNKNOWN:
            if name in by_hand:
                raise CompileError(f"unknown syscall {name!r}", by_hand[name].location)
            skipped.extend(Skipped(name, arch, "unknown") for arch in arches)
            continue
        token = int(pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name))
        for arch in arches:
            if syscalls.lookup(name, arch).status is syscalls.Status.KNOWN:
                numbers[(name, arch)] = token
            else:
                skipped.append(Skipped(name, arch, "absent"))

    reference = {name: [(effective(rule.action, chosen), conds) for rule, conds in ordered]
                 for name, ordered in order_rules(profile).items()}
    failure, why = "", ""
    for disjoint, order in STRATEGIES:
        try:
            rules = plan(profile, chosen, disjoint=True) if disjoint else emitted
        except CompileError:
            continue  # the overlapping plan was tried already; this one is not expressible
        attributes: dict[str, int] = {}
        strategy = f"{'disjoint' if disjoint else 'planned'}/{order}"
        built = _assemble_bounded(profile, arches, rules, numbers=numbers, order=order, tree=tree,
                                  default=default, badarch=badarch, attributes=attributes)
        if isinstance(built, str):  # a hang: other orders hang as well, each costing the bound
            raise CompileError(f"{built} (a libseccomp 2.5 bug with some combinations of "
                               "argument conditions on one syscall; simplify the conditions)",
                               profile.location)
        compiled = CompiledFilter(profile, chosen, built[0], built[1], arches, rules,
                                  tuple(skipped), attributes, strategy)
        found = _difference(compiled, reference, default, badarch)
        if found is None:
            return compiled
        failure, why = (failure, why) if failure else found
    hint = f" ({why})" if why else ""
    raise CompileError(f"{failure}; refusing a filter that does something else than the "
                       f"profile{hint}", _where(profile, failure.split(":", 1)[0]))


STRATEGIES = ((False, "planned"), (False, "short-first"), (False, "long-first"),
              (True, "planned"), (True, "short-first"), (True, "long-first"))
"""How rules reach libseccomp, tried in turn until the generated BPF checks out: overlapping
same-action rules or all rules made disjoint, in plan order or sorted by condition count."""


ASSEMBLY_SECONDS = 2.0
"""Time libseccomp gets to build one filter (2.5.4 loops forever on some rule combinations)."""


def _assemble_bounded(profile: Profile, arches: Sequence[str], emitted: Sequence[Emitted], *,
                      tree: bool | None,
                      numbers: dict[tuple[str, str], int], order: str, default: Action,
                      badarch: Action, attributes: dict[str, int]) -> tuple[bytes, str] | str:
    """Build the filter in a forked child; ``(bpf, pfc)``, or why not.

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
                                   f"{err.strerror}", _where(profile, rule.syscall)) from None
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


# --- checking what libseccomp generated ----------------------------------------------------------

MAX_POINTS = 4096
"""Argument combinations checked per syscall (all of them when there are fewer)."""
OTHER_NUMBERS = range(1024)
"""Syscall numbers checked to get the default action (those without rules)."""
NARROW_ARGS = frozenset({"x86", "arm", "mips", "mipsel", "ppc", "s390", "parisc"})
"""32-bit ABIs: their syscalls get the low 32 bits of each argument register and nothing more
(x86_64 calls the ia32 table with ``(unsigned int)regs->bx`` ...). The filter gets the whole
register: ``populate_seccomp_data`` takes ``syscall_get_arguments``, which for a compat task is
``regs->bx`` ... unmasked, and ``int 0x80`` from 64-bit code keeps the high half the caller left
there (``tests/seccomp/test_compile.py`` measures it). So on these ABIs the profile decides on the
low 32 bits, and :func:`check` runs every argument tuple with several high halves
(:data:`HIGH_HALVES`). x32 is not one of them: x32 syscalls get all 64 bits."""
HIGH_HALVES = (0, 1 << 32, 0xFFFF_FFFF << 32)
"""High halves each argument tuple of a 32-bit ABI also runs with: the decision must not move."""
SIGNED_32 = (1 << 64) - (1 << 31)
"""Values from here up are negative 32-bit numbers sign-extended (-2**31 .. -1): on a 32-bit ABI
they mean the 32-bit two's complement (``-100`` is ``0xffffff9c``), as libseccomp compiles them."""


def kernel_space(arch: str) -> tuple[int, int]:
    """``(seccomp_data.arch, first nr)`` of ``arch`` as the kernel hands them to a filter.

    libseccomp's x32 token (0x4000003e) never reaches a filter: x32 syscalls arrive as
    ``AUDIT_ARCH_X86_64`` with ``nr | 0x40000000``.
    """
    return kernel_token(arch), bpf.X32_SYSCALL_BIT if arch == "x32" else 0


def narrow(cond: Cond) -> Cond:
    """``cond`` as a 32-bit ABI reads it: sign-extended negative values taken in 32 bits."""
    return Cond(cond.index, cond.op, _narrow(cond.a), _narrow(cond.b))


def _narrow(value: int) -> int:
    return value & U32 if value >= SIGNED_32 else value


def holds(cond: Cond, value: int) -> bool:
    """Whether ``cond`` holds for the 64-bit argument ``value``."""
    if cond.op == "masked_eq":
        return value & cond.a == cond.b
    return {"eq": value == cond.a, "ne": value != cond.a, "lt": value < cond.a,
            "le": value <= cond.a, "gt": value > cond.a, "ge": value >= cond.a}[cond.op]


def decide(entries: Sequence[tuple[Action, Sequence[Cond]]], args: Sequence[int],
           default: Action) -> Action:
    """The profile's decision: the first entry whose conditions all hold, else ``default``."""
    for action, conds in entries:
        if all(holds(c, args[c.index]) for c in conds):
            return action
    return default


def _candidates(conds: Iterable[Cond], width: int = 64) -> list[int]:
    top = (1 << width) - 1
    out = {0, top, (1 << 32) & top}
    for cond in conds:
        if cond.op == "masked_eq":
            out.update({cond.b & top, (cond.b | ~cond.a) & top})
            out.update((cond.b ^ (1 << bit)) & top for bit in range(width) if cond.a >> bit & 1)
        else:
            out.update(v & top for v in (cond.a - 1, cond.a, cond.a + 1, cond.a + (1 << 32),
                                         cond.a ^ (1 << (width - 1))))
    return sorted(out)


def _points(conds: Sequence[Cond], width: int = 64) -> list[tuple[int, ...]]:
    indexes = sorted({c.index for c in conds})
    per_index = [_candidates((c for c in conds if c.index == i), width) for i in indexes]
    total = 1
    for values in per_index:
        total *= len(values)
    combos: Iterable[tuple[int, ...]] = itertools.product(*per_index)
    if total > MAX_POINTS:
        rng = random.Random(0)  # noqa: S311 - a reproducible sample, not a secret
        combos = [tuple(rng.choice(values) for values in per_index) for _ in range(MAX_POINTS)]
    out = []
    for combo in combos:
        args = [0] * 6
        for index, value in zip(indexes, combo, strict=True):
            args[index] = value
        out.append(tuple(args))
    return out or [(0,) * 6]


def check(compiled: CompiledFilter, reference: dict[str, list[tuple[Action, list[Cond]]]],
          default: Action, badarch: Action) -> str | None:
    """Run the generated BPF as the kernel would; None, or the first difference from the profile.

    Every syscall number of every listed architecture, with the ``seccomp_data`` the kernel
    builds (:func:`kernel_space`; arguments as in :data:`NARROW_ARGS`); for syscalls with
    conditions every combination of the argument values that matter. Every ABI of this CPU the
    profile does not list, and every other architecture, must get ``badarch``.
    """
    found = _difference(compiled, reference, default, badarch)
    return None if found is None else found[0]


_LOSES_RULES = ("libseccomp 2.5 mishandles some combinations of conditions on different "
                "arguments: give every rule of this syscall conditions on the same arguments")


def _difference(compiled: CompiledFilter,
                reference: dict[str, list[tuple[Action, list[Cond]]]], default: Action,
                badarch: Action) -> tuple[str, str] | None:
    """:func:`check`: the first difference and what may explain it, or None."""
    code = bpf.decode(compiled.bpf())
    killed = action_value(badarch)
    for arch in compiled.arches:
        token, base = kernel_space(arch)
        width, highs = (32, HIGH_HALVES) if arch in NARROW_ARGS else (64, (0,))
        ruled: set[int] = set()
        for name, written in reference.items():
            found = syscalls.lookup(name, arch)
            if found.number is None:
                continue
            ruled.add(found.number)
            entries = [(action, [narrow(c) for c in conds]) for action, conds in written] \
                if width == 32 else written
            conds = [c for _, cs in entries for c in cs]
            for args in _points(conds, width):
                want = action_value(decide(entries, args, default))
                for high in highs:
                    sent = tuple(high | value for value in args)
                    got = bpf.emulate(code, bpf.SeccompData(found.number, token, sent))
                    if got != want:
                        return (f"{name}: on {arch} with arguments {list(sent)} the generated "
                                f"filter returns 0x{got:08x}, the profile says 0x{want:08x}",
                                _explain(name, arch, conds, sent))
        for nr in OTHER_NUMBERS:
            if base + nr in ruled:
                continue
            got = bpf.emulate(code, bpf.SeccompData(base + nr, token))
            if got != action_value(default):
                return (f"syscall {base + nr}: on {arch} the generated filter returns "
                        f"0x{got:08x}", "")
    native = syscalls.native_arch()
    cpu = (native, *syscalls.other_abis(native))
    for arch in cpu:  # x32 unlisted next to x86_64: the same token, so every number
        if arch in compiled.arches:
            continue
        token, base = kernel_space(arch)
        for nr in OTHER_NUMBERS:
            got = bpf.emulate(code, bpf.SeccompData(base + nr, token))
            if got != killed:
                return (f"ABI {arch} is not blocked: the generated filter returns 0x{got:08x} "
                        f"for syscall {base + nr}", "")
    listed = {kernel_space(arch)[0] for arch in (*compiled.arches, *cpu)}
    for token in sorted({kernel_space(arch)[0] for arch in syscalls.ARCHES} - listed):
        got = bpf.emulate(code, bpf.SeccompData(0, token))
        if got != killed:
            return (f"a foreign architecture (0x{token:08x}) is not blocked: the generated "
                    f"filter returns 0x{got:08x}", "")
    return None


def _explain(name: str, arch: str, conds: Sequence[Cond], sent: Sequence[int]) -> str:
    """Why the BPF may differ for one syscall's arguments (the conditions already narrowed)."""
    if arch in NARROW_ARGS:  # libseccomp compares the low halves (a mask's high bits are moot)
        for cond in conds:
            value = cond.b if cond.op == "masked_eq" else cond.a
            if value > U32:
                return (f"{name} gets 32-bit arguments on {arch}: {value:#x} in {cond} "
                        "does not fit in 32 bits (use -2147483648 to 4294967295)")
    if arch == "x32" and any(value > U32 for value in sent):
        return ("libseccomp 2.5 compares only the low 32 bits of x32 arguments, while x32 "
                "syscalls get all 64: a profile listing x32 cannot have argument conditions "
                "that depend on the high half")
    return _LOSES_RULES


def _where(profile: Profile, name: str) -> Location | None:
    for rule in (*profile.deny, *profile.rules):
        if name in rule.syscalls:
            return rule.location
    return profile.location


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
