"""The kernel's seccomp records (audit type 1326, ``SECCOMP``), read from the host.

Three places hold them: the kernel ring buffer (``/dev/kmsg``, where the kernel prints audit
records when no audit daemon takes them), ``/var/log/audit/audit.log`` (auditd's
``type=SECCOMP msg=audit(EPOCH.mmm:SERIAL): ...``) or a saved copy of either (``dmesg`` output
too). Every record carries its own wall-clock time in ``audit(EPOCH.mmm:SERIAL)``, so the
ring buffer's monotonic stamps are not needed.

The fields are attacker-influenced (a process chooses its ``comm`` and its executable's path):
a line is taken only if every field parses, strings quoted without a quote inside or
hex-encoded as auditd writes any value with a space, quote or control character; anything else
is counted as malformed, never raised.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from agent.core.record import record

AUDIT_LOG = "var/log/audit/audit.log"
KMSG = "dev/kmsg"
_MAX_LINE = 8192
"""Longer lines are not records the kernel writes (it caps a record near this size)."""

# The record's head: kmsg/dmesg ("audit: type=1326 audit(...)"), auditd ("type=SECCOMP msg=...").
_HEAD = re.compile(r"(?:type=1326 |type=SECCOMP msg=)audit\((\d{1,12})\.(\d{3}):(\d{1,20})\): ")
_FIELD = re.compile(r'([a-z_]{1,16})=("[^"\x00-\x1f\x7f]{0,4096}"|[^\s"]{1,4096})(?: +|$)')
_HEX = re.compile(r"(?:[0-9A-F]{2}){1,4096}")
_FORMS = {"pid": re.compile(r"[0-9]{1,10}"), "arch": re.compile(r"[0-9a-f]{1,8}"),
          "syscall": re.compile(r"[0-9]{1,10}"), "code": re.compile(r"0x[0-9a-f]{1,8}")}
"""The fields a record needs, each as the kernel writes it (int() alone would take "1_0")."""


@record
class SeccompEvent:
    """One seccomp record."""

    time: float
    """Seconds since the epoch (the record's own audit stamp)."""
    pid: int
    comm: str
    """The process name, decoded (``""`` when absent)."""
    exe: str
    """The executable's path, decoded (``""`` when absent)."""
    arch: int
    """The AUDIT_ARCH value of the ABI the call came through."""
    syscall: int
    code: int
    """The filter's return value (action in the high 16 bits)."""


@record
class SeccompLog:
    """What a source held."""

    events: tuple[SeccompEvent, ...]
    malformed: int
    """Lines that looked like seccomp records but did not parse."""
    lost: int = 0
    """Ring buffer records overwritten while reading."""


def _text(raw: str) -> str | None:
    if raw.startswith('"'):
        return raw[1:-1]
    if raw == "(null)":
        return ""
    if _HEX.fullmatch(raw):
        return bytes.fromhex(raw).decode("utf-8", "backslashreplace")
    return None


def parse_line(line: str) -> SeccompEvent | bool | None:
    """The record on ``line``; None if it is no seccomp record; False if it is a malformed one."""
    marked = "type=1326" in line[:256] or "type=SECCOMP" in line[:256]
    if len(line) > _MAX_LINE:
        return False if marked else None
    head = _HEAD.search(line, 0, 256)
    if head is None:
        return False if marked and "audit(" in line else None
    fields: dict[str, str] = {}
    at = head.end()
    body = line.split("\x1d", 1)[0].rstrip("\n")  # auditd's enriched fields follow a 0x1d
    while at < len(body):
        match = _FIELD.match(body, at)
        if match is None or match.group(1) in fields:
            return False
        fields[match.group(1)] = match.group(2)
        at = match.end()
    if not all(_FORMS[k].fullmatch(fields.get(k, "")) for k in _FORMS):
        return False
    comm = _text(fields.get("comm", "(null)"))
    exe = _text(fields.get("exe", "(null)"))
    if comm is None or exe is None:
        return False
    return SeccompEvent(time=int(head.group(1)) + int(head.group(2)) / 1000,
                        pid=int(fields["pid"]), comm=comm, exe=exe,
                        arch=int(fields["arch"], 16), syscall=int(fields["syscall"]),
                        code=int(fields["code"][2:], 16))


def parse_lines(lines: Iterable[str]) -> SeccompLog:
    """The seccomp records among ``lines``."""
    events: list[SeccompEvent] = []
    malformed = 0
    for line in lines:
        parsed = parse_line(line)
        if parsed is False:
            malformed += 1
        elif isinstance(parsed, SeccompEvent):
            events.append(parsed)
    return SeccompLog(tuple(events), malformed)


def read_file(path: Path) -> SeccompLog:
    """The records in a saved log (audit.log, dmesg or kmsg text). Raises OSError."""
    with path.open(encoding="utf-8", errors="replace") as stream:
        return parse_lines(_bounded_lines(stream))


def _bounded_lines(stream: TextIO) -> Iterator[str]:
    """The lines of ``stream``, each cut after :data:`_MAX_LINE` + 1 characters (so that it
    still counts as too long) and the rest of it skipped: a hostile file with no line feed is
    never held in memory whole."""
    while line := stream.readline(_MAX_LINE + 1):
        if len(line) > _MAX_LINE and not line.endswith("\n"):
            while (rest := stream.readline(_MAX_LINE)) and not rest.endswith("\n"):
                pass
        yield line


def _kmsg_lines(fd: int, lost: list[int]) -> Iterator[str]:
    while True:
        try:
            chunk = os.read(fd, _MAX_LINE * 2)
        except BlockingIOError:
            return  # the end of the buffer
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # records overwritten under us: go on with the next
                lost[0] += 1
                continue
            raise
        if not chunk:
            return
        head, _, message = chunk.decode("utf-8", "replace").partition(";")
        if head.count(",") >= 3:  # "prio,seq,usec,flags;message\n continuation..."
            yield message.split("\n", 1)[0]


def read_kmsg(root: Path = Path("/")) -> SeccompLog:
    """The records still in the kernel ring buffer, read to its end without waiting.
    Raises OSError (e.g. no permission)."""
    fd = os.open(root / KMSG, os.O_RDONLY | os.O_NONBLOCK)
    lost = [0]
    try:
        log = parse_lines(_kmsg_lines(fd, lost))
    finally:
        os.close(fd)
    return SeccompLog(log.events, log.malformed, lost[0])


def default_source(root: Path = Path("/")) -> Path:
    """auditd's log when there is one (records then go there, not to the ring buffer), else
    the ring buffer."""
    audit = root / AUDIT_LOG
    return audit if audit.is_file() else root / KMSG
