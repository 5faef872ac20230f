"""``mount`` checks: parsing and lint problems, and verdicts over parsed mount tables."""

from __future__ import annotations

from typing import Any

import pytest

from agent.checks import KINDS
from agent.checks.base import SpecError
from agent.checks.mount import MountKind
from agent.host.facts import ReadError
from agent.host.mounts import MountTable, parse_mountinfo
from agent.host.snapshot import Snapshot, SnapshotRequest
from agent.result import Status
from tests.checks.snapshots import FACTS

KIND = MountKind()
TABLE = """\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
26 22 0:23 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw,inode64
27 22 0:30 / /tmp rw,nosuid,nodev,relatime shared:9 - tmpfs tmpfs rw,size=4194304k
28 22 0:31 / /mnt/huge rw,relatime - hugetlbfs none rw,pagesize=1024M
30 22 254:2 / /srv/market\\040data ro,nosuid,nodev,noexec - ext4 /dev/vdb rw
31 22 7:0 / /opt/image rw,relatime - squashfs /dev/loop0 ro,errors=continue
32 22 254:1 /var/tmp /var/tmp rw,relatime - ext4 /dev/vda1 rw
33 32 0:33 / /var/tmp rw,nosuid,nodev,noexec - tmpfs tmpfs rw
"""


def table(text: str = TABLE) -> MountTable:
    parsed = parse_mountinfo(text, "mountinfo")
    assert not isinstance(parsed, ReadError), parsed
    return parsed


def judge(raw: dict[str, Any], mounts: MountTable | ReadError | None = None) -> tuple[Status, str]:
    spec = KIND.parse(raw)
    (pid,) = KIND.request(spec).mountinfo
    snap = Snapshot(root="/x", facts=FACTS,
                    mounts={pid: table() if mounts is None else mounts})
    outcome = KIND.evaluate(spec, snap)
    return outcome.status, outcome.message


def problems(raw: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(SpecError) as caught:
        KIND.parse(raw)
    return [(p.path, p.message) for p in caught.value.problems]


def test_registered_under_its_name() -> None:
    assert isinstance(KINDS["mount"], MountKind)


def test_request_names_the_namespace() -> None:
    assert KIND.request(KIND.parse({"path": "/tmp"})) == SnapshotRequest(
        mountinfo=frozenset({"self"}))
    assert KIND.request(KIND.parse({"path": "/tmp", "pid": 1})).mountinfo == {"1"}


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        ({"path": "/tmp", "fstype": "tmpfs", "options": ["nodev", "nosuid"]}, Status.PASS,
         "/tmp is tmpfs from tmpfs, rw,nosuid,nodev,relatime,size=4194304k"),
        ({"path": "/dev/shm", "options": ["nodev", "nosuid", "noexec"]}, Status.FAIL,
         "/dev/shm: noexec not set"),
        ({"path": "/dev/shm", "fstype": ["ext4", "xfs"]}, Status.FAIL,
         "/dev/shm: fstype is tmpfs, expected ext4 or xfs"),
        ({"path": "/tmp", "forbidden": ["size"]}, Status.FAIL, "/tmp: size=4194304k set"),
        ({"path": "/tmp", "options": ["size=4G"]}, Status.PASS,
         "/tmp is tmpfs from tmpfs, rw,nosuid,nodev,relatime,size=4194304k"),
        ({"path": "/tmp", "options": ["size=4g", "noexec"], "forbidden": ["rw"]}, Status.FAIL,
         "/tmp: noexec not set; rw set"),
        # Sizes compare by value: the kernel writes 1G pages as 1024M.
        ({"path": "/mnt/huge", "fstype": "hugetlbfs", "options": ["pagesize=1G"]}, Status.PASS,
         "/mnt/huge is hugetlbfs from none, rw,relatime,pagesize=1024M"),
        ({"path": "/mnt/huge", "options": ["pagesize=2M"]}, Status.FAIL,
         "/mnt/huge: pagesize=2M not set"),
        # Octal escapes in mount points are decoded; a read-only mount is ro, not rw.
        ({"path": "/srv/market data", "options": ["ro", "noexec"], "forbidden": ["rw"]},
         Status.PASS, "/srv/market data is ext4 from /dev/vdb, ro,nosuid,nodev,noexec"),
        # A read-only superblock makes the mount read-only whatever the mount's flag says.
        ({"path": "/opt/image", "options": ["ro"]}, Status.PASS,
         "/opt/image is squashfs from /dev/loop0, ro,relatime,errors=continue"),
        # Stacked mounts: the one on top is what processes see.
        ({"path": "/var/tmp", "fstype": "tmpfs", "options": ["noexec"]}, Status.PASS,
         "/var/tmp is tmpfs from tmpfs, rw,nosuid,nodev,noexec"),
        ({"path": "/home", "options": ["nodev"]}, Status.FAIL, "nothing is mounted at /home"),
        ({"path": "/home", "options": ["nodev"], "missing": "not_applicable"},
         Status.NOT_APPLICABLE, "nothing is mounted at /home"),
        ({"path": "/home", "mounted": False}, Status.PASS, "nothing is mounted at /home"),
        ({"path": "/tmp", "mounted": False}, Status.FAIL,
         "/tmp is mounted: tmpfs from tmpfs, rw,nosuid,nodev,relatime,size=4194304k"),
        ({"path": "/"}, Status.PASS, "/ is ext4 from /dev/vda1, rw,relatime,errors=remount-ro"),
    ],
)
def test_verdicts(raw: dict[str, Any], status: Status, message: str) -> None:
    assert judge(raw) == (status, message)


