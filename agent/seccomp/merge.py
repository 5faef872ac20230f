"""Merge profiles of replicas of one service: a call any input permits, the result permits.

Each input is planned (:func:`agent.seccomp.plan.plan`): per syscall, regions of the arguments,
each with the action the profile takes there (regions of different actions never overlap), the
default elsewhere. The merged profile lists every input's permitting regions (``allow``
before ``log``), then, unless a ``default`` is forced, every input's denying regions whose
action is not the default. It is then compiled and compared with each input by the verifier
(:func:`agent.seccomp.verify.compare`, the input in the place of the loaded stack), which proves
the union and finds the conflicts, each with a call that shows it:

* the result must deny nothing an input permits (never expected; refused if it happens);
* a call inputs permit differently (``allow`` in one, ``log`` in another) is refused;
* a call inputs deny differently (``errno(1)`` in one, ``kill_process`` in another) is refused,
  unless a ``default`` is given: then every call no input permits gets that action, and what
  it changes for each input is reported;
* anything undecided is refused: the union must be proven, not assumed.

Inputs must agree on ``architectures``, ``mode`` and ``no_new_privs``, and their default actions
must be the same denying action unless ``default`` is given: a deny-list input (``default_action:
allow``) cannot be merged, since the union of two deny-lists is the intersection of what they
deny, which the rules cannot express.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.core.record import record
from agent.seccomp import verify
from agent.seccomp.compile import CompiledFilter, build_filter
from agent.seccomp.effective import PERMISSIVE
from agent.seccomp.model import Action, ActionKind, ArgCondition, Profile, Rule
from agent.seccomp.plan import CompileError, Cond, Emitted, arches_of, order_rules, plan
from agent.seccomp.syscalls import UnknownSyscall, resolve


class MergeError(ValueError):
    """Inputs that cannot be merged safely: each reason, with a witness call where one exists."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = tuple(reasons)


@record
class Merged:
    """The merged profile and what the merge resolved."""

    profile: Profile
    compiled: CompiledFilter
    notes: tuple[str, ...]
    """What a forced default changed for each input (empty otherwise)."""


SHOWN = 5
"""Conflicts shown per input and kind before ``... and N more``."""


def merge(inputs: Sequence[tuple[str, Profile]], name: str,
          default: Action | None = None) -> Merged:
    """The union of ``inputs`` (label, profile) as one profile named ``name``; raises
    :class:`MergeError` with every reason it is refused (see the module docstring)."""
    if not inputs:
        raise MergeError(["nothing to merge"])
    first = inputs[0][1]
    _agree(inputs, default)
    chosen = default if default is not None else first.default_action
    arches = arches_of(first)
    regions = [_regions(profile, arches) for _, profile in inputs]
    rules = _rules(regions, inputs, chosen, keep_denials=default is None)
    labels = ", ".join(label for label, _ in inputs)
    merged = Profile(name, chosen, rules=rules, architectures=first.architectures,
                     no_new_privs=first.no_new_privs, mode=first.mode)
    try:
        compiled = build_filter(merged)
    except CompileError as exc:
        hint = "" if default is not None else " (--default drops the denials of the inputs)"
        raise MergeError([f"the union of {labels} cannot be compiled: {exc}{hint}"]) from None
    return Merged(merged, compiled, _prove(inputs, compiled, forced=default is not None))


def _agree(inputs: Sequence[tuple[str, Profile]], default: Action | None) -> None:
    reasons: list[str] = []
    for what, of in (("architectures", lambda p: sorted(arches_of(p))),
                     ("mode", lambda p: p.mode), ("no_new_privs", lambda p: p.no_new_privs)):
        seen = [(label, of(profile)) for label, profile in inputs]
        if any(value != seen[0][1] for _, value in seen):
            reasons.append(f"{what} differ: " + ", ".join(f"{label} {value}"
                                                          for label, value in seen))
    if default is not None:
        if default.permits:
            reasons.append(f"--default must deny (errno, trap, kill_...), not {default}")
    else:
        defaults = [(label, p.default_action) for label, p in inputs]
        if any(action != defaults[0][1] for _, action in defaults):
            reasons.append("default actions differ: " + ", ".join(
                f"{label} {action}" for label, action in defaults) + " (--default ACTION "
                "chooses what every call no input permits gets)")
        elif defaults[0][1].permits:
            reasons.append(f"default_action {defaults[0][1]}: a deny-list cannot be merged "
                           "(the union of deny-lists is the intersection of their denials)")
    if reasons:
        raise MergeError(reasons)


def _regions(profile: Profile, arches: Sequence[str]) -> list[Emitted]:
    """The profile's non-default regions, enforce mode, names that are syscalls here only."""
    try:
        planned = plan(profile, "enforce")
    except CompileError as exc:
        raise MergeError([f"{profile.path or profile.name}: {exc}"]) from None
    return [e for e in planned if _exists(e.syscall, arches)]


