"""The mountinfo reader against a fixture tree, odd tables, and the live kernel with
``findmnt -J`` (util-linux) as the oracle, in this namespace and in private ones made here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent.host.facts import ReadError
from agent.host.mounts import Mount, MountTable, parse_mountinfo, read_mountinfo
from tests.support import FIXTURES, PROJECT, need, need_root, need_tool, run_cli

MOUNTS = FIXTURES / "hosts" / "mounts"


def mounted(value: MountTable | ReadError) -> MountTable:
    assert not isinstance(value, ReadError), value
    return value


def test_fixture_namespaces() -> None:
    own = mounted(read_mountinfo(MOUNTS, "self"))
    assert [m.mount_point for m in own][:3] == ["/", "/proc", "/sys"]
    assert own[8] == Mount(
        mount_id=30, parent_id=22, root="/", mount_point="/srv/market data",
        options=("ro", "nosuid", "nodev", "noexec", "relatime"), fstype="ext4",
        source="/dev/vdb", super_options=("rw",))
    init = mounted(read_mountinfo(MOUNTS, "1"))
    assert [(m.mount_point, m.effective_options()) for m in init] == [
        ("/", ("rw", "relatime", "errors=remount-ro")),
        ("/tmp", ("rw", "relatime", "size=4194304k")),
    ]


def test_missing_unreadable_and_malformed_tables_are_errors(tmp_path: Path) -> None:
    assert read_mountinfo(MOUNTS, "42") == ReadError(
        f"no such file: {MOUNTS}/proc/42/mountinfo")
    assert read_mountinfo(MOUNTS, "../1") == ReadError("not a process id: '../1'")
    bad = tmp_path / "proc" / "7"
    bad.mkdir(parents=True)
    (bad / "mountinfo").write_text("22 1 254:1 / / rw - ext4 /dev/vda1 rw\n"
                                   "23 22 0:21 / /proc rw,nosuid proc proc rw\n")
    assert read_mountinfo(tmp_path, "7") == ReadError(
        f"{tmp_path}/proc/7/mountinfo:2: no '-' separator in "
        "'23 22 0:21 / /proc rw,nosuid proc proc rw'")
    (bad / "mountinfo").write_text("22 1 254:1 / / rw - ext4 /dev/vda1\n")
    assert isinstance(read_mountinfo(tmp_path, "7"), ReadError)
    (tmp_path / "proc" / "8" / "mountinfo").mkdir(parents=True)
    assert read_mountinfo(tmp_path, "8") == ReadError(
        f"is a directory: {tmp_path}/proc/8/mountinfo")


def test_escapes_are_decoded() -> None:
    (mount,) = mounted(parse_mountinfo(
        "40 1 0:5 /a\\134b /mnt/x\\040y\\011z rw - tmpfs my\\040src rw\n", "t"))
    assert (mount.root, mount.mount_point, mount.source) == ("/a\\b", "/mnt/x y\tz", "my src")


# --- the live kernel, findmnt as the oracle ----------------------------------------------------


def _findmnt(rows: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    found = []
    for row in rows:
        source = row["source"] or ""
        if row["fsroot"] != "/" and source.endswith(f"[{row['fsroot']}]"):
            source = source[: -len(row["fsroot"]) - 2]  # findmnt shows a bind's subtree so
        found.append((row["target"], row["fstype"], source, row["options"]))
    return sorted(found)


def _ours(table: MountTable) -> list[tuple[str, str, str, str]]:
    return sorted((m.mount_point, m.fstype, m.source, ",".join(m.effective_options()))
                  for m in table)


FINDMNT = ["-J", "-l", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS,FSROOT"]


def test_live_table_matches_findmnt() -> None:
    findmnt = need_tool("findmnt")
    # findmnt, a child of this process, sees this process's namespace.
    oracle = json.loads(subprocess.run([findmnt, *FINDMNT], capture_output=True, text=True,
                                       check=True).stdout)["filesystems"]
    assert _ours(mounted(read_mountinfo(Path("/"), "self"))) == _findmnt(oracle)


# In a private mount namespace: mount what the policy speaks of, then let the reader, findmnt
# and a whole `hostguard audit` look at the same namespace.
_IN_NAMESPACE = """
set -e
mount -t tmpfs -o nodev,nosuid,size=1m tmpfs "$1"
mount -t hugetlbfs -o "pagesize=$6" none "$2"
mount -t tmpfs -o ro,noexec tmpfs "$3"
mount -t tmpfs -o nodev tmpfs "$3"
findmnt -J -l -o TARGET,SOURCE,FSTYPE,OPTIONS,FSROOT > "$4/findmnt.json"
"$5" -c 'import json, sys; from pathlib import Path; from agent.host.mounts import read_mountinfo
t = read_mountinfo(Path("/"), "self")
json.dump([[m.mount_point, m.fstype, m.source, ",".join(m.effective_options())] for m in t],
          sys.stdout)' > "$4/ours.json"
