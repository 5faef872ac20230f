"""Put a compiled filter on a running process, and prove it is there: ``seccomp apply``.

:func:`apply_filter` decides whether the process may be touched, has one of its threads load
the filter (:mod:`agent.enforce.inject`, with ``SECCOMP_FILTER_FLAG_TSYNC`` so that every thread
gets it), then reads the loaded stack back and compares it with the profile
(:func:`agent.seccomp.verify.compare`): the comparison is the proof the command prints and the
daemon records. The command line and the daemon's ``enforce:`` bindings both call it.

Refused before anything is stopped, each with a sentence saying why:

- the process is this one, gone, a zombie, or has no thread that can make the calls;
- a thread of it may run on an isolated CPU (:func:`agent.host.stop_guard.refuse_stop`),
  unless ``stop_isolated``;
- its threads do not all carry the same number of filters, or one is in strict mode: TSYNC
  would fail (the kernel synchronises a thread only when its stack is an ancestor of the
  caller's); the threads that diverge are named;
- its current filters would not let the borrowed ``prctl``/``seccomp`` calls run (a filter that
  kills on ``prctl`` would kill the process).

A process whose loaded stack already does exactly what the profile says is left alone
(:attr:`Applied.outcome` ``unchanged``): applying is idempotent.
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from agent.core.digest import sha256_hex
from agent.core.record import record
from agent.enforce.inject import (
    NR_PRCTL,
    NR_SECCOMP,
    PR_SET_NO_NEW_PRIVS,
    SECCOMP_FILTER_FLAG_TSYNC,
    SECCOMP_SET_MODE_FILTER,
    InjectError,
    Target,
    find_target,
    inject_filter,
)
from agent.host.seccomp_dump import DumpError, FilterDump, dump_filters
from agent.host.stop_guard import refuse_stop
from agent.seccomp import bpf, syscalls, verify
from agent.seccomp.compile import CompiledFilter

LOADED = "the filter is loaded, without its proof"
ATTEMPTS = 3
"""Stops tried when the thread is caught delivering a signal (which is passed on untouched)."""


class ApplyError(Exception):
    """The filter was not applied; :attr:`changed` says what stayed changed (None: nothing)."""

    def __init__(self, reason: str, changed: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.changed = changed


@record
class Applied:
    """A filter put on a process (or found there already), with the proof."""

    pid: int
    tid: int
    """The thread that made the calls (or whose stack was compared, when unchanged)."""
    start_time: int
    """The thread's start time (clock ticks after boot): with the pid, names the process."""
    outcome: str
    """``applied``, or ``unchanged`` when the loaded stack already did what the profile says."""
    mode: str
    digest: str
    """SHA-256 of the BPF program loaded."""
    threads: int
    """Threads of the process after the apply."""
    filters: int
    """Filters each thread carries after the apply."""
    set_nnp: bool
    stop_ns: int
    """How long the thread was held (0 when unchanged)."""
    proof: verify.Comparison
    """The loaded stack compared with the profile, after the apply."""


@record
class _Thread:
    tid: int
    state: str
    seccomp: int | None
    filters: int | None


def apply_filter(pid: int, compiled: CompiledFilter, *, tid: int | None = None,
                 start_time: int | None = None, stop_isolated: bool = False,
                 timeout: float = 0.25, meanwhile: Callable[[], object] | None = None,
                 root: Path = Path("/")) -> Applied:
    """Apply ``compiled`` to process ``pid`` and verify it (raises :class:`ApplyError`).

    ``tid``: the thread to stop and make the calls (default: the main thread, or the first
    live one); an idle thread disturbs a busy process least. ``start_time``: the process's
    start time (``/proc/PID/stat`` field 22) as the caller saw it: checked again just before
    the stop, so that a pid reused meanwhile by another process is refused. ``root`` is where
    the isolated CPUs are read (:func:`agent.host.stop_guard.refuse_stop`; host trees in
    tests).
    ``meanwhile`` is handed to :func:`agent.enforce.inject.inject_filter` (tests)."""
    if pid == os.getpid():
        raise ApplyError("a process cannot apply a filter to itself this way (use "
                         "'hostguard exec')")
    if syscalls.native_arch() != "x86_64":
        raise ApplyError(f"applying to a running process is supported on x86_64 only, not "
                         f"{syscalls.native_arch()}")
    threads = _threads(pid)
    if not stop_isolated:
        why = refuse_stop(pid, root=root)
        if why is not None:
            raise ApplyError(f"process {pid} is not stopped: {why} (--stop-isolated to "
                             "stop it anyway)")
    caller = _caller(pid, threads, tid)
    _refuse_divergent(pid, caller, threads)
    program = compiled.bpf()
    before = _dump(caller.tid)
    if before.filters:
        proof = verify.compare(before.filters, compiled)
        if proof.equivalent:
            return Applied(pid, caller.tid, before.start_time, "unchanged", compiled.mode,
                           sha256_hex(program), len(threads), len(before.filters), False, 0,
                           proof)
    target = _target(caller.tid)
    if start_time is not None and _start_time(pid) != start_time:
        raise ApplyError(f"process {pid} is not the one selected: its pid now names a process "
                         "started at another time")
    if before.filters:
        _refuse_blocked_calls(caller.tid, before, target.syscall_at)
    injected = None
    for attempt in range(ATTEMPTS):
        try:
            injected = inject_filter(target, program, nnp=bool(compiled.attributes.get("nnp", 1)),
                                     timeout=timeout, meanwhile=meanwhile)
            break
        except InjectError as exc:
            if not exc.retry or attempt == ATTEMPTS - 1:
                raise ApplyError(exc.reason, exc.changed) from None
            time.sleep(0.001)
    assert injected is not None
    now = _threads(pid)
    after = _dump_live(caller.tid, now)
    return Applied(pid, caller.tid, after.start_time, "applied", compiled.mode,
                   sha256_hex(program), len(now), len(after.filters), injected.set_nnp,
                   injected.stop_ns, verify.compare(after.filters, compiled))


