"""Process selection shared by the ``process``, ``cgroup`` and ``seccomp`` kinds: the same
parse problems at the same keys, and the same fail-closed verdict on a field that cannot be read."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from agent.checks.base import CheckKind, SpecError, SpecPath, SpecProblem
from agent.checks.cgroup import CgroupKind
from agent.checks.process import ProcessKind
from agent.checks.seccomp import SeccompKind
from agent.checks.selectors import (
    ProcessSelector,
    host_text,
    parse_selectors,
    select,
    selects,
    who,
    who_row,
)
from agent.host.processes import CgroupMembership, Process, ProcessTable, Thread
from agent.host.snapshot import Snapshot, take
from agent.result import Outcome, Status
from tests.checks.snapshots import FACTS
from tests.support import FIXTURES

V2 = FIXTURES / "hosts" / "cgroup-v2-trading"
DENIED = "Permission denied"
GATEWAY_CGROUP = "/trading.slice/fixgw.service"  # fixgw's cgroup in the v2 fixture


def proc(pid: int, name: str = "fixgw", **fields: Any) -> Process:
    """An unprivileged fixgw in its cgroup of the v2 fixture; ``fields`` override."""
    base: dict[str, Any] = dict(
        pid=pid, ppid=1, name=name, kernel_thread=False, start_time=100,
        exe=f"/opt/{name}/bin/{name}", cmdline=(f"/opt/{name}/bin/{name}", "--session", "LSE-1"),
        uid=1000, ruid=1000, user="trader", cap_eff=0, cap_prm=0, cap_bnd=0, cap_amb=0,
        no_new_privs=True, seccomp=2, seccomp_filters=1, cpus_allowed=frozenset({2, 3}),
        sched_policy=1, rt_priority=60, nice=0,
        cgroups=(CgroupMembership(0, (), GATEWAY_CGROUP),), netns=4026531840,
        threads=(Thread(pid, name, 2, 1, True, frozenset({2, 3})),))
    base.update(fields)
    return Process(**base)


# --- parsing ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Selecting:
    """A kind that selects processes: where its selector sits in a spec, and the rest of a
    spec that is valid."""

    kind: CheckKind[Any]
    at: SpecPath
    spec: Callable[[Mapping[str, Any]], dict[str, Any]]

    def problems(self, selector: Mapping[str, Any]) -> list[SpecProblem]:
        with pytest.raises(SpecError) as caught:
            self.kind.parse(self.spec(selector))
        return caught.value.problems

    def evaluate(self, selector: Mapping[str, Any], *procs: Process) -> Outcome:
        spec = self.kind.parse(self.spec(selector))
        table = ProcessTable({p.pid: p for p in procs}, 4026531840, {1000: "trader"})
        if isinstance(self.kind, CgroupKind):  # the cgroups of the v2 fixture
            snapshot = dataclasses.replace(take(V2, self.kind.request(spec)), processes=table)
        else:
            snapshot = Snapshot(root="/x", facts=FACTS, processes=table)
        return self.kind.evaluate(spec, snapshot)


KINDS = {
    "process": Selecting(ProcessKind(), (), lambda s: {**s, "not_root": True}),
    "seccomp": Selecting(SeccompKind(), (), lambda s: {**s, "mode": "filter"}),
    "cgroup": Selecting(CgroupKind(), ("process",),
                        lambda s: {"process": dict(s), "limits": {"cpu.weight": 100}}),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(("selector", "key", "message", "rule"), [
    ({"cmdline": "fix(gw"}, "cmdline",
     "invalid regex 'fix(gw': missing ), unterminated subpattern at position 3", "invalid-regex"),
    ({"name": "fix[gw"}, "name", "invalid name glob 'fix[gw': '[' at position 4 is never closed",
     "invalid-glob"),
    ({"exe": "/opt/]x"}, "exe", "invalid exe glob '/opt/]x': ']' at position 6 closes no '['",
     "invalid-glob"),
    ({"exe": "fixgw"}, "exe",
     "exe 'fixgw' can never match: executables are absolute paths (did you mean '*/fixgw'?)",
     "spec"),
    ({"name": "fixgw-order-gateway"}, "name",
     "name 'fixgw-order-gateway' can never match: the kernel truncates comm to 15 bytes; select "
     "by exe or cmdline instead", "spec"),
])
def test_every_kind_refuses_the_same_selectors_at_the_same_key(
        kind: str, selector: dict[str, Any], key: str, message: str, rule: str) -> None:
    selecting = KINDS[kind]
    assert selecting.problems(selector) == [SpecProblem((*selecting.at, key), message, rule)]


def test_problems_of_several_fields_come_in_one_order() -> None:
    found = KINDS["cgroup"].problems({"cmdline": "(", "exe": "x", "name": "[x"})
    assert [p.path for p in found] == [("process", "name"), ("process", "exe"),
                                       ("process", "cmdline")]


def test_parse_selectors_reads_users_and_kernel_threads() -> None:
    problems: list[SpecProblem] = []
    assert parse_selectors({"user": "1000"}, problems).user == 1000  # digits: a uid
    assert parse_selectors({"user": 0}, problems).user == 0
    assert parse_selectors({"user": "\u00b2"}, problems).user == "\u00b2"  # not ASCII: a name
    assert parse_selectors({"name": "x", "kernel_threads": True}, problems) == ProcessSelector(
        name="x", kernel_threads=True)
    assert problems == []
    parse_selectors({"user": " "}, problems, ("process",))
    assert problems == [SpecProblem(("process", "user"), "empty user name")]


def test_wildcards_shorten_the_comm_length_check() -> None:
    problems: list[SpecProblem] = []
    assert parse_selectors({"name": "fixgw-order-ga*"}, problems).name == "fixgw-order-ga*"
    parse_selectors({"name": "[a-z]??????????????"}, problems)  # 15 characters
    assert problems == []


def test_what_each_selector_reads() -> None:
    problems: list[SpecProblem] = []
    assert parse_selectors({"name": "x"}, problems).process_fields() == frozenset()  # stat
    assert parse_selectors({"exe": "/x", "cmdline": "y", "user": "u"},
                           problems).process_fields() == {"exe", "cmdline", "uid", "user"}
    assert not ProcessSelector(kernel_threads=True).given
    assert ProcessSelector(user=0).given


# --- matching ---------------------------------------------------------------------------------


def test_all_given_fields_must_match() -> None:
    fixgw = proc(10)
    assert selects(ProcessSelector(name="fix*", exe="/opt/*", cmdline=re.compile("LSE"),
                                   user="trader"), fixgw) is True
    assert selects(ProcessSelector(user=1000), fixgw) is True
    assert selects(ProcessSelector(user=0), fixgw) is False
    assert selects(ProcessSelector(name="fix*", user="root"), fixgw) is False
    assert selects(ProcessSelector(exe="/opt/*"), proc(11, exe=None)) is False  # a zombie


def test_kernel_threads_only_when_asked() -> None:
    kthread = proc(2, "kthreadd", kernel_thread=True, exe=None, cmdline=())
    assert selects(ProcessSelector(name="kthreadd"), kthread) is False
    assert selects(ProcessSelector(name="kthreadd", kernel_threads=True), kthread) is True


HIDDEN: dict[str, tuple[dict[str, Any], dict[str, str], str]] = {
    # field selected on -> (what the reader left, unreadable, the reason given)
    "name": ({"name": ""}, {"stat": DENIED, "status": DENIED}, f"name: {DENIED}"),
    "exe": ({"exe": None}, {"exe": DENIED}, f"exe: {DENIED}"),
    "cmdline": ({"cmdline": ()}, {"cmdline": DENIED}, f"cmdline: {DENIED}"),
    "user": ({"uid": None, "ruid": None, "user": None}, {"status": DENIED},
             f"user: status: {DENIED}"),
}
SELECTING_FIXGW = {"name": "fixgw*", "exe": "/opt/fixgw/*", "cmdline": "--session",
                   "user": "trader"}


def hidden(field: str, pid: int = 10) -> Process:
    """fixgw, but ``field`` could not be read."""
    values, unreadable, _ = HIDDEN[field]
    return proc(pid, **values, unreadable=unreadable)


@pytest.mark.parametrize("field", sorted(HIDDEN))
def test_an_unreadable_field_is_a_reason_not_a_verdict(field: str) -> None:
    problems: list[SpecProblem] = []
    selector = parse_selectors({field: SELECTING_FIXGW[field]}, problems)
    assert selects(selector, hidden(field)) == HIDDEN[field][2]
    matched, unsure = select(selector, [proc(11), hidden(field)])
    assert [p.pid for p in matched] == [11]
    assert [(p.pid, why) for p, why in unsure] == [(10, HIDDEN[field][2])]


def test_a_definite_mismatch_wins_over_an_unreadable_field() -> None:
    selector = ProcessSelector(name="other", exe="/opt/*")
    assert selects(selector, hidden("exe")) is False
    both = ProcessSelector(exe="/opt/*", cmdline=re.compile("x"))
    assert selects(both, proc(10, exe=None, cmdline=(), unreadable={
        "exe": DENIED, "cmdline": DENIED})) == f"exe: {DENIED}; cmdline: {DENIED}"


def test_a_name_read_from_status_when_stat_was_not_is_known() -> None:
    fallback = proc(10, unreadable={"stat": DENIED})  # comm came from the Name: line
    assert selects(ProcessSelector(name="fixgw"), fallback) is True


@pytest.mark.parametrize(("kind", "field"), [
    (kind, field) for kind in sorted(KINDS) for field in sorted(HIDDEN)
    if (kind, field) != ("cgroup", "user")])  # the cgroup kind does not select by user
def test_every_kind_fails_closed_on_an_unreadable_field(kind: str, field: str) -> None:
    """Beside a process that passes, one that might be selected but cannot be told makes the
    check ``error`` naming the pid and the reason: never selected, never skipped."""
    selecting = KINDS[kind]
    selector = {field: SELECTING_FIXGW[field]}
    assert selecting.evaluate(selector, proc(11)).status is Status.PASS
    unsure = hidden(field)
    outcome = selecting.evaluate(selector, proc(11), unsure)
    reason = HIDDEN[field][2]
    assert outcome.status is Status.ERROR
    assert {
        "process": f"cannot evaluate: selection undecided for pid 10: {reason}",
        "seccomp": f"{who(unsure)} might be selected: {reason}",
        "cgroup": f"cannot evaluate: pid 10 might match: {reason}",
    }[kind] == outcome.message


def test_cgroup_kind_with_nothing_else_selected_is_error_not_a_miss() -> None:
    """A cgroup check whose only candidate cannot be told is ``error`` even when a miss would
    be ``not_applicable``."""
    outcome = KINDS["cgroup"].evaluate({"name": "fixgw*"}, hidden("name"))
    assert outcome.status is Status.ERROR  # with missing: error, the default
    spec = KINDS["cgroup"].spec({"name": "fixgw*"})
    kind = KINDS["cgroup"].kind
    parsed = kind.parse({**spec, "missing": "not_applicable"})
    table = ProcessTable({10: hidden("name")}, 4026531840, {})
    snapshot = dataclasses.replace(take(V2, kind.request(parsed)), processes=table)
    outcome = kind.evaluate(parsed, snapshot)
    assert (outcome.status, outcome.message) == (
        Status.ERROR, "no cgroup matches process name = fixgw* (not every cgroup or process "
                      f"could be read: pid 10 might match: name: {DENIED})")


# --- naming -----------------------------------------------------------------------------------


def test_processes_are_named_with_host_text_made_encodable() -> None:
    odd = proc(10, name="gw\udcff", user=None, cmdline=("a", "b\udcfe"))
    assert host_text("b\udcfe") == "b\\xfe"
    assert who(odd) == "pid 10 ('gw\\\\xff')"
    assert who_row(odd) == {"pid": 10, "name": "gw\\xff", "user": None, "uid": 1000,
                            "cmdline": "a b\\xfe"}
