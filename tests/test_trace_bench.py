"""benchmarks/trace_bench.py still runs (tiny sizes; timings are not checked)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support import PROJECT

BENCH = PROJECT / "benchmarks" / "trace_bench.py"


def test_trace_bench_runs() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--count", "2000", "--runs", "1"],
                          cwd=PROJECT, capture_output=True, text=True, timeout=300, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    assert re.fullmatch(r"record slowdown: dd bs=1 count=2000 \(~4000 syscalls\), median of 1: "
                        r"untraced \d+\.\d ms, recorded \d+\.\d ms, x\d+\.\d, "
                        r"\+-?\d+\.\d\d us per syscall\n", done.stdout)


def test_trace_bench_rejects_zero_sizes() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--count", "0"], cwd=PROJECT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--count and --runs must be at least 1" in done.stderr
