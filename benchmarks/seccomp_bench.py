"""What a seccomp filter costs a hot syscall, measured in native code.

Run from the project root (as root or not; the filters set no_new_privs)::

    python benchmarks/seccomp_bench.py [--iterations 2000000] [--runs 5] [--cc cc]

A small C helper, compiled with ``cc`` into a temporary folder at start, calls one syscall in a
tight loop and prints nanoseconds per call (``clock_gettime`` is vDSO, so the timing itself
enters no filter). A Python loop would hide the filter behind the interpreter. For each variant a
forked child loads the filter (nothing for "no filter") and execs the helper, so the loop runs
under exactly that filter:

* ``no filter``;
* ``allow-all floor``: default allow and one deny rule (kexec_load) — the kernel's floor for any
  filter: a cached allow still takes the seccomp entry path;
* ``trading (tree)``: ``policies/seccomp/trading-gateway.yaml`` compiled as shipped (binary tree);
  without it, a Docker-sized allow-list (``@system-service``) built here;
* ``trading (linear)``: the same profile with the binary tree switched off;
* ``docker default (tree)``: ``../shared/fixtures/seccomp/docker-default.json`` imported through
  ``agent.seccomp.oci`` (skipped with a note when either is missing).

Two syscalls: ``getppid`` (allow-listed, no argument conditions: the kernel's constant-action cache
answers it) and ``fcntl(-1, F_GETFD)`` under an argument-conditioned rule (every profiled variant
gets a deny of ``fcntl`` with ``cmd == 1024``, so the filter must read argument 1 on every call and
no cache applies; the floor keeps no condition: it is the floor). Each variant/syscall pair runs
``--runs`` times, variants interleaved within a run; the table shows the median ns per call and the
ratio to "no filter" of the same runs. Nothing is asserted about time; the exit status is non-zero
only when something could not run (compiler missing, a profile that does not compile, a helper that
failed).

A second table, after a blank line, times :func:`agent.seccomp.bpf_table.table` (the effective table
the live-process check builds from a dumped filter): the median ms of ``--runs`` calls (at least 3)
over every syscall number libseccomp knows on each ABI this CPU can enter (the count is in the
column header), raw program bytes in (decoding included), for ``trading (tree)`` and ``docker
default (linear)`` as above and ``long linear``: every x86_64 syscall named in its own rule, a third
of them allowed only for one value of the first argument, binary tree off.

A third table (root only: the dump needs CAP_SYS_ADMIN) is the stop a deep dump imposes on its
target (:func:`agent.host.seccomp_dump.read_stack`, as ``hostguard seccomp dump`` and ``deep:
true`` checks do it, cache bypassed): a forked child loads the filter and then sleeps (idle) or
spins (busy); ``--dumps`` fresh dumps each. ``stop`` is from PTRACE_INTERRUPT to PTRACE_DETACH
returning (an upper bound: the woken target may preempt the tracer before the call returns),
``held`` from the interrupt to the detach being called (a lower bound); median, 99th percentile
and maximum in microseconds.

A fourth table (root only) is the stop ``hostguard seccomp apply`` imposes: a thread of an idle
or busy child (no filter yet) is held while it loads ``trading (tree)``
(:func:`agent.enforce.inject.inject_filter`: the calls made through it and everything put back),
``--applies`` times per row, a fresh child each time; same columns. A note under it gives the
same filter loaded by a process itself (no_new_privs and seccomp(2)): the kernel's share of the
hold, which no way of loading the filter avoids.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from agent.enforce.load import load_filter  # noqa: E402
from agent.seccomp import bpf, bpf_table, syscalls  # noqa: E402
from agent.seccomp import compile as seccomp_compile  # noqa: E402
from agent.seccomp.libseccomp import libseccomp_version  # noqa: E402
from agent.seccomp.model import (  # noqa: E402
    ALLOW,
    EPERM,
    Action,
    ActionKind,
    ArgCondition,
    Profile,
    Rule,
)

TRADING = PROJECT / "policies" / "seccomp" / "trading-gateway.yaml"
DOCKER = PROJECT.parent / "shared" / "fixtures" / "seccomp" / "docker-default.json"
F_GETFD = 1
UNUSED_FCNTL_CMD = 1024
"""No fcntl command has this number: the conditioned deny never matches, it only costs."""

HELPER = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: helper getppid|fcntl N\n"); return 2; }
    long nr, a0 = 0, a1 = 0, n = atol(argv[2]);
    if (strcmp(argv[1], "getppid") == 0) { nr = SYS_getppid; }
    else if (strcmp(argv[1], "fcntl") == 0) { nr = SYS_fcntl; a0 = -1; a1 = F_GETFD; }
    else { fprintf(stderr, "unknown syscall %s\n", argv[1]); return 2; }
    if (n < 1) { fprintf(stderr, "N must be at least 1\n"); return 2; }
    for (long i = 0; i < n / 10 + 1000; i++) syscall(nr, a0, a1);   /* warm up */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) syscall(nr, a0, a1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
    printf("%.3f\n", ns / (double)n);
    return 0;
}
"""

