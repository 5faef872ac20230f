"""The seccomp record parser on auditd, dmesg and kmsg text, hostile lines included."""

from __future__ import annotations

from pathlib import Path

from agent.host import seccomp_log
from agent.host.seccomp_log import SeccompEvent, parse_line
from tests.support import FIXTURES

KMSG_BODY = ('audit: type=1326 audit(1796605593.050:13065): auid=4294967295 uid=0 gid=0 '
             'ses=4294967295 pid=3617 comm="true" exe="/usr/bin/true" sig=0 arch=c000003e '
             'syscall=9 compat=0 ip=0x7f472dea4ca3 code=0x7ffc0000')


def test_fixture_records_hex_compat_and_malformed() -> None:
    log = seccomp_log.read_file(FIXTURES / "seccomp_log" / "audit.log")
    assert log.malformed == 4  # non-digit pid, quote in comm, repeated field, truncated head
    first = log.events[0]
    assert first == SeccompEvent(time=1700000000.123, pid=1234, comm="my app",
                                 exe="/usr/bin/myapp", arch=0xC000003E, syscall=41,
                                 code=0x7FFC0000)
    assert (log.events[1].arch, log.events[1].syscall) == (0x40000003, 20)  # i386
    assert [e.syscall for e in log.events] == [41, 20, 102, 39, 63, 62]


def test_dmesg_line_and_other_records() -> None:
    event = parse_line(f"[ 7527.749768] {KMSG_BODY}\n")
    assert isinstance(event, SeccompEvent)
    assert (event.pid, event.comm, event.syscall, event.time) == (3617, "true", 9,
                                                                   1796605593.05)
    assert parse_line("type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=1") is None
    assert parse_line("random text") is None


def test_hostile_lines_never_raise() -> None:
    bad = [KMSG_BODY.replace('comm="true"', 'comm=6G'),
           KMSG_BODY.replace("code=0x7ffc0000", "code=0xzz"),
           KMSG_BODY.replace("arch=c000003e", "arch=c0\x00"),
           KMSG_BODY.replace('comm="true"', 'comm="t\x07"'),
           KMSG_BODY.replace("syscall=9 ", ""),
           KMSG_BODY.replace("arch=c000003e", "arch=c0_0"),
           KMSG_BODY.replace("pid=3617", "pid=\u0663"),
           KMSG_BODY + " " + "x" * 9000,
           KMSG_BODY.replace("syscall=9", "syscall=9" * 3000)]
    assert [parse_line(line) for line in bad] == [False] * 9


def test_kmsg_fixture_root(tmp_path: Path) -> None:
    assert seccomp_log.default_source(tmp_path) == tmp_path / "dev/kmsg"
    (tmp_path / "var/log/audit").mkdir(parents=True)
    (tmp_path / "var/log/audit/audit.log").write_text("")
    assert seccomp_log.default_source(tmp_path) == tmp_path / "var/log/audit/audit.log"


def test_a_huge_line_is_read_in_bounded_pieces(tmp_path: Path) -> None:
    # A marked record of 4 MiB, with or without its line feed: one malformed line, never held
    # whole, and the record after it still read.
    for end in ("\n", ""):
        path = tmp_path / "huge.log"
        huge = KMSG_BODY + " " + "x" * (4 << 20) + end
        path.write_text(huge + (KMSG_BODY + "\n" if end else ""), encoding="utf-8")
        pieces = list(seccomp_log._bounded_lines(path.open(encoding="utf-8")))
        assert max(map(len, pieces)) <= seccomp_log._MAX_LINE + 1
        log = seccomp_log.read_file(path)
        assert log.malformed == 1
        assert len(log.events) == (1 if end else 0)
