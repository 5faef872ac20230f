"""The snapshot's deep seccomp layer: dump the filters of the processes checks ask for.

Dumping stops the target for a moment (:mod:`agent.host.seccomp_dump`), so it happens only for
processes a ``seccomp`` check with ``deep: true`` selects, at most once per process per audit,
and never — unless that check says ``stop_isolated: true`` — for a process that may run on an
isolated CPU: those are the latency-critical ones. A process whose CPUs or the host's isolated
CPUs cannot be read is not stopped either (fail closed: its verdict is ``error``).

::

    isolated = isolated_cpus(cmdline, tree, root=root)   # agent.host.stop_guard
    dumps = read_loaded(root, table, [DumpRequest(selector)], isolated)
    dumps[pid]                                 # FilterDump, or ReadError saying why not
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from agent.host.cpus import format_cpus
from agent.host.dump_cache import DumpCache
from agent.host.facts import ReadError
from agent.host.processes import Process, ProcessTable
from agent.host.seccomp_dump import DumpError, FilterDump, dump_filters

if TYPE_CHECKING:  # only a type here: the snapshot imports this module
    from agent.host.snapshot import DumpRequest

Loaded = Mapping[int, "FilterDump | ReadError"]
"""pid -> the main thread's filter stack, or why it was not read."""


def read_loaded(root: Path, table: ProcessTable, requests: Iterable[DumpRequest],
                isolated: frozenset[int] | ReadError, cache: DumpCache | None = None) -> Loaded:
    """Dump the main thread (every thread, for requests with ``threads``) of every process
    some request selects."""
    wanted: dict[int, tuple[bool, bool]] = {}  # pid -> (stop isolated, every thread)
    for request in requests:
        for proc in table.processes.values():
            if request.select(proc) is True:
                stop, threads = wanted.get(proc.pid, (False, False))
                wanted[proc.pid] = (stop or request.stop_isolated, threads or request.threads)
    out: dict[int, FilterDump | ReadError] = {}
    for pid, (stop_isolated, every_thread) in sorted(wanted.items()):
        proc = table.processes[pid]
        why = None if stop_isolated else _pinned(proc, isolated)
        tids = [pid, *(t.tid for t in proc.threads if t.tid != pid)] if every_thread else [pid]
        for tid in tids:
            if why is not None:
                out[tid] = ReadError(f"not stopped to read its filters: {why} (a seccomp check "
                                     "may allow it with stop_isolated: true)")
                continue
            try:
                out[tid] = dump_filters(tid, root=root, cache=cache)
            except DumpError as exc:
                out[tid] = ReadError(exc.reason)
    return out


def _pinned(proc: Process, isolated: frozenset[int] | ReadError) -> str | None:
    """Why ``proc`` must not be stopped, or None."""
    if isinstance(isolated, ReadError):
        return f"the host's isolated CPUs are unknown ({isolated.reason})"
    if not proc.threads or "threads" in proc.unreadable:
        return "its threads' CPU affinity cannot be read"  # a hot thread may be the pinned one
    sets = [proc.cpus_allowed, *(t.cpus_allowed for t in proc.threads)]
    if any(cpus is None for cpus in sets):
        return "its CPU affinity cannot be read"
    hit = frozenset().union(*(cpus & isolated for cpus in sets if cpus is not None))
    if hit:
        return f"it may run on isolated CPU(s) {format_cpus(hit)}"
    return None
