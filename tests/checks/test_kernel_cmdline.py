"""``kernel_cmdline`` checks: present, absent, values, and the kernel's own parsing rules."""

from __future__ import annotations

from typing import Any

import pytest

from agent.checks import KINDS
from agent.checks.base import SpecError, SpecProblem
from agent.checks.compare import Condition
from agent.checks.kernel_cmdline import CmdlineSpec, KernelCmdlineKind
from agent.host.facts import ReadError
from agent.host.snapshot import SnapshotRequest
from agent.result import Status
from tests.checks.snapshots import snapshot

KIND = KernelCmdlineKind()
TRADING = ("BOOT_IMAGE=/vmlinuz-6.1.0-18-amd64 root=UUID=3f6c ro quiet "
           "isolcpus=managed_irq,domain,2-15 nohz_full=2-15 rcu_nocbs=2-15 idle=poll "
           "intel_idle.max_cstate=0 mitigations=auto transparent_hugepage=never\n")


def verdict(raw: dict[str, Any], line: str) -> tuple[Status, str]:
    spec = KIND.parse(raw)
    outcome = KIND.evaluate(spec, snapshot(cmdline=line))
    return outcome.status, outcome.message


def test_registered_under_its_name() -> None:
    assert isinstance(KINDS["kernel_cmdline"], KernelCmdlineKind)


def test_parse() -> None:
    spec = KIND.parse({"present": ["nohz_full"], "absent": ["nokaslr", "mitigations=off"],
                       "values": {"idle": {"value": "poll"}, "x": {"op": "ge", "value": 2}}})
    assert spec == CmdlineSpec(
        present=("nohz_full",),
        absent=(("nokaslr", None), ("mitigations", "off")),
        values=(("idle", Condition("eq", "poll")), ("x", Condition("ge", 2))),
    )


def test_request_asks_for_the_cmdline_only() -> None:
    spec = KIND.parse({"present": ["quiet"]})
    assert KIND.request(spec) == SnapshotRequest(cmdline=True)


def test_not_read_is_error() -> None:
    spec = KIND.parse({"present": ["quiet"]})
    outcome = KIND.evaluate(spec, snapshot())
    assert (outcome.status, outcome.message) == (
        Status.ERROR, "cannot evaluate: kernel command line not read"
    )


def test_unreadable_cmdline_is_error() -> None:
    spec = KIND.parse({"present": ["quiet"], "absent": ["nokaslr"]})
    snap = snapshot(cmdline=ReadError("no such file: /x/proc/cmdline"))
    outcome = KIND.evaluate(spec, snap)
    assert (outcome.status, outcome.message) == (
        Status.ERROR, "cannot evaluate: no such file: /x/proc/cmdline"
    )
    assert outcome.evidence.actual == "no such file: /x/proc/cmdline"


# --- present / absent --------------------------------------------------------------------------


def test_present() -> None:
    assert verdict({"present": ["nohz_full", "quiet"]}, TRADING) == (
        Status.PASS, "kernel command line satisfies nohz_full present, quiet present"
    )
    assert verdict({"present": ["nohz_full", "nosmt", "nokaslr"]}, TRADING) == (
        Status.FAIL, "nosmt is not set; nokaslr is not set"
    )


def test_absent_name() -> None:
    assert verdict({"absent": ["nokaslr"]}, TRADING)[0] is Status.PASS
    assert verdict({"absent": ["idle"]}, TRADING) == (Status.FAIL, "idle=poll is set")
    assert verdict({"absent": ["quiet"]}, TRADING) == (Status.FAIL, "quiet is set")


def test_absent_name_value() -> None:
    assert verdict({"absent": ["mitigations=off"]}, TRADING) == (
        Status.PASS, "kernel command line satisfies mitigations!=off"
    )
    off = TRADING.replace("mitigations=auto", "mitigations=off")
    assert verdict({"absent": ["mitigations=off"]}, off) == (Status.FAIL, "mitigations=off is set")
    # name=value only forbids that value, not the bare parameter
    assert verdict({"absent": ["quiet=1"]}, TRADING)[0] is Status.PASS


def test_last_occurrence_wins() -> None:
    line = "mitigations=off quiet mitigations=auto"
    assert verdict({"absent": ["mitigations=off"]}, line)[0] is Status.PASS
    assert verdict({"values": {"mitigations": {"op": "ne", "value": "off"}}}, line)[0] is (
        Status.PASS
    )
    assert verdict({"absent": ["mitigations=auto"]}, line) == (
        Status.FAIL, "mitigations=auto is set"
    )


def test_dash_and_underscore_are_equivalent() -> None:
    line = "nohz-full=2-15 rcu_nocbs=2-15 intel-idle.max_cstate=0"
    assert verdict({"present": ["nohz_full", "rcu-nocbs"]}, line)[0] is Status.PASS
    assert verdict({"absent": ["nohz_full"]}, line) == (Status.FAIL, "nohz-full=2-15 is set")
    assert verdict({"absent": ["rcu-nocbs=2-15"]}, line) == (Status.FAIL, "rcu_nocbs=2-15 is set")
    assert verdict({"values": {"intel_idle.max-cstate": {"value": 0}}}, line)[0] is Status.PASS