def _exists(name: str, arches: Sequence[str]) -> bool:
    try:
        return any(resolve(name, arch) is not None for arch in arches)
    except UnknownSyscall:  # a group member libseccomp does not know: compiled to nothing
        return False


Key = tuple[int, Action, tuple[Cond, ...], str | None]
"""(place in the order, action, conditions, acknowledged): one merged rule."""


def _rules(regions: Sequence[list[Emitted]], inputs: Sequence[tuple[str, Profile]],
           default: Action, *, keep_denials: bool) -> tuple[Rule, ...]:
    unconditional: dict[str, int] = {}  # syscall -> place of its unconditional rule
    wanted: dict[Key, list[str]] = {}
    for planned, (_, profile) in zip(regions, inputs, strict=True):
        acks = _acknowledged(profile)
        for emitted in planned:
            place = _place(emitted.action, default, keep_denials, bool(emitted.conds))
            if place is None:
                continue
            key = (place, emitted.action, emitted.conds,
                   acks.get((emitted.syscall, emitted.action)))
            wanted.setdefault(key, []).append(emitted.syscall)
            if not emitted.conds:
                known = unconditional.get(emitted.syscall, place)
                unconditional[emitted.syscall] = min(known, place)
    out: list[Rule] = []
    for key in sorted(wanted, key=lambda k: (k[0], str(k[1]), k[2], k[3] or "")):
        place, action, conds, ack = key
        # Nothing of a syscall after its unconditional rule is reached (nor written).
        names = sorted({n for n in wanted[key] if place <= unconditional.get(n, place)})
        if names:
            args = tuple(_arg(c) for c in conds)
            out.append(Rule(tuple(names), action, args, tuple(names), ack))
    return tuple(out)


_PLACES = {(ActionKind.ALLOW, False): 0, (ActionKind.ALLOW, True): 1,
           (ActionKind.LOG, False): 2, (ActionKind.LOG, True): 3}
"""Where permitting rules go: allow before log (where inputs overlap, the proof refuses), an
unconditional rule before the conditional ones of its action, which it makes redundant.
Denials come last, conditional (4) before unconditional (5): an unconditional denial of a
syscall is reached only where nothing before it matched."""


def _place(action: Action, default: Action, keep_denials: bool, conditional: bool
           ) -> int | None:
    """Where rules of this action go (None: left to the default)."""
    found = _PLACES.get((action.kind, conditional))
    if found is not None:
        return found
    if keep_denials and action != default:
        return 4 if conditional else 5
    return None


def _acknowledged(profile: Profile) -> dict[tuple[str, Action], str]:
    out: dict[tuple[str, Action], str] = {}
    for name, ordered in order_rules(profile).items():
        for rule, _ in ordered:
            if rule.acknowledged:
                out.setdefault((name, rule.action), rule.acknowledged)
    return out


def _arg(cond: Cond) -> ArgCondition:
    if cond.op == "masked_eq":
        return ArgCondition(cond.index, "masked_eq", cond.b, cond.a)
    return ArgCondition(cond.index, cond.op, cond.a)


def _prove(inputs: Sequence[tuple[str, Profile]], compiled: CompiledFilter, *,
           forced: bool) -> tuple[str, ...]:
    """Compare the result with each input: refuse what breaks the union, report what a forced
    default changed."""
    reasons: list[str] = []
    notes: list[str] = []
    for label, profile in inputs:
        try:
            own = build_filter(profile)
        except CompileError as exc:
            raise MergeError([f"{label}: {exc}"]) from None
        result = verify.compare([own.bpf()], compiled, own.arches)
        bad: dict[str, list[verify.Difference]] = {}
        for diff in result.differences:
            if diff.kind == "denied_extra":
                continue  # permitted by another input: the union
            if diff.kind == "action_differs" and forced and not _permits(diff.loaded):
                bad.setdefault("changed", []).append(diff)
                continue
            bad.setdefault(diff.kind, []).append(diff)
        for kind, found in bad.items():
            text = _listed(found, label)
            if kind == "changed":
                notes.append(f"{label}: {len(found)} denied call(s) now get the default "
                             f"instead: {text}")
            elif kind == "action_differs":
                reasons.append(f"{label} and the union treat {len(found)} call(s) "
                               f"differently: {text}")
            elif kind == "undecided":
                reasons.append(f"cannot prove the union contains {label}: {text}")
            else:
                reasons.append(f"the union denies what {label} permits: {text}")
    if reasons:
        raise MergeError(reasons)
    return tuple(notes)


def _permits(shown: str) -> bool:
    """Whether a verdict as the verifier prints it (``allow``, ``errno(1)``) lets the call run."""
    return shown.partition("(")[0] in PERMISSIVE


def _listed(found: Sequence[verify.Difference], label: str) -> str:
    parts = [f"{d.call} {label} {d.loaded}, union {d.declared}" for d in found[:SHOWN]]
    more = f", ... and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    return "; ".join(parts) + more
