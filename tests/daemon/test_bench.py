"""``benchmarks/daemon_bench.py`` still runs (tiny sizes; figures are not checked)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.authoring import TRADING_ROOT, policy, write
from tests.daemon.harness import KPTR_PASS
from tests.support import PROJECT


def test_daemon_bench_runs(tmp_path: Path) -> None:
    policies = write(tmp_path / "p.yaml", policy("base", [KPTR_PASS]))
    done = subprocess.run(
        [sys.executable, str(PROJECT / "benchmarks" / "daemon_bench.py"), "--cycles", "6",
         "--warmup", "2", "--interval", "0.01", "--root", str(TRADING_ROOT),
         "--policy", str(policies), "--no-placement"],
        cwd=PROJECT, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin"})
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines[0] == (f"daemon_bench: 6 cycles at a 0.01 s interval, root {TRADING_ROOT}, "
                        "1 checks, reports json+sarif, history, metrics")
    assert re.fullmatch(r"cpu:    \d+\.\d ms per cycle \(user\+system, cycles 2\.\.6; wall "
                        r"\d+\.\d ms per cycle\)", lines[1])
    assert re.fullmatch(r"        \d+\.\d{3}% of one core at a 30 s interval \(target < 1%\)",
                        lines[2])
    assert re.fullmatch(r"rss:    \d+\.\d MiB after cycle 2, \d+\.\d MiB after cycle 6 "
                        r"\(growth [-+]\d+\.\d MiB\)", lines[3])
    assert re.fullmatch(r"history: \d+\.\d KiB per run stored \(\d+ KiB for \d+ runs, SQLite "
                        r"file and its journal\)", lines[4])
    assert len(lines) == 5


def test_verify_bench_runs(tmp_path: Path) -> None:
    policies = write(tmp_path / "p.yaml", policy("base", [KPTR_PASS]))
    done = subprocess.run(
        [sys.executable, str(PROJECT / "benchmarks" / "verify_bench.py"), "--runs", "5",
         "--repeat", "1", "--root", str(TRADING_ROOT), "--policy", str(policies)],
        cwd=PROJECT, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin"})
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert re.fullmatch(rf"verify_bench: 1 checks, root {re.escape(str(TRADING_ROOT))}, history "
                        r"of 5 runs \(\d+\.\d MiB\)", lines[0])
    assert re.fullmatch(r"audit:  \d+\.\d ms CPU", lines[1])
    assert re.fullmatch(r"record: \d+\.\d ms \(\d+\.\d\d audits\)", lines[2])
    assert re.fullmatch(r"verify: \d+\.\d ms \(\d+\.\d\d audits, \d+ us per stored run\)",
                        lines[3])
    assert re.fullmatch(r"        once per 3600 s: \d+\.\d{3}% of one core", lines[4])
    assert len(lines) == 5


def test_verify_bench_refuses_policies_it_cannot_audit(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(PROJECT / "benchmarks" / "verify_bench.py"), "--runs", "1",
         "--root", str(TRADING_ROOT), "--policy", str(tmp_path / "missing.yaml")],
        cwd=PROJECT, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("verify_bench: the policies cannot be audited: ")
