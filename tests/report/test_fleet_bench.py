"""The fleet benchmark still runs (tiny sizes; timings are not checked)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support import PROJECT

BENCH = PROJECT / "benchmarks" / "fleet_bench.py"


def test_fleet_bench_runs_small() -> None:
    # As documented: from the project root, no PYTHONPATH.
    done = subprocess.run([sys.executable, str(BENCH), "--hosts", "3", "--checks", "4",
                           "--runs", "1"], cwd=PROJECT, capture_output=True, text=True,
                          timeout=120, check=False, env={"PATH": "/usr/bin:/bin"})
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert len(lines) == 6
    assert re.fullmatch(r"synthetic fleet: 3 hosts x 4 checks, \d+\.\d MB of result JSON", lines[0])
    assert re.fullmatch(r"parse:  median \d+\.\d\d s, min \d+\.\d\d s, peak RSS \d+ MiB "
                        r"\(reference: read \+ json\.loads every file, whole process\)", lines[1])
    assert re.fullmatch(r"merge:  median \d+\.\d\d s, min \d+\.\d\d s, peak RSS \d+ MiB, "
                        r"largest worker \d+ MiB "
                        r"\(python -m agent report merge, whole process; page \d+\.\d MB\)",
                        lines[2])
    assert re.fullmatch(r"ratio:  merge / parse \d+\.\d\dx time, \d+\.\d\dx peak RSS", lines[3])
    assert re.fullmatch(r"one file: median \d+\.\d\d ms \(read, JSON parse, schema validation, "
                        r"rebuild\)", lines[4])
    assert re.fullmatch(r"render: median \d+\.\d\d s \(fleet\.render of the loaded runs, in "
                        r"process\)", lines[5])


def test_fleet_bench_rejects_zero_sizes() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--hosts", "0"], cwd=PROJECT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--hosts, --checks and --runs must be at least 1" in done.stderr