def _threads(pid: int) -> list[_Thread]:
    try:
        tids = sorted(int(name) for name in os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        raise ApplyError(f"no process {pid}") from None
    except OSError as exc:
        raise ApplyError(f"cannot list the threads of process {pid}: {exc.strerror}") from None
    found = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status", encoding="ascii",
                      errors="replace") as handle:
                status = handle.read()
        except OSError:
            continue  # the thread ended
        found.append(_Thread(tid, _field(status, "State") or "?",
                             _number(status, "Seccomp"), _number(status, "Seccomp_filters")))
    if not found:
        raise ApplyError(f"no process {pid}")
    return found


def _start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/PID/stat`` (after the command name, which may hold anything)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _field(status: str, key: str) -> str | None:
    found = re.search(rf"^{key}:\s*(\S+)", status, re.MULTILINE)
    return found.group(1) if found else None


def _number(status: str, key: str) -> int | None:
    value = _field(status, key)
    return int(value) if value is not None and value.isdigit() else None


def _caller(pid: int, threads: list[_Thread], tid: int | None) -> _Thread:
    """Thread ``tid``, or the main thread, or the first live one when it has exited."""
    live = [t for t in threads if t.state not in ("Z", "X")]
    if tid is not None:
        chosen = next((t for t in live if t.tid == tid), None)
        if chosen is None:
            raise ApplyError(f"thread {tid} is not a live thread of process {pid}")
        return chosen
    if not live:
        raise ApplyError(f"process {pid} is a zombie: it runs nothing")
    return next((t for t in live if t.tid == pid), live[0])


def _refuse_divergent(pid: int, caller: _Thread, threads: list[_Thread]) -> None:
    if caller.seccomp == 1:
        raise ApplyError(f"process {pid} is in strict seccomp mode: no filter can be added")
    if caller.seccomp is None or (caller.seccomp and caller.filters is None):
        raise ApplyError(f"the seccomp state of thread {caller.tid} cannot be read")
    mine = (caller.seccomp, caller.filters)
    odd = [t for t in threads
           if t.state not in ("Z", "X") and (t.seccomp, t.filters) != mine]
    if odd:
        named = ", ".join(f"{t.tid} ({t.filters or 0} filter(s))" for t in odd[:5])
        raise ApplyError(f"the threads of process {pid} carry different filter stacks: thread "
                         f"{caller.tid} has {caller.filters or 0} filter(s), but {named}; TSYNC "
                         "cannot give them one filter")


def _dump(tid: int) -> FilterDump:
    try:
        return dump_filters(tid)
    except DumpError as exc:
        raise ApplyError(f"cannot read the filters of thread {tid}: {exc.reason}") from None


def _dump_live(tid: int, threads: list[_Thread]) -> FilterDump:
    """The stack of ``tid``, or of another live thread if it has ended since (TSYNC gave them
    all the same stack)."""
    others = [t.tid for t in threads if t.tid != tid and t.state not in ("Z", "X")]
    for candidate in [tid, *others]:
        try:
            return dump_filters(candidate)
        except DumpError as exc:
            if exc.errno != errno.ESRCH:
                raise ApplyError(f"the filters of thread {candidate} cannot be read back: "
                                 f"{exc.reason}", changed=LOADED) from None
    raise ApplyError("every thread of the process has ended since", changed=LOADED)


def _target(tid: int) -> Target:
    try:
        return find_target(tid)
    except InjectError as exc:
        raise ApplyError(exc.reason) from None


def _refuse_blocked_calls(tid: int, before: FilterDump, syscall_at: int) -> None:
    """The borrowed calls run under the thread's current filters: each must be let through."""
    arch = syscalls.arch_token("native")
    calls = (("prctl", NR_PRCTL, (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0)),
             ("seccomp", NR_SECCOMP, (SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC,
                                      0, 0, 0, 0)))
    for name, nr, args in calls:
        ret = bpf.emulate_stack(before.filters, bpf.SeccompData(nr, arch, args, syscall_at))
        verdict = bpf.verdict(ret)
        if verdict.action not in ("allow", "log"):
            raise ApplyError(f"the filters thread {tid} carries would answer its {name}() call "
                             f"with {verdict}: the filter cannot be loaded from inside it")