rc=0
"$5" -m agent audit --policy "$4/policy.yaml" --format json --output "$4/audit.json" || rc=$?
echo "$rc" > "$4/audit.rc"
"""

_POLICY = """\
apiVersion: hostguard/v1
kind: Policy
metadata: {{name: mounts}}
checks:
  - {{id: M1, kind: mount, spec: {{path: "{space}", fstype: tmpfs, options: [nodev, nosuid]}}}}
  - {{id: M2, kind: mount, spec: {{path: "{space}", options: [noexec]}}}}
  - {{id: M3, kind: mount, spec: {{path: "{huge}", fstype: hugetlbfs, options: [pagesize={size}]}}}}
  - {{id: M4, kind: mount, spec: {{path: "{huge}", options: [pagesize=3M]}}}}
  - {{id: M5, kind: mount, spec: {{path: "{stacked}", options: [nodev], forbidden: [ro]}}}}
  - {{id: M6, kind: mount, spec: {{path: "{space}/none", mounted: false}}}}
  - {{id: M7, kind: mount, spec: {{path: "{space}", mounted: false}}}}
"""


def _largest_huge_page() -> str:
    """The largest huge page size this kernel has, as a mount option value (``1G``, ``2M``)."""
    sizes = [int(p.name.removeprefix("hugepages-").removesuffix("kB"))
             for p in Path("/sys/kernel/mm/hugepages").glob("hugepages-*kB")]
    need(bool(sizes), "the kernel has no huge pages (no hugetlbfs)")
    kib = max(sizes)
    return f"{kib >> 20}G" if kib >= 1 << 20 else f"{kib >> 10}M"


def _policy(**paths: object) -> str:
    # Every check the same title, severity and reasons: only the specs matter here.
    fields = "title: t, severity: low, rationale: r, remediation: m"
    return "".join(line.replace("kind: mount,", f"kind: mount, {fields},")
                   for line in _POLICY.format(**paths).splitlines(keepends=True))


def test_private_namespace_mounts(tmp_path: Path) -> None:
    need_root()
    unshare, findmnt = need_tool("unshare"), need_tool("findmnt")
    size = _largest_huge_page()  # 1G on x86 trading hosts
    space, hugedir, stacked = tmp_path / "with space", tmp_path / "huge", tmp_path / "stacked"
    for directory in (space, hugedir, stacked):
        directory.mkdir()
    (tmp_path / "policy.yaml").write_text(_policy(space=space, huge=hugedir,
                                                         stacked=stacked, size=size))
    env = {"PATH": f"{Path(findmnt).parent}:/usr/sbin:/usr/bin:/sbin:/bin",
           "PYTHONPATH": str(PROJECT)}
    done = subprocess.run([unshare, "--mount", "--propagation", "private", "/bin/sh", "-c",
                           _IN_NAMESPACE, "sh", str(space), str(hugedir), str(stacked),
                           str(tmp_path), sys.executable, size],
                          check=False, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    oracle = json.loads((tmp_path / "findmnt.json").read_text())["filesystems"]
    ours = [tuple(row) for row in json.loads((tmp_path / "ours.json").read_text())]
    assert sorted(ours) == _findmnt(oracle)
    assert (str(space), "tmpfs", "tmpfs", "rw,nosuid,nodev,relatime,size=1024k") in ours
    (huge_options,) = [row["options"] for row in oracle if row["target"] == str(hugedir)]
    assert (tmp_path / "audit.rc").read_text() == "1\n", done.stderr  # 1: some checks failed
    results = json.loads((tmp_path / "audit.json").read_text())["results"]
    verdicts = {r["id"]: (r["status"], r["message"]) for r in results}
    assert verdicts == {
        "M1": ("pass", f"{space} is tmpfs from tmpfs, rw,nosuid,nodev,relatime,size=1024k"),
        "M2": ("fail", f"{space}: noexec not set"),
        "M3": ("pass", f"{hugedir} is hugetlbfs from none, {huge_options}"),
        "M4": ("fail", f"{hugedir}: pagesize=3M not set"),
        "M5": ("pass", f"{stacked} is tmpfs from tmpfs, rw,nodev,relatime"),
        "M6": ("pass", f"nothing is mounted at {space}/none"),
        "M7": ("fail", f"{space} is mounted: tmpfs from tmpfs, "
                       "rw,nosuid,nodev,relatime,size=1024k"),
    }


def test_audit_of_a_fixture_root_reads_its_namespaces() -> None:
    # The shipped policy's checks ask for PID 1's namespace: the fixture's proc/1/mountinfo.
    done = run_cli("audit", "--root", str(MOUNTS), "--policy",
                   str(PROJECT / "policies" / "filesystem.yaml"), "--format", "json")
    verdicts = {r["id"]: (r["status"], r["message"]) for r in json.loads(done.stdout)["results"]
                if r["id"].startswith("MNT-")}
    assert verdicts == {
        "MNT-001": ("fail", "/tmp: nodev, nosuid not set"),
        "MNT-002": ("not_applicable", "nothing is mounted at /dev/shm"),
        "MNT-003": ("not_applicable", "nothing is mounted at /var/tmp"),
    }
    assert done.returncode == 1, done.stderr
