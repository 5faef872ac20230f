"""``seccomp`` checks: parse and lint, pure evaluation over hand-built snapshots carrying real
compiled filters, and live processes started under ``hostguard exec``, without a filter, and with
a thread that predates its filter, audited on this host (the deep layer really stops them)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from agent import audit
from agent.checks import KINDS
from agent.checks.base import SpecError, SpecProblem
from agent.checks.seccomp import SeccompKind, SeccompSpec
from agent.host.facts import ReadError
from agent.host.processes import CgroupMembership, Process, ProcessTable, Thread
from agent.host.seccomp_dump import FilterDump, dump_filters
from agent.host.snapshot import Snapshot
from agent.policy.resolve import resolve
from agent.result import Result, Status
from agent.seccomp.compile import build_filter
from agent.seccomp.model import EPERM, Action, ActionKind, Profile, Rule
from tests.authoring import check, policy, write
from tests.checks.snapshots import FACTS
from tests.live import live_children, sleeper, threaded
from tests.seccomp.gateway import netlink_17
from tests.support import PROJECT, need_root, need_tool, run_cli

KIND = SeccompKind()
TODAY = dt.date(2026, 6, 1)
ALLOW = Action(ActionKind.ALLOW)

# A deny-list profile any shell runs under, and a stricter one denying two more syscalls.
LOOSE = Profile("loose", ALLOW, deny=(Rule(("ptrace", "kexec_load", "mount"), EPERM),))
STRICT = replace(LOOSE, name="strict",
                 deny=(*LOOSE.deny, Rule(("getppid", "uname"), EPERM)))
LOOSE_YAML = """apiVersion: hostguard/v1
kind: SeccompProfile
metadata: {name: loose}
default_action: allow
deny:
  - syscalls: [ptrace, kexec_load, mount]
