"""The adjtimex reading against the ``adjtimex`` tool (Debian package ``adjtimex``), on this
host's kernel clock."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from agent.host.clock import KernelClock, read_clock
from agent.host.facts import ReadError
from tests.support import FIXTURES, need_tool


def _tool() -> dict[str, int]:
    done = subprocess.run([need_tool("adjtimex"), "--print"], capture_output=True, text=True,
                          timeout=60, check=True)
    fields = dict(re.findall(r"^\s*([a-z_ ]+?)\s*[:=]\s*(-?\d+)\s*$", done.stdout, re.M))
    return {name: int(value) for name, value in fields.items()}


def test_live_clock_is_what_adjtimex_prints() -> None:
    # maxerror grows by 500 us a second between updates, and a time daemon may update the
    # clock between two reads: the tool's reading must fall between two of ours, once in a few
    # tries.
    for _ in range(5):
        before = read_clock(Path("/"))
        tool = _tool()
        after = read_clock(Path("/"))
        assert isinstance(before, KernelClock) and isinstance(after, KernelClock)
        if (before.status, before.state, before.esterror, before.freq) == (
                after.status, after.state, after.esterror, after.freq) and (
                before.maxerror <= tool["maxerror"] <= after.maxerror):
            break
    else:
        raise AssertionError(f"no stable reading: {before} / {tool} / {after}")
    assert tool["status"] == after.status
    assert tool["return value"] == after.state
    assert tool["esterror"] == after.esterror
    assert tool["frequency"] == after.freq
    # The synchronized rule in the tool's own terms: no STA_UNSYNC (64), return value TIME_OK.
    assert after.synchronized == (not tool["status"] & 64 and tool["return value"] == 0)


def test_only_the_live_host_is_asked() -> None:
    found = read_clock(FIXTURES / "hosts" / "timesync-ptp")
    assert isinstance(found, ReadError)
    assert "only read on the live host" in found.reason
