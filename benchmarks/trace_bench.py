"""What ``hostguard seccomp record`` costs a syscall-heavy program, against the untraced run.

Run from the project root::

    python benchmarks/trace_bench.py [--count 200000] [--runs 5]

The program is ``dd if=/dev/zero of=/dev/null bs=1 count=N``: one ``read`` and one ``write`` per
byte, about 2N syscalls, little else. Each run times it untraced (fork, exec, wait) and then
recorded (:func:`agent.enforce.trace.run_traced` and the profile built from what it saw, as the
command does, the YAML written to memory), interleaved, ``--runs`` times. Prints the median
wall-clock time of each, the ratio, and the tracer's cost per syscall (two ptrace stops each:
entry and exit). Nothing is asserted about time; the exit status is non-zero only when a run
failed.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from agent.enforce.trace import run_traced  # noqa: E402 - after the path is set
from agent.seccomp.profile import to_yaml  # noqa: E402
from agent.seccomp.recorded import record_profile  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000, help="bytes dd copies one by one")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    if args.count < 1 or args.runs < 1:
        parser.error("--count and --runs must be at least 1")
    dd = shutil.which("dd")
    if dd is None:
        print("trace_bench: no dd", file=sys.stderr)
        return 1
    command = [dd, "if=/dev/zero", "of=/dev/null", "bs=1", f"count={args.count}", "status=none"]
    plain: list[float] = []
    traced: list[float] = []
    for _ in range(args.runs):
        start = time.perf_counter()
        done = subprocess.run(command, check=False)
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        trace = run_traced(dd, command)
        to_yaml(record_profile(command, trace.calls).profile)
        traced.append(time.perf_counter() - start)
        if done.returncode != 0 or trace.status != 0:
            print(f"trace_bench: dd exited {done.returncode} untraced, {trace.status} traced",
                  file=sys.stderr)
            return 1
    untraced_s, recorded_s = statistics.median(plain), statistics.median(traced)
    per_call_us = (recorded_s - untraced_s) / (2 * args.count) * 1e6
    print(f"record slowdown: dd bs=1 count={args.count} (~{2 * args.count} syscalls), "
          f"median of {args.runs}: untraced {untraced_s * 1e3:.1f} ms, recorded "
          f"{recorded_s * 1e3:.1f} ms, x{recorded_s / untraced_s:.1f}, "
          f"+{per_call_us:.2f} us per syscall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
