"""The benchmark scripts still run (tiny sizes; timings are not checked)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import PROJECT, need_root, need_tool

BENCH = PROJECT / "benchmarks" / "lint_bench.py"


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    # Run as documented: `python benchmarks/lint_bench.py` from the project root, no PYTHONPATH.
    return subprocess.run([sys.executable, str(BENCH), "--files", "5", "--checks", "6",
                           "--runs", "1", *args], cwd=PROJECT, capture_output=True, text=True,
                          timeout=300, check=False, env={"PATH": "/usr/bin:/bin"})


def test_lint_bench_runs() -> None:
    done = bench()
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert "lint says: 6 file(s) checked: 0 error(s), 0 warning(s)" in lines[1]
    assert lines[3].startswith("lint:   median ") and lines[3].endswith(" files/s")
    assert lines[4].startswith("floor:  python -c pass ")
    assert not any(line.startswith("note:") for line in lines)


def test_lint_bench_fails_when_lint_fails() -> None:
    done = bench("--invalid")
    assert done.returncode == 1
    assert done.stderr.endswith("lint_bench: lint exited 1\n")
    assert done.stdout.splitlines()[0].endswith(": error: op 'ge' needs an integer value [spec]")
    assert "6 file(s) checked: 1 error(s), 0 warning(s)" in done.stdout
    assert "files/s" not in done.stdout


def test_lint_bench_rejects_zero_sizes() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--files", "0"], cwd=PROJECT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--files, --checks and --runs must be at least 1" in done.stderr


def test_audit_bench_runs_on_a_small_synthetic_host() -> None:
    need_root()
    need_tool("unshare")
    need_tool("ss")
    done = subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "audit_bench.py"),
                           "--procs", "60", "--sockets", "300", "--listeners", "10", "--runs", "1"],
                          cwd=PROJECT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("synthetic host: 6")  # 60 sleepers + holders + the namespace init
    assert "(10 listening)" in lines[0]
    assert "hostguard audit" in lines[4] and "(exit 1;" in lines[4]  # the bench policy fails
    assert lines[5].startswith("ratio audit / ss")


def test_report_json_bench_runs() -> None:
    done = subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "report_json_bench.py"),
                           "--size", "20", "--runs", "1"], cwd=PROJECT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Python ") and lines[0].endswith(" KB indented")
    assert lines[1].startswith("json.dumps(indent=2) ") and " 1.00x " in lines[1]
    assert lines[2].startswith("json.dumps, no indent ")


def test_record_bench_runs() -> None:
    # It weighs records against dataclasses: records built as records, whatever the suite's mode.
    env = {k: v for k, v in os.environ.items() if k != "HOSTGUARD_PLAIN_RECORDS"}
    done = subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "record_bench.py"),
                           "--runs", "1", "--instances", "10"], cwd=PROJECT, capture_output=True,
                          text=True, timeout=300, check=False, env=env)
    assert (done.returncode, done.stderr) == (0, "")
    lines = [line for line in done.stdout.splitlines() if not line.startswith("msgspec is not")]
    assert lines[0].startswith("Python ") and " @record classes in agent/" in lines[0]
    assert lines[2].startswith("dataclass(frozen=True) ") and lines[2].count("(1.00x)") == 4
    assert lines[3].startswith("@record ")


def test_validate_bench_runs() -> None:
    done = subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "validate_bench.py"),
                           "--runs", "1", "--reports", "2"], cwd=PROJECT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert (done.returncode, done.stderr) == (0, "")  # each fast path accepted the valid inputs
    lines = [line for line in done.stdout.splitlines() if not line.startswith("fastjsonschema is")]
    assert lines[1].endswith("fresh interpreter (import + build + validate):")
    assert lines[2].startswith("  jsonschema ") and lines[2].endswith("(1.00x)")
    assert lines[3].startswith("  quickcheck ")
    assert any(line.startswith("2 reports of ") for line in lines)


def test_learn_bench_runs() -> None:
    done = subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "learn_bench.py"),
                           "--lines", "200", "--runs", "1"], cwd=PROJECT, capture_output=True,
                          text=True, timeout=120, check=False, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "log: 200 lines, 20 seccomp records, 0 malformed"
    assert lines[2].startswith("learn:  median ") and lines[2].endswith("(exit 1)")