Loader = Callable[[], None]
"""Loads a filter into the calling (forked) process."""


def build_helper(cc: str, folder: Path) -> Path:
    source = folder / "loop.c"
    source.write_text(HELPER)
    binary = folder / "loop"
    subprocess.run([cc, "-O2", "-o", str(binary), str(source)], check=True,
                   capture_output=True, text=True)
    return binary


def conditioned(profile: Profile) -> Profile:
    """``profile`` plus the argument-conditioned fcntl deny (see the module docstring)."""
    deny = Rule(("fcntl",), EPERM, (ArgCondition(1, "eq", UNUSED_FCNTL_CMD),))
    return replace(profile, deny=(deny, *profile.deny))


def trading_profile() -> tuple[Profile, str]:
    if TRADING.exists():
        from agent.seccomp.profile import load_profile  # noqa: PLC0415

        loaded = load_profile(TRADING)
        if isinstance(loaded, Profile):
            return loaded, str(TRADING.relative_to(PROJECT))
        raise SystemExit(f"seccomp_bench: {TRADING} does not load: {loaded[0]}")
    names = syscalls.expand(["@system-service", "execve"])
    return Profile("docker-sized", EPERM, (Rule(names, ALLOW),)), "@system-service (built here)"


def docker_profile() -> Profile | str:
    if not DOCKER.exists():
        return f"skipped: {DOCKER} not present"
    try:
        from agent.seccomp import oci  # noqa: PLC0415
    except ImportError:
        return "skipped: agent.seccomp.oci (the Docker importer) not present"
    profile, _notes = oci.load_oci(DOCKER, syscalls.native_arch(), None)
    return profile


def run_helper(binary: Path, syscall: str, iterations: int, load: Loader | None,
               cpu: int | None) -> float:
    """Fork; the child pins itself, loads the filter and execs the helper; ns per call."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.dup2(write_end, 1)
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})
            if load is not None:
                load()
            os.execv(binary, [str(binary), syscall, str(iterations)])
        finally:
            os._exit(127)
    os.close(write_end)
    with os.fdopen(read_end) as stream:
        out = stream.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not out.strip():
        raise SystemExit(f"seccomp_bench: the helper failed for {syscall} (wait status {status})")
    return float(out)


def long_linear() -> Profile:
    """Every x86_64 syscall in a rule of its own: allow, errno(n), allow if ``arg0 == n``."""
    names = [name for nr in syscalls.numbers("x86_64")
             if (name := syscalls.name_of(nr, "x86_64")) is not None]
    rules = tuple(Rule((name,), Action(ActionKind.ERRNO, 1 + i % 100)) if i % 3 == 1 else
                  Rule((name,), ALLOW, (ArgCondition(0, "eq", i),) if i % 3 else ())
                  for i, name in enumerate(names))
    return Profile("long-linear", Action(ActionKind.KILL_PROCESS), rules,
                   architectures=("x86_64",))


def table_times(filters: Sequence[tuple[str, bytes]], runs: int) -> list[str]:
    """The effective-table section: median ms of ``bpf_table.table()`` per filter and ABI."""
    abis = [syscalls.native_arch(), *syscalls.other_abis()]
    spaces = [(abi, bpf.AUDIT_ARCH_X86_64 if abi == "x32" else syscalls.arch_token(abi),
               syscalls.numbers(abi)) for abi in abis]
    lines = [f"effective table: bpf.table() over every known syscall number, median ms of "
             f"{runs} runs",
             f"{'filter':<24}{'BPF insns':>10}" +
             "".join(f"{f'{abi} ({len(numbers)})':>16}" for abi, _, numbers in spaces)]
    for name, program in filters:
        row = f"{name:<24}{len(program) // 8:>10}"
        for _, token, numbers in spaces:
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                bpf_table.table([program], token, numbers)
                times.append((time.perf_counter() - start) * 1000)
            row += f"{statistics.median(times):>16.2f}"
        lines.append(row)
    return lines


def _target(program: seccomp_compile.CompiledFilter | None, busy: bool) -> int:
    """A child that loads ``program`` (if any) and then sleeps or spins until killed; its
    pid."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            if program is not None:
                load_filter(program)
            os.write(ready_w, b"1")
            while True:
                if not busy:
                    time.sleep(1)
        finally:
            os._exit(0)
    os.close(ready_w)
    if os.read(ready_r, 1) != b"1":
        raise RuntimeError("the dump target could not load its filter")
    os.close(ready_r)
    return pid


