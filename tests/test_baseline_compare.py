"""benchmarks/baseline_compare.py reads Lynis's and oscap's output as those tools write it.

The fixtures are lines cut from a real run on a Debian 12 VM (Lynis 3.0.8, OpenSCAP 1.3.7 with
ssg-debian 0.1.65); hostguard itself runs live on this host, its sysctl verdict checked against
the kernel's own file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import FIXTURES, PROJECT

BENCH = PROJECT / "benchmarks" / "baseline_compare.py"
CAPTURED = FIXTURES / "baseline_compare"


def compare(out: Path, env: dict[str, str] | None = None,
            *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH), "--out", str(out), *args], cwd=PROJECT,
                          capture_output=True, text=True, timeout=300, check=False, env=env)


def rows(markdown: str) -> dict[str, list[str]]:
    """Table rows by their first cell (the second where the first is an area)."""
    found: dict[str, list[str]] = {}
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| kind"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            found[cells[0]] = cells
            found[cells[1]] = cells
    return found


def test_captured_lynis_and_oscap_output_read(tmp_path: Path) -> None:
    done = compare(tmp_path, None, "--lynis-from", str(CAPTURED), "--oscap-from",
                   str(CAPTURED / "anssi-high-as-machine.xml"))
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert "Lynis: hardening index 57, 236 tests, 2 warning(s), 8 suggestion(s)." in lines
    assert ("oscap anssi-high-as-machine, profile anssi_np_nt28_high: 3 fail, 4 pass."
            in lines)
    table = rows(done.stdout)
    header = ["key", "hostguard", "Lynis", "oscap anssi-high-as-machine", "agreement"]
    assert header in table.values()
    assert table["kernel.perf_event_paranoid"][2] == "fail (expected 3, real 2)"
    assert table["kernel.randomize_va_space"][2] == "pass"
    assert table["kernel.yama.ptrace_scope"][2] == "absent"
    assert table["fs.protected_hardlinks"][3] == "pass"
    assert table["fs.suid_dumpable"][3] == "fail"
    assert table["kernel.sysrq"][2] == "absent"  # next to KRN-014; absent keys only it has go
    assert "kernel.exec-shield" not in table
    # hostguard's cell is its live verdict: the kernel's own file decides which
    kptr = int(Path("/proc/sys/kernel/kptr_restrict").read_text())
    assert table["kernel.kptr_restrict"][1] == f"KRN-001 {'pass' if kptr >= 1 else 'fail'}"
    assert table["kernel.kptr_restrict"][2] == "fail (expected 2, real 0)"
    assert table["dccp, sctp, rds, tipc cannot be loaded"][3] == "NETW-3200 suggestion"
    assert table["/tmp a separate mount, nodev, nosuid"][3:5] == [
        "FILE-6310 suggestion", "partition_for_tmp fail"]
    assert table["/var/tmp a separate mount, nodev, nosuid"][3] == "FILE-6376 no finding"
    assert table["sshd_config mode and settings"][3:5] == [
        "SSH-7408 skipped", "sshd_disable_root_login pass"]
    assert table["/etc/shadow, /etc/gshadow 0640 root:shadow"][3] == "—"


def test_skips_without_lynis_and_oscap(tmp_path: Path) -> None:
    done = compare(tmp_path, {"PATH": str(tmp_path)})
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == ("baseline_compare: skipped: neither lynis nor oscap with ssg-debian "
                           "content is installed (apt-get install lynis openscap-scanner "
                           "ssg-debian)\n")
