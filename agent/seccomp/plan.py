"""Planning: a :class:`~agent.seccomp.model.Profile` -> the rules libseccomp is to be given.

The profile's decision for a syscall ``S``: the ``deny`` rules naming ``S``, in order, then the
``rules`` naming ``S``, in order; the first rule whose argument conditions all hold decides (so a
deny always wins over an allow); no rule matches: ``default_action``. In ``log`` mode every action
other than allow becomes ``log`` (:func:`effective`).

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

:func:`plan` is pure (no libseccomp): :mod:`agent.seccomp.assemble` hands its rules to
libseccomp and :mod:`agent.seccomp.selfcheck` runs the result against :func:`order_rules`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.core.location import Location
from agent.core.record import record
from agent.seccomp import bpf, syscalls
from agent.seccomp.model import (
    ARG_OPS,
    MODES,
    Action,
    ActionKind,
    ArgCondition,
    Profile,
    Rule,
    arg_text,
)

U64 = (1 << 64) - 1
MAX_SPLIT = 4096
"""Upper bound on libseccomp rules one syscall may expand into (``NOT`` of many conditions)."""


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
            return arg_text(self.index, self.op, self.b, self.a)
        return arg_text(self.index, self.op, self.a)


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


# --- actions ------------------------------------------------------------------------------------

def effective(action: Action, mode: str) -> Action:
    """``action`` as ``mode`` applies it: in log mode every non-allow action becomes ``log``."""
    if mode == "log" and action.kind is not ActionKind.ALLOW:
        return Action(ActionKind.LOG)
    return action


def action_value(action: Action) -> int:
    """The ``SCMP_ACT_*`` value of ``action`` (what the filter returns for it)."""
    if action.kind is ActionKind.ERRNO:
        if action.errno is None or not 0 <= action.errno <= 0xFFFF:
            raise CompileError(f"errno action needs an error number 0-65535, not {action.errno}")
        return bpf.RET_ERRNO | action.errno
    return _RETURNS[action.kind]


_RETURNS = {
    ActionKind.KILL_PROCESS: bpf.RET_KILL_PROCESS,
    ActionKind.KILL_THREAD: bpf.RET_KILL_THREAD,
    ActionKind.TRAP: bpf.RET_TRAP,
    ActionKind.LOG: bpf.RET_LOG,
    ActionKind.ALLOW: bpf.RET_ALLOW,
}
"""``SCMP_ACT_*`` values: the kernel's ``SECCOMP_RET_*``, which libseccomp passes through."""


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
    mode = mode_of(profile, mode)
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


# --- the profile's own terms ---------------------------------------------------------------------

def mode_of(profile: Profile, mode: str | None) -> str:
    """``mode`` (default: the profile's own), checked."""
    chosen = mode or profile.mode
    if chosen not in MODES:
        raise CompileError(f"mode must be enforce or log, not {chosen!r}", profile.location)
    return chosen


def arches_of(profile: Profile) -> tuple[str, ...]:
    """The profile's architectures, canonical libseccomp names, each once."""
    out: dict[str, None] = {}
    for arch in profile.architectures or ("native",):
        try:
            out.setdefault(syscalls.canonical_arch(arch), None)
        except syscalls.UnknownArch as err:
            raise CompileError(str(err), profile.location) from None
    return tuple(out)


def where(profile: Profile, name: str) -> Location | None:
    """Where the first rule naming ``name`` is written (else the profile)."""
    for rule in (*profile.deny, *profile.rules):
        if name in rule.syscalls:
            return rule.location
    return profile.location
