"""``process`` checks: parse and lint, pure evaluation over hand-built process tables, and real
child processes (affinity, SCHED_FIFO, no_new_privs, an unprivileged user with a dropped
bounding set, seccomp filters, a multi-threaded child) audited on the live host."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import audit
from agent.checks import KINDS
from agent.checks.base import SpecError, SpecProblem
from agent.checks.process import (
    CAP_BITS,
    CAPABILITIES,
    CapRule,
    ProcessKind,
    ProcessSpec,
    decode_caps,
)
from agent.checks.selectors import ProcessSelector
from agent.host.processes import Process, ProcessTable, Thread
from agent.host.snapshot import Snapshot
from agent.policy.resolve import resolve
from agent.result import AuditRun, Result, Status
from tests.authoring import check, policy, write
from tests.checks.snapshots import FACTS
from tests.live import live_children, sleeper, threaded
from tests.support import need, need_root, need_tool

KIND = ProcessKind()
TODAY = dt.date(2026, 6, 1)


def problems(raw: dict[str, Any]) -> list[SpecProblem]:
    with pytest.raises(SpecError) as caught:
        KIND.parse(raw)
    return caught.value.problems


def proc(pid: int, name: str = "fixgw", **fields: Any) -> Process:
    """A plausible unprivileged process; ``fields`` override."""
    base: dict[str, Any] = dict(
        pid=pid, ppid=1, name=name, kernel_thread=False, start_time=100,
        exe=f"/opt/{name}/bin/{name}", cmdline=(f"/opt/{name}/bin/{name}", "--venue=LSE"),
        uid=1000, ruid=1000, user="trader", cap_eff=0, cap_prm=0, cap_bnd=(1 << 41) - 1,
        cap_amb=0, no_new_privs=True, seccomp=2, seccomp_filters=1,
        cpus_allowed=frozenset({2, 3}), sched_policy=1, rt_priority=60, nice=0, cgroups=(),
        netns=4026531840)
    base.update(fields)
    return Process(**base)


def snap(*procs: Process) -> Snapshot:
    table = ProcessTable({p.pid: p for p in procs}, 4026531840, {0: "root", 1000: "trader"})
    return Snapshot(root="/x", facts=FACTS, processes=table)


def judge(raw: dict[str, Any], *procs: Process) -> tuple[Status, str]:
    outcome = KIND.evaluate(KIND.parse(raw), snap(*procs))
    return outcome.status, outcome.message


# --- registry, parse, request -----------------------------------------------------------------


def test_registered_under_its_name() -> None:
    assert isinstance(KINDS["process"], ProcessKind)


def test_parse_everything() -> None:
    spec = KIND.parse({
        "name": "fixgw", "exe": "/opt/*", "cmdline": "--venue=(LSE|XETRA)", "user": "trader",
        "required": True, "not_root": True, "no_new_privs": True,
        "capabilities": {"effective": {"subset_of": ["CAP_NET_BIND_SERVICE", "sys_nice"]},
                         "bounding": {"must_not_have": ["cap_sys_admin"]}},
        "cpus": {"subset_of": "2-3,5", "threads": True},
        "sched": {"policy": "fifo", "priority": {"ge": 50}},
        "seccomp": {"mode": "filter", "min_filters": 1},
    })
    assert spec == ProcessSpec(
        selector=ProcessSelector(name="fixgw", exe="/opt/*",
                                 cmdline=re.compile("--venue=(LSE|XETRA)"), user="trader"),
        count=(1, None), not_root=True, no_new_privs=True,
        caps=(CapRule("effective", 1 << 10 | 1 << 23, 0), CapRule("bounding", None, 1 << 21)),
        cpus=frozenset({2, 3, 5}), cpus_text="2-3,5", sched_policy="SCHED_FIFO",
        priority=(("ge", 50),), seccomp_mode="filter", min_filters=1, cpus_threads=True)


def test_request_reads_posture_only_of_the_processes_selected() -> None:
    request = KIND.request(KIND.parse({"name": "fixgw*", "required": True}))
    assert request.process_fields == frozenset()  # name and kernel_thread come with stat
    (detail,) = request.process_details
    assert detail.fields == {"uid", "user", "cmdline"}  # who, in the evidence rows
    assert detail.select(proc(1, "fixgw-main")) is True
    assert detail.select(proc(2, "sshd")) is False
    assert detail.select(proc(3, "fixgw", kernel_thread=True)) is False
    unsure = proc(4, "", unreadable={"stat": "Permission denied", "status": "Permission denied"})
    assert detail.select(unsure) == "name: Permission denied"  # undecided: details are read
    posture = KIND.request(KIND.parse({"exe": "/opt/*", "cmdline": "--venue", "user": "trader",
                                       "no_new_privs": True, "cpus": {"subset_of": "2-3"},
                                       "capabilities": {"bounding": {"subset_of": []}},
                                       "seccomp": {"mode": "filter"}}))
    assert posture.process_fields == {"exe", "cmdline", "uid", "user"}
    (detail,) = posture.process_details
    assert detail.fields == {"uid", "user", "cmdline", "no_new_privs", "cpus_allowed",
                             "cap_bnd", "seccomp", "seccomp_filters"}


@pytest.mark.parametrize(("raw", "threads"), [
    ({"name": "x", "required": True}, False),
    ({"name": "x", "cpus": {"subset_of": "1"}}, False),
    ({"name": "x", "threads": True, "not_root": True}, False),  # nothing per-thread asked
    ({"name": "x", "cpus": {"subset_of": "1", "threads": True}}, True),
    ({"name": "x", "threads": True, "seccomp": {"mode": "filter"}}, True),
    ({"name": "x", "threads": True, "seccomp": {"mode": "filter", "threads": False}}, False),
    ({"name": "x", "threads": True, "no_new_privs": True}, True),
])
def test_request_asks_for_threads_only_when_needed(raw: dict[str, Any], threads: bool) -> None:
    request = KIND.request(KIND.parse(raw))
    assert not request.threads and not request.processes  # never for every process
    (detail,) = request.process_details
    assert ("threads" in detail.fields) is threads


@pytest.mark.parametrize(("raw", "found"), [
    ({"name": "x", "capabilities": {"effective": {"subset_of": ["CAP_NET_BIND_SERVCE"]},
                                    "ambient": {"must_not_have": ["CAP_SYS_ADMIN", "bogus"]}}},
     [SpecProblem(("capabilities", "effective", "subset_of", 0),
                  "unknown capability 'CAP_NET_BIND_SERVCE' (did you mean "
                  "'CAP_NET_BIND_SERVICE'?)"),
      SpecProblem(("capabilities", "ambient", "must_not_have", 1),
                  "unknown capability 'bogus'")]),
    ({"name": "x", "sched": {"policy": "SCHED_FIFOO"}},
     [SpecProblem(("sched", "policy"), "unknown scheduling policy 'SCHED_FIFOO' (did you mean "
                  "'SCHED_FIFO'?); known: SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, "
                  "SCHED_IDLE, SCHED_DEADLINE")]),
    ({"name": "x", "sched": {"policy": "SCHED_OTHER", "priority": {"ge": 50}}},
     [SpecProblem(("sched", "priority"), "SCHED_OTHER has real-time priority 0; a priority >= "
                  "50 needs SCHED_FIFO or SCHED_RR")]),
    ({"name": "x", "sched": {"priority": {"ge": 60, "le": 50}}},
     [SpecProblem(("sched", "priority"), "priority conditions {'ge': 60, 'le': 50} cannot all "
                  "hold")]),
    ({"name": "x", "cpus": {"subset_of": "2-x"}},
     [SpecProblem(("cpus", "subset_of"), "bad CPU list '2-x': expected numbers and ranges "
                  "such as '2-5,8'")]),
    ({"name": "x", "cpus": {"subset_of": "5-2"}},
     [SpecProblem(("cpus", "subset_of"), "bad CPU list '5-2': bad CPU range '5-2'")]),
    ({"name": "x", "count": {"min": 3, "max": 2}},
     [SpecProblem(("count",), "count min 3 is greater than max 2")]),
    ({"name": "x", "required": True, "forbidden": True},
     [SpecProblem(("required",), "'required' contradicts 'forbidden: true'")]),
    ({"name": "x", "forbidden": True, "not_root": True},
     [SpecProblem(("forbidden",), "a forbidden process needs no other expectation: drop them "
                  "or drop 'forbidden'")]),
    ({"name": "x", "required": False},
     [SpecProblem((), "no expectation: give required, count, forbidden, not_root, "
                  "no_new_privs, capabilities, cpus, sched or seccomp")]),
    ({"name": "x", "seccomp": {"mode": "strict", "min_filters": 1}},
     [SpecProblem(("seccomp", "min_filters"), "min_filters needs mode 'filter' (mode 'strict' "
                  "has no filters)")]),
])
def test_semantic_lint(raw: dict[str, Any], found: list[SpecProblem]) -> None:
    assert problems(raw) == found


def test_lint_locates_spec_problems_in_the_policy_file(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("p", [
        check("T-1", "process", {"cmdline": "(", "required": True}),
        check("T-2", "process", {"name": "x", "capabilities": {"effective": {
            "subset_of": ["CAP_SYS_NICE", "CAP_SYSNICE"]}}}),
    ]))
    found = [(d.location.line, d.rule, d.message) for d in resolve([path], TODAY).diagnostics]
    lines = path.read_text().splitlines()
    regex_line = next(i for i, line in enumerate(lines, 1) if '"cmdline": "("' in line)
    cap_line = next(i for i, line in enumerate(lines, 1) if '"CAP_SYSNICE"' in line)
    assert found == [
        (regex_line, "invalid-regex",
         "invalid regex '(': missing ), unterminated subpattern at position 0"),
        (cap_line, "spec", "unknown capability 'CAP_SYSNICE' (did you mean 'CAP_SYS_NICE'?)"),
    ]


def test_schema_refuses_a_spec_without_selector(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("p", [check("T-1", "process", {"required": True})]))
    assert [d.rule for d in resolve([path], TODAY).diagnostics] == ["schema"]


# --- the capability table ---------------------------------------------------------------------


def test_capability_table_shape() -> None:
    assert len(CAPABILITIES) == 41
    assert (CAP_BITS["CAP_CHOWN"], CAP_BITS["CAP_NET_BIND_SERVICE"], CAP_BITS["CAP_SYS_ADMIN"],
            CAP_BITS["CAP_CHECKPOINT_RESTORE"]) == (0, 10, 21, 40)
    assert decode_caps(0x800400) == ["CAP_NET_BIND_SERVICE", "CAP_SYS_NICE"]
    assert decode_caps(1 << 42 | 1) == ["CAP_CHOWN", "CAP_#42"]
    assert decode_caps(0) == []


def test_capability_table_matches_capsh() -> None:
    capsh = need_tool("capsh")
    done = subprocess.run([capsh, f"--decode={(1 << 41) - 1:x}"], capture_output=True,
                          text=True, check=True)
    names = done.stdout.strip().partition("=")[2].split(",")
    assert [n.upper() for n in names] == list(CAPABILITIES)


def test_capability_table_matches_the_kernel_header() -> None:
    header = Path("/usr/include/linux/capability.h")
    need(header.exists(), "linux/capability.h is not installed (linux-libc-dev)")
    defined = dict(re.findall(r"^#define (CAP_[A-Z_]+)\s+(\d+)\s*$", header.read_text(),
                              re.MULTILINE))
    assert {name: int(bit) for name, bit in defined.items()} == CAP_BITS


# --- evaluation over hand-built tables --------------------------------------------------------


def test_gateway_posture_passes() -> None:
    raw = {"name": "fixgw", "required": True, "not_root": True, "no_new_privs": True,
           "capabilities": {"effective": {"subset_of": ["CAP_NET_BIND_SERVICE"]}},
           "cpus": {"subset_of": "2-5"}, "sched": {"policy": "SCHED_FIFO",
                                                   "priority": {"ge": 50}},
           "seccomp": {"mode": "filter", "min_filters": 1}}
    outcome = KIND.evaluate(KIND.parse(raw), snap(proc(10, cap_eff=1 << 10), proc(11, "sshd")))
    assert outcome.status is Status.PASS
    assert outcome.evidence.actual == "1 matching process(es): pids 10"
    assert outcome.evidence.expected == (
        "processes named 'fixgw': count >= 1, not root, no_new_privs, CapEff subset of "
        "[CAP_NET_BIND_SERVICE], CPUs within 2-5, SCHED_FIFO, rt_priority >= 50, seccomp "
        "filter, >= 1 seccomp filters")
    assert [r["verdict"] for r in outcome.evidence.items] == ["pass"] * 10


@pytest.mark.parametrize(("raw", "fields", "message"), [
    ({"not_root": True}, {"uid": 0}, "pid 10 ('fixgw') runs as root"),
    ({"no_new_privs": True}, {"no_new_privs": False}, "pid 10 ('fixgw') has NoNewPrivs 0"),
    ({"capabilities": {"effective": {"subset_of": ["CAP_NET_BIND_SERVICE"]}}},
     {"cap_eff": 1 << 10 | 1 << 21 | 1 << 12}, "pid 10 ('fixgw') CapEff has CAP_NET_ADMIN, "
     "CAP_SYS_ADMIN"),
    ({"capabilities": {"bounding": {"must_not_have": ["CAP_SYS_MODULE"]}}}, {},
     "pid 10 ('fixgw') CapBnd has CAP_SYS_MODULE"),
    ({"cpus": {"subset_of": "2-5"}}, {"cpus_allowed": frozenset({0, 1, 2, 3})},
     "pid 10 ('fixgw') may run on CPUs 0-3, outside 2-5"),
    ({"sched": {"policy": "SCHED_FIFO"}}, {"sched_policy": 0}, "pid 10 ('fixgw') runs under "
     "SCHED_OTHER"),
    ({"sched": {"priority": {"ge": 50}}}, {"rt_priority": 10}, "pid 10 ('fixgw') has real-time "
     "priority 10, expected >= 50"),
    ({"seccomp": {"mode": "filter"}}, {"seccomp": 0}, "pid 10 ('fixgw') has seccomp mode "
     "disabled"),
    ({"seccomp": {"min_filters": 2}}, {}, "pid 10 ('fixgw') has 1 seccomp filter(s), expected "
     ">= 2"),
])
def test_each_expectation_fails(raw: dict[str, Any], fields: dict[str, Any],
                                message: str) -> None:
    assert judge({"name": "fixgw", **raw}, proc(10, **fields)) == (Status.FAIL, message)


def test_zero_matches() -> None:
    lone = proc(10, "sshd")
    assert judge({"name": "fixgw", "not_root": True}, lone) == (
        Status.NOT_APPLICABLE, "no process matches")
    assert judge({"name": "fixgw", "required": True}, lone) == (Status.FAIL, "no process matches")
    assert judge({"name": "fixgw", "forbidden": True}, lone) == (Status.PASS, "no process matches")
    assert judge({"name": "fixgw", "count": {"min": 0, "max": 2}}, lone) == (
        Status.PASS, "processes named 'fixgw': count 0..2 holds for 0 matching process(es)")


def test_counts() -> None:
    three = [proc(10), proc(11), proc(12)]
    assert judge({"name": "fixgw", "count": {"min": 1, "max": 2}}, *three) == (
        Status.FAIL, "3 processes match, expected 1..2")
    assert judge({"name": "fixgw", "count": {"min": 4}}, *three) == (
        Status.FAIL, "3 process(es) match, expected >= 4")
    assert judge({"name": "fixgw", "count": {"min": 3, "max": 3}}, *three)[0] is Status.PASS


def test_forbidden_lists_every_offender_with_user_and_cmdline() -> None:
    outcome = KIND.evaluate(KIND.parse({"name": "*telnetd", "forbidden": True}), snap(
        proc(40, "in.telnetd", uid=0, user="root", cmdline=("in.telnetd", "-L", "/bin/login")),
        proc(41, "telnetd", uid=7, user=None, cmdline=("telnetd",)),
        proc(42, "sshd")))
    assert (outcome.status, outcome.message) == (
        Status.FAIL, "pid 40 ('in.telnetd') user root is running: 'in.telnetd -L /bin/login'; "
                     "pid 41 ('telnetd') user 7 is running: 'telnetd'")
    assert [(r["pid"], r["user"], r["uid"], r["cmdline"]) for r in outcome.evidence.items] == [
        (40, "root", 0, "in.telnetd -L /bin/login"), (41, None, 7, "telnetd")]


def test_kernel_threads_never_match_unless_asked() -> None:
    kthread = proc(2, "kthreadd", kernel_thread=True, exe=None, cmdline=(), uid=0, user="root")
    assert judge({"name": "kthreadd", "required": True}, kthread) == (
        Status.FAIL, "no process matches")
    assert judge({"name": "kthreadd", "required": True, "kernel_threads": True}, kthread)[0] is (
        Status.PASS)


def test_selectors_all_must_match() -> None:
    procs = [proc(10, user="trader", uid=1000), proc(11, uid=0, user="root"),
             proc(12, cmdline=("/opt/fixgw/bin/fixgw", "--venue=XETRA")), proc(13, "other"),
             proc(14, exe="/usr/bin/fixgw")]
    spec = KIND.parse({"name": "fixgw", "exe": "/opt/*", "cmdline": r"--venue=LSE\b",
                       "user": "trader", "required": True})
    outcome = KIND.evaluate(spec, snap(*procs))
    assert outcome.evidence.actual == "1 matching process(es): pids 10"
    assert KIND.evaluate(KIND.parse({"user": 0, "required": True}), snap(*procs)).evidence.actual \
        == "1 matching process(es): pids 11"
    assert KIND.evaluate(KIND.parse({"user": "1000", "count": {"min": 4, "max": 4}}),
                         snap(*procs)).status is Status.PASS


def test_a_zombie_without_exe_does_not_match_an_exe_glob() -> None:
    assert judge({"exe": "*", "required": True}, proc(10, exe=None)) == (
        Status.FAIL, "no process matches")


# --- fail closed ------------------------------------------------------------------------------


DENIED = {"status": "Permission denied"}
NO_STATUS: dict[str, Any] = dict(
    uid=None, user=None, cap_eff=None, cap_prm=None, cap_bnd=None, cap_amb=None,
    no_new_privs=None, seccomp=None, seccomp_filters=None, cpus_allowed=None, unreadable=DENIED)


@pytest.mark.parametrize(("raw", "message"), [
    ({"not_root": True}, "pid 10 ('fixgw'): Uid not readable (status: Permission denied)"),
    ({"no_new_privs": True},
     "pid 10 ('fixgw'): NoNewPrivs not readable (status: Permission denied)"),
    ({"capabilities": {"permitted": {"subset_of": []}}},
     "pid 10 ('fixgw'): CapPrm not readable (status: Permission denied)"),
    ({"cpus": {"subset_of": "0-63"}},
     "pid 10 ('fixgw'): Cpus_allowed_list not readable (status: Permission denied)"),
    ({"seccomp": {"mode": "disabled"}},
     "pid 10 ('fixgw'): Seccomp not readable (status: Permission denied)"),
])
def test_an_unreadable_field_is_error_naming_pid_and_field(raw: dict[str, Any],
                                                          message: str) -> None:
    assert judge({"name": "fixgw", **raw}, proc(10, **NO_STATUS)) == (
        Status.ERROR, f"cannot evaluate: {message}")


def test_unreadable_stat_fields_are_errors() -> None:
    lost = proc(10, sched_policy=None, rt_priority=None, unreadable={"stat": "I/O error"})
    assert judge({"name": "fixgw", "sched": {"policy": "fifo", "priority": {"ge": 1}}}, lost) == (
        Status.ERROR, "cannot evaluate: pid 10 ('fixgw'): policy not readable (stat: I/O error); "
                      "pid 10 ('fixgw'): rt_priority not readable (stat: I/O error)")


def test_a_field_the_kernel_does_not_report_is_an_error() -> None:
    old_kernel = proc(10, seccomp_filters=None)  # Seccomp_filters appeared in Linux 5.9
    assert judge({"name": "fixgw", "seccomp": {"min_filters": 1}}, old_kernel) == (
        Status.ERROR, "cannot evaluate: pid 10 ('fixgw'): Seccomp_filters not readable "
                      "(not reported in /proc/10/status)")


def test_a_failure_outweighs_an_error() -> None:
    assert judge({"name": "fixgw", "not_root": True},
                 proc(10, **NO_STATUS), proc(11, uid=0, user="root")) == (
        Status.FAIL, "pid 11 ('fixgw') runs as root")


def test_user_selection_with_unreadable_status_is_undecided() -> None:
    hidden = proc(10, **NO_STATUS)
    assert judge({"user": "trader", "not_root": True}, hidden) == (
        Status.ERROR, "cannot evaluate: selection undecided for pid 10: user: status: "
                      "Permission denied")
    assert judge({"user": "trader", "forbidden": True}, hidden) == (
        Status.ERROR, "cannot evaluate: cannot rule out 1 process(es): pid 10: user: status: "
                      "Permission denied")
    assert judge({"user": "trader", "required": True}, hidden) == (
        Status.ERROR, "cannot evaluate: 0 process(es) match and 1 cannot be told, expected >= 1")
    # A definite match settles "required"; one definite offender settles "forbidden".
    seen = proc(11)
    assert judge({"user": "trader", "required": True}, hidden, seen)[0] is Status.PASS
    assert judge({"user": "trader", "forbidden": True}, hidden, seen)[0] is Status.FAIL
    assert judge({"user": "trader", "count": {"max": 1}}, hidden, seen) == (
        Status.ERROR, "cannot evaluate: 1 process(es) match and 1 cannot be told, expected 1")


def test_unreadable_exe_leaves_selection_undecided() -> None:
    denied = proc(10, exe=None, unreadable={"exe": "Permission denied"})
    outcome = KIND.evaluate(KIND.parse({"exe": "/opt/*", "forbidden": True}), snap(denied))
    assert (outcome.status, outcome.message) == (
        Status.ERROR, "cannot evaluate: cannot rule out 1 process(es): pid 10: exe: Permission "
                      "denied")
    assert outcome.evidence.items[0]["expectation"] == "selection"
    # ... but a name that already rules the process out needs no exe.
    assert judge({"name": "other", "exe": "/opt/*", "forbidden": True}, denied)[0] is Status.PASS


def test_threads_unreadable_are_errors_naming_the_tid() -> None:
    threads = (Thread(10, "fixgw", 2, 1, True, frozenset({2})),
               Thread(12, "", None, None, None, None))
    lost = proc(10, threads=threads, unreadable={"threads": "task/12/status: Permission denied"})
    assert judge({"name": "fixgw", "cpus": {"subset_of": "2", "threads": True}}, lost) == (
        Status.ERROR, "cannot evaluate: pid 10 ('fixgw') tid 12: Cpus_allowed_list not readable "
                      "(task/12/status: Permission denied)")
    no_list = proc(10, threads=(), unreadable={"threads": "task: Permission denied"})
    assert judge({"name": "fixgw", "threads": True, "seccomp": {"mode": "filter"}}, no_list) == (
        Status.ERROR, "cannot evaluate: pid 10 ('fixgw'): threads not readable (task: "
                      "Permission denied)")


def test_per_thread_failures_name_the_tid() -> None:
    threads = (Thread(10, "fixgw", 2, 1, True, frozenset({2})),
               Thread(11, "fixgw-io", 0, 0, False, frozenset({2})),
               Thread(12, "fixgw-md", 2, 1, True, frozenset({0, 1})))
    gw = proc(10, threads=threads, cpus_allowed=frozenset({2}))
    assert judge({"name": "fixgw", "cpus": {"subset_of": "2"}}, gw)[0] is Status.PASS
    assert judge({"name": "fixgw", "threads": True, "cpus": {"subset_of": "2"},
                  "seccomp": {"mode": "filter"}, "no_new_privs": True}, gw) == (
        Status.FAIL, "pid 10 ('fixgw') tid 11 has NoNewPrivs 0; pid 10 ('fixgw') tid 12 may run "
                     "on CPUs 0-1, outside 2; pid 10 ('fixgw') tid 11 has seccomp mode disabled")


def test_no_process_table_is_error() -> None:
    spec = KIND.parse({"name": "x", "required": True})
    outcome = KIND.evaluate(spec, Snapshot(root="/x", facts=FACTS))
    assert (outcome.status, outcome.message) == (Status.ERROR, "the process table was not read")


def test_hostile_names_stay_data() -> None:
    evil = "x\n\x1b[2Jok\\"
    outcome = KIND.evaluate(KIND.parse({"name": "x*", "forbidden": True}), snap(
        proc(66, evil, cmdline=("evil\nPASS", "\udcff"), user="bad\tuser")))
    assert outcome.status is Status.FAIL
    assert "\n" not in outcome.message and "\x1b" not in outcome.message
    assert outcome.message == ("pid 66 ('x\\n\\x1b[2Jok\\\\') user bad\tuser is running: "
                               "'evil\\nPASS \\\\xff'")
    row = outcome.evidence.items[0]
    assert (row["name"], row["cmdline"], row["user"]) == (evil, "evil\nPASS \\xff", "bad\tuser")
    "".join(str(v) for v in row.values()).encode("utf-8")  # no lone surrogates left


def test_many_offenders_are_summarised() -> None:
    procs = [proc(100 + i, "rpcbind", cmdline=("rpcbind",)) for i in range(7)]
    status, message = judge({"name": "rpcbind", "forbidden": True}, *procs)
    assert status is Status.FAIL
    assert message.endswith("pid 104 ('rpcbind') user trader is running: 'rpcbind' (and 2 more)")


# --- real children on the live host -----------------------------------------------------------


@dataclasses.dataclass
class Children:
    """Marker and pids of the children started for the live tests."""

    mark: str
    pids: dict[str, int]
    worker_tid: int
    comm: dict[str, str]


_SECCOMP = """
import sys, time
import pyseccomp as seccomp
seccomp.SyscallFilter(seccomp.ALLOW).load()
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture(scope="module")
def children() -> Iterator[Children]:
    need_root()
    need((os.cpu_count() or 1) >= 2, "needs two CPUs")
    for tool in ("taskset", "chrt", "setpriv", "bash", "sleep"):
        need_tool(tool)
    mark = f"hgproc-{uuid.uuid4().hex[:12]}"
    prefix = {
        "aff": ["taskset", "-c", "1"],
        "fifo": ["chrt", "-f", "10"],
        "nnp": ["setpriv", "--no-new-privs"],
        "nobody": ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                   "--inh-caps=-all", "--bounding-set", "-all,+net_bind_service"],
    }
    with live_children(10) as live:
        sleepers = {key: live.start([*args, *sleeper(f"{mark}-{key}")])
                    for key, args in prefix.items()}
        filtered = live.start([sys.executable, "-c", _SECCOMP, f"{mark}-seccomp"], reports=True)
        threads = live.start(threaded(f"{mark}-threads", cpus=(0, 1)), reports=True)
        pids = {key: live.running(child, f"{mark}-{key}") for key, child in sleepers.items()}
        pids |= {"seccomp": filtered.pid, "threads": threads.pid}
        assert live.ready_line(filtered) == "ready\n"
        worker_tid = int(live.ready_line(threads))
        comm = {key: Path(f"/proc/{pid}/comm").read_text().rstrip("\n")
                for key, pid in pids.items()}
        yield Children(mark, pids, worker_tid, comm)