def test_init_args_after_double_dash_do_not_count() -> None:
    line = "ro quiet -- nokaslr single mitigations=off"
    assert verdict({"absent": ["nokaslr", "mitigations=off"]}, line)[0] is Status.PASS
    assert verdict({"present": ["single"]}, line) == (Status.FAIL, "single is not set")
    assert verdict({"values": {"mitigations": {"value": "off"}}}, line) == (
        Status.FAIL, "expected mitigations == off, found no mitigations"
    )


# --- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "condition", "status", "message"),
    [
        ("idle", {"value": "poll"}, Status.PASS, "kernel command line satisfies idle == poll"),
        ("idle", {"op": "eq", "value": "halt"}, Status.FAIL,
         "expected idle == halt, found idle=poll"),
        ("mitigations", {"op": "ne", "value": "off"}, Status.PASS,
         "kernel command line satisfies mitigations != off"),
        ("transparent_hugepage", {"op": "ne", "value": "never"}, Status.FAIL,
         "expected transparent_hugepage != never, found transparent_hugepage=never"),
        ("intel_idle.max_cstate", {"op": "le", "value": 1}, Status.PASS,
         "kernel command line satisfies intel_idle.max_cstate <= 1"),
        ("intel_idle.max_cstate", {"op": "ge", "value": 1}, Status.FAIL,
         "expected intel_idle.max_cstate >= 1, found intel_idle.max_cstate=0"),
        ("mitigations", {"op": "in", "value": ["auto", "auto,nosmt"]}, Status.PASS,
         "kernel command line satisfies mitigations in ['auto', 'auto,nosmt']"),
        ("mitigations", {"op": "in", "value": ["auto,nosmt"]}, Status.FAIL,
         "expected mitigations in ['auto,nosmt'], found mitigations=auto"),
        ("nohz_full", {"op": "regex", "value": "[0-9]+-[0-9]+"}, Status.PASS,
         "kernel command line satisfies nohz_full matches [0-9]+-[0-9]+"),
        ("isolcpus", {"op": "regex", "value": "[0-9]+-[0-9]+"}, Status.FAIL,
         "expected isolcpus matches [0-9]+-[0-9]+, found isolcpus=managed_irq,domain,2-15"),
        # a parameter that is not there fails every condition but ne
        ("nosmt", {"op": "ne", "value": "force"}, Status.PASS,
         "kernel command line satisfies nosmt != force"),
        ("nosmt", {"op": "eq", "value": "force"}, Status.FAIL,
         "expected nosmt == force, found no nosmt"),
        ("nosmt", {"op": "in", "value": ["force"]}, Status.FAIL,
         "expected nosmt in ['force'], found no nosmt"),
        ("nosmt", {"op": "regex", "value": ".*"}, Status.FAIL,
         "expected nosmt matches .*, found no nosmt"),
        ("nosmt", {"op": "ge", "value": 0}, Status.FAIL, "expected nosmt >= 0, found no nosmt"),
        # a value ge/le cannot compare is an error, like a non-integer sysctl
        ("nohz_full", {"op": "ge", "value": 2}, Status.ERROR,
         "cannot evaluate: nohz_full: value '2-15' is not an integer"),
    ],
)
def test_values(name: str, condition: dict[str, Any], status: Status, message: str) -> None:
    assert verdict({"values": {name: condition}}, TRADING) == (status, message)


def test_fail_dominates_error_across_rows() -> None:
    raw = {"present": ["nosmt"], "values": {"nohz_full": {"op": "ge", "value": 2}}}
    assert verdict(raw, TRADING) == (Status.FAIL, "nosmt is not set")


def test_bare_flag_has_an_empty_value() -> None:
    assert verdict({"values": {"quiet": {"op": "eq", "value": ""}}}, "quiet")[0] is Status.PASS
    assert verdict({"values": {"quiet": {"op": "ne", "value": "1"}}}, "quiet")[0] is Status.PASS


def test_evidence_rows() -> None:
    spec = KIND.parse({"present": ["quiet"], "absent": ["mitigations=off"],
                       "values": {"idle": {"value": "halt"}}})
    outcome = KIND.evaluate(spec, snapshot(cmdline=TRADING))
    assert outcome.evidence.expected == "quiet present, mitigations!=off, idle == halt"
    assert outcome.evidence.actual == TRADING
    assert [(r["param"], r["actual"], r["verdict"]) for r in outcome.evidence.items] == [
        ("quiet", "quiet", "pass"), ("mitigations", "mitigations=auto", "pass"),
        ("idle", "idle=poll", "fail"),
    ]


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"x": {"op": "ge", "value": "high"}},
         SpecProblem(("values", "x", "value"), "op 'ge' needs an integer value")),
        ({"x": {"op": "in", "value": "auto"}},
         SpecProblem(("values", "x", "value"), "op 'in' takes a list of values")),
    ],
)
def test_value_problems_are_located(values: dict[str, Any], problem: SpecProblem) -> None:
    with pytest.raises(SpecError) as caught:
        KIND.parse({"values": values})
    assert caught.value.problems == [problem]


def test_bad_regex_is_located() -> None:
    with pytest.raises(SpecError) as caught:
        KIND.parse({"values": {"ok": {"value": 1}, "isolcpus": {"op": "regex", "value": "(2"}}})
    (problem,) = caught.value.problems
    assert (problem.path, problem.rule) == (("values", "isolcpus", "value"), "invalid-regex")
