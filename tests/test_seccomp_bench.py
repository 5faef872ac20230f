"""benchmarks/seccomp_bench.py still runs (tiny sizes; timings are not checked)."""

from __future__ import annotations

import subprocess
import sys

from tests.support import PROJECT, need_root, need_tool

BENCH = PROJECT / "benchmarks" / "seccomp_bench.py"


def test_seccomp_bench_runs() -> None:
    need_tool("cc")
    need_root()
    done = subprocess.run([sys.executable, str(BENCH), "--iterations", "2000", "--runs", "1",
                           "--dumps", "5", "--applies", "5"],
                          cwd=PROJECT, capture_output=True, text=True, timeout=300, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines[0].startswith("seccomp filter cost: kernel ")
    assert "2000 calls x 1 runs on CPU " in lines[0]
    assert lines[0].endswith(", median ns/call")
    assert lines[1].split() == ["variant", "BPF", "insns", "getppid", "ratio", "fcntl(arg)",
                                "ratio"]
    blank = lines.index("")  # the bpf.table() section follows
    rows = {line[:24].strip(): line[24:].split() for line in lines[2:blank] if
            not line.startswith("note:")}
    assert list(rows)[:4] == ["no filter", "allow-all floor", "trading (tree)", "trading (linear)"]
    assert rows["no filter"][0] == "0" and rows["no filter"][2] == "1.00"
    for name, cells in rows.items():
        assert len(cells) == 5, name
        assert float(cells[1]) > 0 and float(cells[3]) > 0
        if name != "no filter":
            assert int(cells[0]) > 0  # a real program was loaded
    assert "note: trading profile: policies/seccomp/trading-gateway.yaml" in lines
    second = lines.index("", blank + 1)  # the deep dump stop-time section follows
    table = lines[blank + 1:second]
    assert table[0] == ("effective table: bpf.table() over every known syscall number, "
                        "median ms of 3 runs")
    header = table[1].split()
    assert header[:3] == ["filter", "BPF", "insns"] and header[3] == "x86_64"
    timed = {line[:24].strip(): line[24:].split() for line in table[2:]}
    assert {"trading (tree)", "long linear"} <= set(timed)
    for name, cells in timed.items():
        assert len(cells) == 1 + (len(header) - 3) // 2, name  # insns, then one per ABI
        assert int(cells[0]) > 0 and all(float(c) > 0 for c in cells[1:]), name
    third = lines.index("", second + 1)  # the apply stop-time section follows
    applied = lines[third + 1:]
    assert applied[0] == ("apply stop time: 5 filters loaded per row by a held thread, "
                          "microseconds")
    assert applied[-1].startswith("note: trading (tree) loaded by a process itself ")
    held = [(line[:24].strip(), line[24:].split()) for line in applied[2:-1]]
    assert [(name, cells[0]) for name, cells in held] == [("trading (tree)", "idle"),
                                                          ("trading (tree)", "busy")]
    for _, cells in held:
        assert len(cells) == 7 and all(float(c) > 0 for c in cells[1:])
    stops = lines[second + 1:third]
    assert stops[0] == "deep dump stop time: 5 fresh dumps per row, microseconds"
    assert stops[1].split() == ["filter", "target", "stop", "p50", "p99", "max", "held", "p50",
                                "p99", "max"]
    dumped = [(line[:24].strip(), line[24:].split()) for line in stops[2:]]
    assert [(name, cells[0]) for name, cells in dumped][:2] == [("trading (tree)", "idle"),
                                                              ("trading (tree)", "busy")]
    for _, cells in dumped:
        assert len(cells) == 7 and all(float(c) > 0 for c in cells[1:])


def test_seccomp_bench_rejects_zero_sizes() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--runs", "0"], cwd=PROJECT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--iterations and --runs must be at least 1" in done.stderr
