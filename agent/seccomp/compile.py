"""Compile a :class:`~agent.seccomp.model.Profile` into a checked seccomp filter (BPF, PFC).

What the compiled filter does, for a syscall ``S`` of an architecture the profile lists:

1. the ``deny`` rules naming ``S``, in order, then the ``rules`` naming ``S``, in order: the first
   rule whose argument conditions all hold decides (so a deny always wins over an allow);
2. no rule matches: ``default_action``.

Any other ABI the CPU can enter is killed (``SCMP_FLTATR_ACT_BADARCH`` = kill_process): on
x86_64 that is i386 (``int 0x80``, ``AUDIT_ARCH_I386``) and x32 (``nr | 0x40000000`` under
``AUDIT_ARCH_X86_64``, which libseccomp's x86_64 filter sends to the bad-arch action itself).
In ``log`` mode every action other than allow becomes ``log``: nothing is denied, the kernel
logs what would have been.

Three steps, one module each: :mod:`agent.seccomp.plan` rewrites the ordered rules into rules
libseccomp keeps exactly (it has no notion of rule order); :mod:`agent.seccomp.assemble` hands
them to libseccomp in a child process with a time bound; :mod:`agent.seccomp.selfcheck` runs the
BPF it returns as the kernel would and compares every answer with the profile's. On a difference
the next of :data:`STRATEGIES` is tried, and if none checks out the profile is refused.
Loading the filter is :mod:`agent.enforce.load`'s (exactly the checked bytes, with ``seccomp(2)``).

Names resolve per architecture through :mod:`agent.seccomp.syscalls`: a name that exists on other
architectures only is skipped there (listed in :attr:`CompiledFilter.skipped`); a name that is a
syscall nowhere is an error when written by hand and skipped when it came from an ``@group``
(systemd's groups name a few calls libseccomp 2.5 does not know).

::

    compiled = build_filter(profile)          # CompileError on anything it cannot compile exactly
    compiled.bpf()                            # what seccomp(2) gets, as raw sock_filter bytes
    load_filter(compiled)                     # agent.enforce.load, in the process that execs
"""

from __future__ import annotations

from agent.core.record import record
from agent.seccomp import assemble, selfcheck, syscalls
from agent.seccomp.libseccomp import syscall_token
from agent.seccomp.model import Action, ActionKind, Profile, Rule
from agent.seccomp.plan import (
    CompileError,
    Emitted,
    arches_of,
    effective,
    mode_of,
    order_rules,
    plan,
    where,
)


@record
class Skipped:
    """A name left out of one architecture's filter, and why."""

    syscall: str
    arch: str
    reason: str
    """``absent`` (a syscall of other architectures) or ``unknown`` (from a group, unknown)."""


@record
class CompiledFilter:
    """A filter libseccomp generated and the self-check accepted, and what went into it."""

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

    def bpf(self) -> bytes:
        """The raw BPF program (what ``seccomp_export_bpf`` writes)."""
        return self.program

    def pfc(self) -> str:
        """libseccomp's pseudo-filter-code listing."""
        return self.listing


def export_bpf(profile: Profile, mode: str | None = None) -> bytes:
    """Compile ``profile`` and return the raw BPF program."""
    return build_filter(profile, mode).bpf()


def export_pfc(profile: Profile, mode: str | None = None) -> str:
    """Compile ``profile`` and return libseccomp's PFC text."""
    return build_filter(profile, mode).pfc()


def hand_written(profile: Profile) -> dict[str, Rule]:
    """Names written out (not from a group) -> the first rule writing them."""
    out: dict[str, Rule] = {}
    for rule in (*profile.deny, *profile.rules):
        written = rule.written or rule.syscalls
        for name in written:
            if not syscalls.is_group(name):
                out.setdefault(name, rule)
    return out


STRATEGIES = ((False, "planned"), (False, "short-first"), (False, "long-first"),
              (True, "planned"), (True, "short-first"), (True, "long-first"))
"""How rules reach libseccomp, tried in turn until the generated BPF checks out: overlapping
same-action rules or all rules made disjoint, in plan order or sorted by condition count."""


def build_filter(profile: Profile, mode: str | None = None, *,
                 tree: bool | None = None) -> CompiledFilter:
    """Compile ``profile`` (in ``mode``, default the profile's own) into a libseccomp filter.

    Raises :class:`CompileError` (with the rule's location where there is one) for anything that
    cannot be compiled exactly: unknown syscall or architecture, bad condition, a rule combination
    libseccomp cannot express, or libseccomp refusing a rule or attribute. ``tree`` forces the
    binary-tree optimisation on or off (default: on above
    :data:`~agent.seccomp.assemble.TREE_THRESHOLD` syscalls).
    """
    chosen = mode_of(profile, mode)
    arches = arches_of(profile)
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
        token = syscall_token(name)
        for arch in arches:
            if syscalls.lookup(name, arch).status is syscalls.Status.KNOWN:
                numbers[(name, arch)] = token
            else:
                skipped.append(Skipped(name, arch, "absent"))

    reference = selfcheck.reference(profile, chosen)
    failure, why = "", ""
    for disjoint, order in STRATEGIES:
        try:
            rules = plan(profile, chosen, disjoint=True) if disjoint else emitted
        except CompileError:
            continue  # the overlapping plan was tried already; this one is not expressible
        built = assemble.assemble(profile, arches, rules, numbers=numbers, order=order,
                                  tree=tree, default=default, badarch=badarch)
        if isinstance(built, str):  # a hang: other orders hang as well, each costing the bound
            raise CompileError(f"{built} (a libseccomp 2.5 bug with some combinations of "
                               "argument conditions on one syscall; simplify the conditions)",
                               profile.location)
        found = selfcheck.difference(built.program, arches, reference, default, badarch)
        if found is None:
            return CompiledFilter(profile, chosen, built.program, built.listing, arches, rules,
                                  tuple(skipped), built.attributes,
                                  f"{'disjoint' if disjoint else 'planned'}/{order}")
        failure, why = (failure, why) if failure else found
    hint = f" ({why})" if why else ""
    raise CompileError(f"{failure}; refusing a filter that does something else than the "
                       f"profile{hint}", where(profile, failure.split(":", 1)[0]))