def stop_times(filters: Sequence[tuple[str, seccomp_compile.CompiledFilter]],
               dumps: int) -> list[str]:
    """The deep-dump section: how long the target is stopped, per filter and target state."""
    from agent.host.seccomp_dump import read_stack  # noqa: PLC0415 - root-only section

    lines = [f"deep dump stop time: {dumps} fresh dumps per row, microseconds",
             f"{'filter':<24}{'target':>8}{'stop p50':>10}{'p99':>9}{'max':>9}"
             f"{'held p50':>10}{'p99':>9}{'max':>9}"]
    for name, compiled in filters:
        for busy in (False, True):
            pid = _target(compiled, busy)
            try:
                reads = [read_stack(pid) for _ in range(dumps)]
            finally:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            assert all(r.filters == (compiled.bpf(),) for r in reads), "dump differs from load"
            row = f"{name:<24}{'busy' if busy else 'idle':>8}"
            for values in ([r.stop_ns for r in reads], [r.held_ns for r in reads]):
                ordered = sorted(v / 1000 for v in values)
                p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
                row += f"{statistics.median(ordered):>10.1f}{p99:>9.1f}{ordered[-1]:>9.1f}"
            lines.append(row)
    return lines


def _self_load_ns(compiled: seccomp_compile.CompiledFilter) -> int:
    """How long a forked child takes to load ``compiled`` itself (no_new_privs and
    seccomp(2)): the kernel's own cost, which a held thread pays too."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            started = time.perf_counter_ns()
            load_filter(compiled)
            os.write(ready_w, str(time.perf_counter_ns() - started).encode())
        finally:
            os._exit(0)
    os.close(ready_w)
    try:
        return int(os.read(ready_r, 64))
    finally:
        os.close(ready_r)
        os.waitpid(pid, 0)


def apply_times(filters: Sequence[tuple[str, seccomp_compile.CompiledFilter]],
                applies: int) -> list[str]:
    """The apply section: how long a target is held while it loads a filter (the injection
    alone: the read before and the proof after are stops of the deep-dump kind), against the
    same filter loaded by a process itself."""
    from agent.enforce.inject import find_target, inject_filter  # noqa: PLC0415 - root only

    lines = [f"apply stop time: {applies} filters loaded per row by a held thread, microseconds",
             f"{'filter':<24}{'target':>8}{'stop p50':>10}{'p99':>9}{'max':>9}"
             f"{'held p50':>10}{'p99':>9}{'max':>9}"]
    notes = []
    for name, compiled in filters:
        for busy in (False, True):
            done = []
            for _ in range(applies):  # a fresh child each: the profile does not allow seccomp()
                pid = _target(None, busy)
                try:
                    done.append(inject_filter(find_target(pid), compiled.bpf(), nnp=True))
                finally:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
            row = f"{name:<24}{'busy' if busy else 'idle':>8}"
            for values in ([d.stop_ns for d in done], [d.held_ns for d in done]):
                ordered = sorted(v / 1000 for v in values)
                p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
                row += f"{statistics.median(ordered):>10.1f}{p99:>9.1f}{ordered[-1]:>9.1f}"
            lines.append(row)
        itself = statistics.median(_self_load_ns(compiled) / 1000 for _ in range(applies))
        notes.append(f"note: {name} loaded by a process itself (no_new_privs + seccomp(2), the "
                     f"kernel's share of every row): median {itself:.1f} us")
    return lines + notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cc", default="cc")
    parser.add_argument("--dumps", type=int, default=200,
                        help="fresh deep dumps per row of the stop-time table")
    parser.add_argument("--applies", type=int, default=200,
                        help="filters loaded per row of the apply stop-time table")
    parser.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)),
                        help="CPU every measurement runs on (default: the highest allowed)")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.runs < 1:
        parser.error("--iterations and --runs must be at least 1")
    cc = shutil.which(args.cc)
    if cc is None:
        print(f"seccomp_bench: no C compiler ({args.cc})", file=sys.stderr)
        return 1

    trading, trading_source = trading_profile()
    floor = Profile("allow-all", ALLOW, deny=(Rule(("kexec_load",), EPERM),))
    variants: list[tuple[str, seccomp_compile.CompiledFilter | None]] = [
        ("no filter", None),
        ("allow-all floor", seccomp_compile.build_filter(floor)),
        ("trading (tree)", seccomp_compile.build_filter(conditioned(trading), tree=True)),
        ("trading (linear)", seccomp_compile.build_filter(conditioned(trading), tree=False)),
    ]
    notes = [f"trading profile: {trading_source}"]
    docker = docker_profile()
    if isinstance(docker, str):
        notes.append(f"docker default: {docker}")
    else:
        variants.append(("docker default (tree)",
                         seccomp_compile.build_filter(conditioned(docker), tree=True)))

    calls = ("getppid", "fcntl")
    samples: dict[tuple[str, str], list[float]] = {(v, c): [] for v, _ in variants for c in calls}
    with tempfile.TemporaryDirectory(prefix="seccomp-bench-") as tmp:
        binary = build_helper(cc, Path(tmp))
        for _ in range(args.runs):
            for name, compiled in variants:
                load = partial(load_filter, compiled) if compiled is not None else None
                for call in calls:
                    samples[(name, call)].append(
                        run_helper(binary, call, args.iterations, load, args.cpu))

    print(f"seccomp filter cost: kernel {platform.release()}, libseccomp "
          f"{libseccomp_version()}, {args.iterations} calls x {args.runs} runs "
          f"on CPU {args.cpu}, median ns/call")
    print(f"{'variant':<24}{'BPF insns':>10}{'getppid':>10}{'ratio':>8}"
          f"{'fcntl(arg)':>12}{'ratio':>8}")
    base = {c: statistics.median(samples[("no filter", c)]) for c in calls}
    for name, compiled in variants:
        insns = len(compiled.bpf()) // 8 if compiled is not None else 0
        row = f"{name:<24}{insns:>10}"
        for call, width in zip(calls, (10, 12), strict=True):
            median = statistics.median(samples[(name, call)])
            row += f"{median:>{width}.1f}{median / base[call]:>8.2f}"
        print(row)
    notes.append(f"fcntl(arg): fcntl(-1, F_GETFD) under a deny of fcntl with cmd == "
                 f"{UNUSED_FCNTL_CMD} (argument-conditioned, never matches)")
    for note in notes:
        print(f"note: {note}")

    tabulated = [(name, compiled.bpf()) for name, compiled in variants
                 if name == "trading (tree)" and compiled is not None]
    if not isinstance(docker, str):
        tabulated.append(("docker default (linear)",
                          seccomp_compile.build_filter(conditioned(docker), tree=False).bpf()))
    tabulated.append(("long linear", seccomp_compile.build_filter(long_linear(),
                                                                  tree=False).bpf()))
    print()
    for line in table_times(tabulated, max(args.runs, 3)):
        print(line)
    print()
    if os.geteuid() != 0:
        print("note: deep dump and apply stop times not measured: they need root "
              "(CAP_SYS_ADMIN, CAP_SYS_PTRACE)")
        return 0
    root_tables(variants, docker, args.dumps, args.applies)
    return 0


def root_tables(variants: Sequence[tuple[str, seccomp_compile.CompiledFilter | None]],
                docker: Profile | str, dumps: int, applies: int) -> None:
    """The deep-dump and apply stop-time tables."""
    dumped = [(name, compiled) for name, compiled in variants
              if name == "trading (tree)" and compiled is not None]
    if not isinstance(docker, str):
        dumped.append(("docker default (linear)",
                       seccomp_compile.build_filter(conditioned(docker), tree=False)))
    for line in stop_times(dumped, max(dumps, 1)):
        print(line)
    print()
    for line in apply_times(dumped[:1], max(applies, 1)):
        print(line)


if __name__ == "__main__":
    sys.exit(main())