def live_audit(tmp_path: Path, checks: dict[str, dict[str, Any]]) -> dict[str, Result]:
    path = write(tmp_path / "live.yaml", policy("live", [
        check(cid, "process", spec) for cid, spec in checks.items()]))
    policy_set = resolve([path], TODAY)
    assert policy_set.diagnostics == []
    run: AuditRun = audit.run(policy_set, Path("/"), {}, TODAY)
    return {r.check.id: r for r in run.results}


def test_live_children(children: Children, tmp_path: Path) -> None:
    m, pid, comm = children.mark, children.pids, children.comm
    pat = {key: f"(^| ){m}-{key}( |$)" for key in pid}
    pat["all"] = f"(^| ){m}-"
    sel = {key: {"cmdline": pattern} for key, pattern in pat.items()}
    results = live_audit(tmp_path, {
        "AFF-1": {**sel["aff"], "required": True, "cpus": {"subset_of": "1"}},
        "AFF-2": {**sel["aff"], "cpus": {"subset_of": "0"}},
        "FIFO-1": {**sel["fifo"], "sched": {"policy": "SCHED_FIFO", "priority": {"eq": 10}}},
        "FIFO-2": {**sel["fifo"], "sched": {"priority": {"ge": 50}}},
        "FIFO-3": {**sel["aff"], "sched": {"policy": "SCHED_FIFO"}},
        "NNP-1": {**sel["nnp"], "no_new_privs": True},
        "NNP-2": {**sel["aff"], "no_new_privs": True},
        "USR-1": {**sel["nobody"], "user": "nobody", "required": True, "not_root": True,
                  "capabilities": {"bounding": {"subset_of": ["CAP_NET_BIND_SERVICE"]},
                                   "effective": {"subset_of": []},
                                   "permitted": {"subset_of": []}}},
        "USR-2": {**sel["nobody"], "capabilities": {"bounding": {
            "must_not_have": ["net_bind_service", "CAP_SYS_ADMIN"]}}},
        "USR-3": {**sel["aff"], "not_root": True},
        "USR-4": {**sel["aff"], "capabilities": {"effective": {"must_not_have": [
            "CAP_SYS_ADMIN", "CAP_NET_RAW"]}}},
        "USR-5": {**sel["all"], "user": "nobody", "count": {"min": 1, "max": 1}},
        "SEC-1": {**sel["seccomp"], "seccomp": {"mode": "filter", "min_filters": 1},
                  "no_new_privs": True},
        "SEC-2": {**sel["aff"], "seccomp": {"mode": "filter"}},
        "THR-1": {**sel["threads"], "cpus": {"subset_of": "0"},
                  "seccomp": {"mode": "filter"}},
        "THR-2": {**sel["threads"], "threads": True, "cpus": {"subset_of": "0"},
                  "seccomp": {"mode": "filter"}},
        "THR-3": {**sel["threads"], "cpus": {"subset_of": "0", "threads": True}},
        "ALL-1": {**sel["all"], "count": {"min": 6, "max": 6}},
        "ALL-2": {**sel["all"], "count": {"max": 5}},
        "ALL-3": {**sel["aff"], "forbidden": True},
        "NONE-1": {"cmdline": f"(^| ){m}-none", "required": True},
        "NONE-2": {"cmdline": f"(^| ){m}-none", "not_root": True},
    })
    who = {key: f"pid {pid[key]} ({comm[key]!r})" for key in pid}
    tid = children.worker_tid
    all_pids = ", ".join(str(p) for p in sorted(pid.values()))
    got = {cid: (r.status, r.message) for cid, r in results.items()}
    assert got == {
        "AFF-1": (Status.PASS, f"processes cmdline ~ {pat['aff']!r}: count >= 1, CPUs within 1 "
                               f"holds for 1 matching process(es): pids {pid['aff']}"),
        "AFF-2": (Status.FAIL, f"{who['aff']} may run on CPUs 1, outside 0"),
        "FIFO-1": (Status.PASS, f"processes cmdline ~ {pat['fifo']!r}: SCHED_FIFO, "
                                f"rt_priority == 10 holds for 1 matching process(es): "
                                f"pids {pid['fifo']}"),
        "FIFO-2": (Status.FAIL, f"{who['fifo']} has real-time priority 10, expected >= 50"),
        "FIFO-3": (Status.FAIL, f"{who['aff']} runs under SCHED_OTHER"),
        "NNP-1": (Status.PASS, f"processes cmdline ~ {pat['nnp']!r}: no_new_privs holds for 1 "
                               f"matching process(es): pids {pid['nnp']}"),
        "NNP-2": (Status.FAIL, f"{who['aff']} has NoNewPrivs 0"),
        "USR-1": (Status.PASS, f"processes cmdline ~ {pat['nobody']!r} and user 'nobody': "
                               f"count >= 1, not root, CapBnd subset of [CAP_NET_BIND_SERVICE], "
                               f"CapEff subset of [], CapPrm subset of [] holds for 1 matching "
                               f"process(es): pids {pid['nobody']}"),
        "USR-2": (Status.FAIL, f"{who['nobody']} CapBnd has CAP_NET_BIND_SERVICE"),
        "USR-3": (Status.FAIL, f"{who['aff']} runs as root"),
        "USR-4": (Status.FAIL, f"{who['aff']} CapEff has CAP_NET_RAW, CAP_SYS_ADMIN"),
        "USR-5": (Status.PASS, f"processes cmdline ~ {pat['all']!r} and user 'nobody': count 1 "
                               f"holds for 1 matching process(es): pids {pid['nobody']}"),
        "SEC-1": (Status.PASS, f"processes cmdline ~ {pat['seccomp']!r}: no_new_privs, seccomp "
                               f"filter, >= 1 seccomp filters holds for 1 matching process(es): "
                               f"pids {pid['seccomp']}"),
        "SEC-2": (Status.FAIL, f"{who['aff']} has seccomp mode disabled"),
        "THR-1": (Status.PASS, f"processes cmdline ~ {pat['threads']!r}: CPUs within 0, seccomp "
                               f"filter holds for 1 matching process(es): pids {pid['threads']}"),
        "THR-2": (Status.FAIL, f"{who['threads']} tid {tid} may run on CPUs 1, outside 0; "
                               f"{who['threads']} tid {tid} has seccomp mode disabled"),
        "THR-3": (Status.FAIL, f"{who['threads']} tid {tid} may run on CPUs 1, outside 0"),
        "ALL-1": (Status.PASS, f"processes cmdline ~ {pat['all']!r}: count 6 holds for 6 "
                               f"matching process(es): pids {all_pids}"),
        "ALL-2": (Status.FAIL, "6 processes match, expected 1..5"),
        "ALL-3": (Status.FAIL, f"{who['aff']} user root is running: '{m}-aff 120'"),
        "NONE-1": (Status.FAIL, "no process matches"),
        "NONE-2": (Status.NOT_APPLICABLE, "no process matches"),
    }
    assert comm["aff"] == "sleep"
    thr2 = [r for r in results["THR-2"].evidence.items if r.get("tid") == tid]
    assert [(r["expectation"], r["actual"], r["verdict"]) for r in thr2] == [
        ("cpus", "1", "fail"), ("seccomp.mode", "disabled", "fail")]