def test_evidence_names_the_mount() -> None:
    spec = KIND.parse({"path": "/dev/shm", "options": ["noexec"], "pid": 1})
    outcome = KIND.evaluate(spec, Snapshot(root="/x", facts=FACTS, mounts={"1": table()}))
    assert outcome.evidence.expected == "/dev/shm mounted, with noexec"
    assert outcome.evidence.actual == "tmpfs from tmpfs, rw,nosuid,nodev,inode64"
    assert outcome.evidence.items == ({
        "mount_point": "/dev/shm", "fstype": "tmpfs", "source": "tmpfs",
        "options": "rw,nosuid,nodev,inode64", "root": "/", "mount_id": 26, "stacked": 1,
        "findings": ["noexec not set"]},)


def test_unreadable_or_unread_table_is_an_error() -> None:
    assert judge({"path": "/tmp", "mounted": False},
                 ReadError("permission denied: /proc/1/mountinfo")) == (
        Status.ERROR, "cannot evaluate: permission denied: /proc/1/mountinfo")
    spec = KIND.parse({"path": "/tmp", "mounted": False})
    outcome = KIND.evaluate(spec, Snapshot(root="/x", facts=FACTS))
    assert (outcome.status, outcome.message) == (
        Status.ERROR, "cannot evaluate: mountinfo of self not read")


@pytest.mark.parametrize(
    ("raw", "found"),
    [
        ({"path": "/tmp/"}, [(("path",), "mount point '/tmp/' is not a normalised absolute "
                              "path (write '/tmp')")]),
        ({"path": "/srv/../tmp"}, [(("path",), "mount point '/srv/../tmp' is not a normalised "
                                    "absolute path (write '/tmp')")]),
        ({"path": "/tmp", "mounted": False, "options": ["nodev"]},
         [(("options",), "'options' means nothing with mounted: false")]),
        ({"path": "/tmp", "options": ["exec"]},
         [(("options", 0), "the kernel never lists 'exec'; forbid 'noexec' instead")]),
        ({"path": "/tmp", "forbidden": ["nodev", "suid"]},
         [(("forbidden", 1), "the kernel never lists 'suid'; require 'nosuid' instead")]),
        ({"path": "/mnt/huge", "options": ["pagesize=1G"], "forbidden": ["pagesize"]},
         [(("options", 0), "option 'pagesize=1G' is both required and forbidden")]),
        ({"path": "/tmp", "missing": "not_applicable"},
         [(("missing",), "a spec that only asks for a mount cannot be not_applicable when "
           "there is none")]),
    ],
)
def test_lint_problems(raw: dict[str, Any], found: list[tuple[tuple[str | int, ...], str]]) -> None:
    assert problems(raw) == found