"""
STRICT_YAML = LOOSE_YAML.replace("name: loose", "name: strict") + \
    "  - syscalls: [getppid, uname]\n"


def problems(raw: dict[str, Any]) -> list[SpecProblem]:
    with pytest.raises(SpecError) as caught:
        KIND.parse(raw)
    return caught.value.problems


def messages(raw: dict[str, Any]) -> list[str]:
    return [p.message for p in problems(raw)]


# --- registry, parse, request -----------------------------------------------------------------


def test_registered_under_its_name() -> None:
    assert isinstance(KINDS["seccomp"], SeccompKind)


def test_parse_selectors_and_defaults() -> None:
    spec = KIND.parse({"unit": "fixgw", "mode": "filter"})
    assert spec.selector.unit == "fixgw.service"
    assert spec.selector.process is None
    assert (spec.deep, spec.stop_isolated, spec.all_threads) == (False, False, False)
    spec = KIND.parse({"name": "fix*", "user": "1001", "no_new_privs": True})
    assert spec.selector.process is not None
    assert (spec.selector.process.name, spec.selector.process.user) == ("fix*", 1001)


def test_deep_expectations_need_deep() -> None:
    assert messages({"name": "x", "must_deny": ["ptrace"]}) == [
        "'must_deny' reads the loaded filter: it needs 'deep: true' (which stops the process "
        "briefly)"]
    assert messages({"name": "x", "mode": "filter", "stop_isolated": True}) == [
        "'stop_isolated' only matters with 'deep: true'"]


def test_nothing_to_check() -> None:
    assert messages({"name": "x", "deep": True}) == [
        "nothing to check: give mode, no_new_privs, all_threads, profile or must_deny"]


def test_unknown_syscalls_and_groups() -> None:
    found = problems({"name": "x", "deep": True,
                      "must_deny": ["ptrace", "ptrac", "@nope", "@mount"]})
    assert [(p.path, p.rule, p.message) for p in found] == [
        (("must_deny", 1), "unknown-syscall", "unknown syscall 'ptrac'"),
        (("must_deny", 2), "unknown-syscall", "unknown syscall group '@nope'"),
    ]


def test_bad_globs_and_regex() -> None:
    found = problems({"unit": "a/b", "name": "[x", "cmdline": "(", "mode": "filter"})
    assert [p.path for p in found] == [("unit",), ("name",), ("cmdline",)]


def test_profile_relative_to_the_policy(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "loose.yaml").write_text(LOOSE_YAML)
    spec = KIND.parse_at({"name": "x", "deep": True, "profile": "loose.yaml"},
                         tmp_path / "p" / "policy.yaml")
    assert spec.profile is not None and spec.profile.profile.name == "loose"
    bad = tmp_path / "p" / "bad.yaml"
    bad.write_text(LOOSE_YAML.replace("ptrace", "ptrac"))
    with pytest.raises(SpecError) as caught:
        KIND.parse_at({"name": "x", "deep": True, "profile": "bad.yaml"},
                      tmp_path / "p" / "policy.yaml")
    [problem] = caught.value.problems
    assert problem.rule == "invalid-profile"
    assert f"{bad}:6:" in problem.message and "ptrac" in problem.message


def test_request() -> None:
    shallow = KIND.request(KIND.parse({"name": "x", "mode": "filter"}))
    # Seccomp and no_new_privs are per thread: threads are always read.
    assert shallow.processes and shallow.threads and not shallow.seccomp_dumps
    deep = KIND.request(KIND.parse({"name": "x", "all_threads": True, "deep": True,
                                    "must_deny": ["ptrace"], "stop_isolated": True}))
    [dump] = deep.seccomp_dumps
    assert dump.stop_isolated and dump.threads
    [main_only] = KIND.request(KIND.parse({"name": "x", "deep": True,
                                           "must_deny": ["ptrace"]})).seccomp_dumps
    assert not main_only.threads and not main_only.stop_isolated


def test_policy_lint_locates_problems(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("p", [
        check("SEC-1", "seccomp", {"name": "x", "must_deny": ["ptrace"]})]))
    found = [(d.location.line, d.rule) for d in resolve([path], TODAY).diagnostics]
    assert len(found) == 1 and found[0][1] == "spec"


# --- pure evaluation ----------------------------------------------------------------------------


def proc(pid: int, name: str = "fixgw", **fields: Any) -> Process:
    base: dict[str, Any] = dict(
        pid=pid, ppid=1, name=name, kernel_thread=False, start_time=100,
        exe=f"/opt/{name}/bin/{name}", cmdline=(f"/opt/{name}/bin/{name}",), uid=1000,
        ruid=1000, user="trader", cap_eff=0, cap_prm=0, cap_bnd=0, cap_amb=0,
        no_new_privs=True, seccomp=2, seccomp_filters=1, cpus_allowed=frozenset({0}),
        sched_policy=0, rt_priority=0, nice=0, cgroups=(), netns=1)
    base.update(fields)
    if "threads" not in fields:  # the main thread, as /proc/PID/task/PID/status shows it
        base["threads"] = (Thread(pid, name, base["seccomp"], base["seccomp_filters"],
                                  base["no_new_privs"], base["cpus_allowed"]),)
    return Process(**base)


def snap(*procs: Process, dumps: dict[int, FilterDump | ReadError] | None = None) -> Snapshot:
    table = ProcessTable({p.pid: p for p in procs}, 1, {1000: "trader"})
    return Snapshot(root="/", facts=FACTS, processes=table, seccomp_dumps=dumps)


def judge(raw: dict[str, Any], snapshot: Snapshot) -> tuple[Status, str]:
    spec: SeccompSpec = KIND.parse(raw)
    outcome = KIND.evaluate(spec, snapshot)
    return outcome.status, outcome.message


def dump(pid: int, *profiles: Profile) -> FilterDump:
    """What the kernel would report for a thread that loaded ``profiles`` in order."""
    filters = tuple(build_filter(p).bpf() for p in reversed(profiles))
    return FilterDump(pid, 100, filters, 150_000, False)


def test_mode_and_nnp() -> None:
    snapshot = snap(proc(10, seccomp=0, no_new_privs=False))
    assert judge({"name": "fixgw", "mode": "filter"}, snapshot) == (
        Status.FAIL, "pid 10 ('fixgw') tid 10 has seccomp mode disabled, expected filter")
    assert judge({"name": "fixgw", "no_new_privs": True}, snapshot) == (
        Status.FAIL, "pid 10 ('fixgw') tid 10 has NoNewPrivs 0")
    assert judge({"name": "fixgw", "mode": "disabled"}, snapshot)[0] is Status.PASS
    unreadable = snap(proc(10, seccomp=None))
    assert judge({"name": "fixgw", "mode": "filter"}, unreadable) == (
        Status.ERROR, "pid 10 ('fixgw') tid 10: Seccomp not readable")


def test_nothing_selected() -> None:
    assert judge({"name": "other", "mode": "filter"}, snap(proc(10)))[0] is \
        Status.NOT_APPLICABLE
    assert judge({"name": "other", "mode": "filter", "required": True}, snap(proc(10))) == (
        Status.FAIL, "no process selected by name other")


def test_unit_of_a_user_manager_is_not_the_system_unit() -> None:
    user_unit = proc(13, seccomp=0, cgroups=(CgroupMembership(
        0, (), "/user.slice/user-1000.slice/user@1000.service/app.slice/fixgw.service"),))
    assert judge({"unit": "fixgw", "mode": "filter"}, snap(user_unit))[0] is \
        Status.NOT_APPLICABLE


def test_unit_selection() -> None:
    inside = proc(10, cgroups=(CgroupMembership(0, (), "/system.slice/fixgw.service/worker"),))
    outside = proc(11, seccomp=0, cgroups=(CgroupMembership(0, (), "/user.slice"),))
    status, message = judge({"unit": "fixgw", "mode": "filter"}, snap(inside, outside))
    assert (status, message) == (Status.PASS, "1 process(es) as expected")
    blind = proc(12, seccomp=0, cgroups=(), unreadable={"cgroup": "Permission denied"})
    assert judge({"unit": "fixgw", "mode": "filter"}, snap(inside, blind)) == (
        Status.ERROR, "pid 12 ('fixgw') might be selected: cgroup: Permission denied")


def test_all_threads_catches_an_escaped_thread() -> None:
    threads = (Thread(10, "fixgw", 2, 1, True, frozenset({0})),
               Thread(11, "fixgw", 0, 0, False, frozenset({0})))
    snapshot = snap(proc(10, threads=threads))
    assert judge({"name": "fixgw", "all_threads": True}, snapshot) == (
        Status.FAIL, "pid 10 ('fixgw') tid 11 has seccomp disabled with 0 filter(s), the main "
        "thread filter with 1: it escaped the filter (created before it was loaded without "
        "TSYNC)")
    same = snap(proc(10, threads=(threads[0], replace(threads[0], tid=11))))
    assert judge({"name": "fixgw", "all_threads": True}, same)[0] is Status.PASS
    assert judge({"name": "fixgw", "all_threads": True}, snap(proc(10, threads=()))) == (
        Status.ERROR, "pid 10 ('fixgw'): its threads are not readable (no threads were read)")


def test_deep_unread_is_an_error() -> None:
    raw = {"name": "fixgw", "deep": True, "must_deny": ["ptrace"]}
    assert judge(raw, snap(proc(10), dumps={})) == (
        Status.ERROR, "pid 10 ('fixgw'): its filters were not read (the daemon reads them only "
        "for checks listed in its deep_seccomp setting)")
    why = ReadError("not stopped to read its filters: it may run on isolated CPU(s) 2")
    assert judge(raw, snap(proc(10), dumps={10: why})) == (
        Status.ERROR, f"pid 10 ('fixgw'): cannot read its filters: {why.reason}")


def test_deep_must_deny() -> None:
    snapshot = snap(proc(10), dumps={10: dump(10, LOOSE)})
    assert judge({"name": "fixgw", "deep": True, "must_deny": ["ptrace", "mount"]},
                 snapshot)[0] is Status.PASS
    status, message = judge({"name": "fixgw", "deep": True,
                             "must_deny": ["ptrace", "getppid", "uname"]}, snapshot)
    assert status is Status.FAIL
    assert message == "pid 10 ('fixgw') may call x86_64 getppid: allow (+1 more)"
    none = snap(proc(10, seccomp=0), dumps={10: FilterDump(10, 100, (), 0, False)})
    assert judge({"name": "fixgw", "deep": True, "must_deny": ["ptrace"]}, none) == (
        Status.FAIL, "pid 10 ('fixgw') may call x86_64 ptrace: allow (+2 more)")


def test_deep_profile(tmp_path: Path) -> None:
    (tmp_path / "loose.yaml").write_text(LOOSE_YAML)
    (tmp_path / "strict.yaml").write_text(STRICT_YAML)
    origin = tmp_path / "policy.yaml"
    loaded = snap(proc(10), dumps={10: dump(10, LOOSE)})
    spec = KIND.parse_at({"name": "fixgw", "deep": True, "profile": "loose.yaml"}, origin)
    assert KIND.evaluate(spec, loaded).status is Status.PASS
    spec = KIND.parse_at({"name": "fixgw", "deep": True, "profile": "strict.yaml"}, origin)
    outcome = KIND.evaluate(spec, loaded)
    assert outcome.status is Status.FAIL
    bad = [r for r in outcome.evidence.items if r["verdict"] == "fail"]
    assert {(r["arch"], r["syscall"], r["kind"]) for r in bad} == {
        ("x86_64", "getppid", "allowed_extra"), ("x86_64", "uname", "allowed_extra")}
    # Stacking the stricter filter on top makes the process equivalent to the strict profile.
    stacked = snap(proc(10, seccomp_filters=2), dumps={10: dump(10, LOOSE, STRICT)})
    assert KIND.evaluate(spec, stacked).status is Status.PASS


# --- live processes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Live:
    mark: str
    pids: dict[str, int]
    worker_tid: int
    profiles: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    need_root()
    need_tool("bash")
    need_tool("sleep")
    folder = tmp_path_factory.mktemp("seccomp-live")
    (folder / "loose.yaml").write_text(LOOSE_YAML)
    (folder / "strict.yaml").write_text(STRICT_YAML)
    mark = f"hgsec-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    hostguard_exec = [sys.executable, "-m", "agent", "exec", "--profile"]
    with live_children(20) as children:
        filtered = children.start([*hostguard_exec, str(folder / "loose.yaml"), "--",
                                   *sleeper(f"{mark}-exec")], env=env)
        gateway = children.start([*hostguard_exec,
                                  str(PROJECT / "policies/seccomp/trading-gateway.yaml"), "--",
                                  *sleeper(f"{mark}-gw")], env=env)
        plain = children.start(sleeper(f"{mark}-plain"))
        threads = children.start(threaded(f"{mark}-threads"), reports=True)
        pids = {"exec": children.running(filtered, f"{mark}-exec"),
                "gw": children.running(gateway, f"{mark}-gw"),
                "plain": children.running(plain, f"{mark}-plain"), "threads": threads.pid}
        tid = int(children.ready_line(threads))
        yield Live(mark, pids, tid, folder)


_TWO_FILTERS = """
import threading, time
import pyseccomp as seccomp
ready = threading.Event()
tids = []
def worker():
    seccomp.SyscallFilter(seccomp.ALLOW).load()  # its own allow-all filter, this thread only
    tids.append(threading.get_native_id())
    ready.set()
    time.sleep(120)
threading.Thread(target=worker, daemon=True).start()
ready.wait()
strict = seccomp.SyscallFilter(seccomp.ALLOW)
strict.add_rule(seccomp.ERRNO(1), "ptrace")
strict.load()  # no TSYNC: the main thread only; both threads now show Seccomp_filters 1
print(tids[0], flush=True)
time.sleep(120)
"""


def test_threads_with_equal_counts_but_different_filters(tmp_path: Path) -> None:
    need_root()
    mark = f"hgtwo-{uuid.uuid4().hex[:12]}"
    with live_children(20) as children:
        child = children.start([sys.executable, "-c", _TWO_FILTERS, mark], reports=True)
        worker = int(children.ready_line(child))
        path = write(tmp_path / "two.yaml", policy("two", [
            check("TWO-1", "seccomp", {"cmdline": f"(^| ){mark}( |$)", "all_threads": True,
                                       "deep": True, "stop_isolated": True,
                                       "must_deny": ["ptrace"]}),
            check("TWO-2", "seccomp", {"cmdline": f"(^| ){mark}( |$)", "all_threads": True})]))
        policy_set = resolve([path], TODAY)
        results = {r.check.id: r for r in audit.run(policy_set, Path("/"), {}, TODAY).results}
        assert results["TWO-2"].status is Status.PASS  # the counts alone look fine
        assert results["TWO-1"].status is Status.FAIL
        comm = Path(f"/proc/{child.pid}/comm").read_text().rstrip("\n")
        assert results["TWO-1"].message == (
            f"pid {child.pid} ({comm!r}) tid {worker} carries another filter stack than the "
            f"main thread (1 filter(s) of {_sizes(worker)} instructions, the main thread 1 of "
            f"{_sizes(child.pid)})")
        assert _sizes(worker) != _sizes(child.pid)
        assert _running(child.pid) and _running(worker)


def _sizes(tid: int) -> list[int]:
    """Instruction counts of the filters ``tid`` carries, read independently of the check."""
    return [len(program) // 8 for program in dump_filters(tid).filters]


def _running(pid: int) -> bool:
    state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    return state not in ("t", "T")


def test_verify_cli(live: Live) -> None:
    pid = str(live.pids["exec"])
    same = run_cli("seccomp", "verify", "--pid", pid, "--profile", str(live.profiles /
                                                                      "loose.yaml"))
    assert same.returncode == 0, same.stderr + same.stdout
    assert "equivalent to" in same.stdout
    other = run_cli("seccomp", "verify", "--pid", pid, "--profile",
                    str(live.profiles / "strict.yaml"), "--format", "json")
    assert other.returncode == 1, other.stderr
    found = json.loads(other.stdout)
    assert not found["equivalent"]
    assert {(d["arch"], d["syscall"], d["kind"]) for d in found["differences"]} == {
        ("x86_64", "getppid", "allowed_extra"), ("x86_64", "uname", "allowed_extra")}
    gateway = run_cli("seccomp", "verify", "--pid", str(live.pids["gw"]), "--profile",
                      str(PROJECT / "policies/seccomp/trading-gateway.yaml"))
    assert gateway.returncode == 0, gateway.stdout + gateway.stderr
    assert all(_running(p) for p in live.pids.values())


def test_verify_cli_prints_every_difference(live: Live, tmp_path: Path) -> None:
    # The gateway process carries the shipped filter (AF_NETLINK is 16); the profile says 17.
    changed = netlink_17(tmp_path)
    shown = run_cli("seccomp", "verify", "--pid", str(live.pids["gw"]), "--profile",
                    str(changed))
    assert shown.returncode == 1, shown.stdout + shown.stderr
    assert shown.stdout.splitlines()[1:] == [
        "critical: x86_64 socket(0x10, 0x0, 0x0, 0x0, 0x0, 0x0): loaded allow, profile "
        "errno(1) (allowed extra)",
        "warning: x86_64 socket(0x11, 0x0, 0x0, 0x0, 0x0, 0x0): loaded errno(1), profile "
        "allow (denied extra)",
        f"2 difference(s) from {changed} (3072 syscall numbers on x86_64, x86, x32; 2 "
        "argument combinations)"]
    as_json = json.loads(run_cli("seccomp", "verify", "--pid", str(live.pids["gw"]),
                                 "--profile", str(changed), "--format", "json").stdout)
    assert [(d["kind"], d["args"][0]) for d in as_json["differences"]] == [
        ("allowed_extra", 16), ("denied_extra", 17)]
    assert _running(live.pids["gw"])


def test_dump_cli(live: Live) -> None:
    shown = run_cli("seccomp", "dump", "--pid", str(live.pids["exec"]))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"pid {live.pids['exec']} tid {live.pids['exec']}: 1 filter(s)")
    assert any(line.startswith("x86_64 (arch 0xc000003e):") for line in lines)
    assert any("errno(1)" in line and " ptrace" in line for line in lines)
    nothing = run_cli("seccomp", "dump", "--pid", str(live.pids["plain"]))
    assert nothing.returncode == 0 and "no seccomp filter loaded" in nothing.stdout
    gone = run_cli("seccomp", "dump", "--pid", "999999999")
    assert gone.returncode == 2 and "hostguard: cannot read the filters" in gone.stderr


def live_audit(tmp_path: Path, live: Live, checks: dict[str, dict[str, Any]]) -> dict[str,
                                                                                   Result]:
    for name in ("loose.yaml", "strict.yaml"):
        (tmp_path / name).write_text((live.profiles / name).read_text())
    path = write(tmp_path / "live.yaml", policy("live", [
        check(cid, "seccomp", spec) for cid, spec in checks.items()]))
    policy_set = resolve([path], TODAY)
    assert policy_set.diagnostics == []
    run = audit.run(policy_set, Path("/"), {}, TODAY)
    return {r.check.id: r for r in run.results}


def test_live_audit(live: Live, tmp_path: Path) -> None:
    m = live.mark
    sel = {key: {"cmdline": f"(^| ){m}-{key}( |$)"} for key in live.pids}
    results = live_audit(tmp_path, live, {
        "EXEC-1": {**sel["exec"], "required": True, "mode": "filter", "no_new_privs": True,
                   "all_threads": True, "deep": True, "stop_isolated": True,
                   "profile": "loose.yaml", "must_deny": ["ptrace", "mount"]},
        "EXEC-2": {**sel["exec"], "deep": True, "stop_isolated": True,
                   "profile": "strict.yaml"},
        "PLAIN-1": {**sel["plain"], "mode": "filter"},
        "PLAIN-2": {**sel["plain"], "deep": True, "stop_isolated": True,
                    "must_deny": ["ptrace"]},
        "THR-1": {**sel["threads"], "mode": "filter"},
        "THR-2": {**sel["threads"], "all_threads": True},
    })
    got = {cid: r.status for cid, r in results.items()}
    # THR-1 fails too: mode applies to every thread, and the worker predates the filter.
    assert got == {"EXEC-1": Status.PASS, "EXEC-2": Status.FAIL, "PLAIN-1": Status.FAIL,
                   "PLAIN-2": Status.FAIL, "THR-1": Status.FAIL, "THR-2": Status.FAIL}
    pid = live.pids
    assert results["PLAIN-1"].message == (f"pid {pid['plain']} ('sleep') tid {pid['plain']} "
                                          "has seccomp mode disabled, expected filter")
    comm = Path(f"/proc/{pid['threads']}/comm").read_text().rstrip("\n")
    assert results["THR-1"].message == (f"pid {pid['threads']} ({comm!r}) tid "
                                         f"{live.worker_tid} has seccomp mode disabled, "
                                         "expected filter")
    assert results["THR-2"].message == (
        f"pid {pid['threads']} ({comm!r}) tid {live.worker_tid} has seccomp disabled with 0 "
        "filter(s), the main thread filter with 1: it escaped the filter (created before it "
        "was loaded without TSYNC)")
    assert [(r["arch"], r["syscall"]) for r in results["EXEC-2"].evidence.items
            if r["verdict"] == "fail"] == [("x86_64", "uname"), ("x86_64", "getppid")]
    deep_rows = [r for r in results["EXEC-1"].evidence.items if r.get("expectation") == "deep"]
    assert deep_rows and deep_rows[0]["filters"] == 1
    assert all(_running(p) for p in pid.values())


def test_audit_cache_never_stops_an_unchanged_process_twice(live: Live, tmp_path: Path) -> None:
    (tmp_path / "loose.yaml").write_text(LOOSE_YAML)
    path = write(tmp_path / "deep.yaml", policy("deep", [check("SEC-9", "seccomp", {
        "cmdline": f"(^| ){live.mark}-exec( |$)", "deep": True, "stop_isolated": True,
        "profile": "loose.yaml"})]))
    cache = tmp_path / "cache.json"

    def deep_row() -> dict[str, Any]:
        done = run_cli("audit", "--policy", str(path), "--format", "json", "--seccomp-cache",
                       str(cache))
        assert done.returncode == 0, done.stderr
        [result] = json.loads(done.stdout)["results"]
        [row] = [r for r in result["evidence"]["items"] if r.get("expectation") == "deep"]
        return dict(row)

    first = deep_row()
    assert first["cached"] is False and first["stopped_ms"] > 0
    assert cache.stat().st_mode & 0o777 == 0o600
    second = deep_row()
    assert second["cached"] is True and second["stopped_ms"] == 0


def test_deep_reads_only_for_allowed_checks(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("p", [
        check("SEC-1", "seccomp", {"name": "x", "deep": True, "must_deny": ["ptrace"]}),
        check("SEC-2", "seccomp", {"name": "y", "deep": True, "must_deny": ["ptrace"]}),
        check("SEC-3", "seccomp", {"name": "z", "mode": "filter"})]))
    checks = resolve([path], TODAY).checks
    assert len(audit.request_for(checks).seccomp_dumps) == 2
    assert len(audit.request_for(checks, lambda c: c.id == "SEC-2").seccomp_dumps) == 1
    assert audit.request_for(checks, lambda c: False).seccomp_dumps == frozenset()
