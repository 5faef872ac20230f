"""``sysfs`` checks: the bracketed choice, globs, missing files and path validation."""

from __future__ import annotations

from typing import Any

import pytest

from agent.checks import KINDS
from agent.checks.base import SpecError, SpecProblem
from agent.checks.compare import Condition
from agent.checks.sysfs import SysfsKind, selected
from agent.checks.valuekind import ValueSpec
from agent.host.facts import ReadError
from agent.host.snapshot import SnapshotRequest, Values
from agent.result import Status
from tests.checks.snapshots import snapshot

KIND = SysfsKind()
THP = "kernel/mm/transparent_hugepage/enabled"
GOVERNOR = "devices/system/cpu/cpu*/cpufreq/scaling_governor"


def verdict(raw: dict[str, Any], values: Values) -> tuple[Status, str]:
    spec = KIND.parse(raw)
    outcome = KIND.evaluate(spec, snapshot(sysfs={spec.key: values}))
    return outcome.status, outcome.message


def test_registered_under_its_name() -> None:
    assert isinstance(KINDS["sysfs"], SysfsKind)


def test_parse_and_request() -> None:
    spec = KIND.parse({"path": THP, "op": "in", "value": ["never", "madvise"]})
    assert spec == ValueSpec(THP, Condition("in", ("never", "madvise")), "error")
    assert KIND.request(spec) == SnapshotRequest(sysfs=frozenset({THP}))
    glob = KIND.parse({"path": GOVERNOR, "value": "performance", "missing": "not_applicable"})
    assert KIND.request(glob) == SnapshotRequest(sysfs=frozenset({GOVERNOR}))
    assert glob.missing == "not_applicable"


def test_evaluate_reads_what_request_asked_for() -> None:
    spec = KIND.parse({"path": THP, "value": "never"})
    (path,) = KIND.request(spec).sysfs
    snap = snapshot(sysfs={path: {THP: "always madvise [never]"}})
    assert KIND.evaluate(spec, snap).status is Status.PASS
    other = snapshot(sysctl={THP: {THP: "never"}})  # a sysctl of that name is not the file
    assert KIND.evaluate(spec, other).message == f"{THP} was not read"


@pytest.mark.parametrize(
    ("text", "choice"),
    [
        ("always [madvise] never", "madvise"),
        ("[always] madvise never", "always"),
        ("always defer defer+madvise madvise [never]", "never"),
        ("[mq-deadline] kyber bfq none", "mq-deadline"),
        ("performance", "performance"),
        ("2-15", "2-15"),
        ("", ""),
        ("[] x", "[] x"),  # an empty bracket selects nothing
    ],
)
def test_selected(text: str, choice: str) -> None:
    assert selected(text) == choice


@pytest.mark.parametrize(
    ("raw", "actual", "status", "message"),
    [
        ({"op": "eq", "value": "never"}, "always madvise [never]", Status.PASS,
         f"{THP} == never holds"),
        ({"op": "eq", "value": "never"}, "always [madvise] never", Status.FAIL,
         f"expected {THP} == never, found {THP} = madvise"),
        ({"op": "ne", "value": "always"}, "always [madvise] never", Status.PASS,
         f"{THP} != always holds"),
        ({"op": "ne", "value": "always"}, "[always] madvise never", Status.FAIL,
         f"expected {THP} != always, found {THP} = always"),
        ({"op": "in", "value": ["never", "madvise"]}, "always [madvise] never", Status.PASS,
         f"{THP} in ['never', 'madvise'] holds"),
        ({"op": "in", "value": ["never", "madvise"]}, "[always] madvise never", Status.FAIL,
         f"expected {THP} in ['never', 'madvise'], found {THP} = always"),
        ({"op": "regex", "value": "never|madvise"}, "always [madvise] never", Status.PASS,
         f"{THP} matches never|madvise holds"),
        ({"op": "regex", "value": "never|madvise"}, "[always] madvise never", Status.FAIL,
         f"expected {THP} matches never|madvise, found {THP} = always"),
        # 'always' is in the text but not selected: the regex sees the choice only
        ({"op": "regex", "value": ".*always.*"}, "always [madvise] never", Status.FAIL,
         f"expected {THP} matches .*always.*, found {THP} = madvise"),
        ({"op": "ge", "value": 1}, "2", Status.PASS, f"{THP} >= 1 holds"),
        ({"op": "le", "value": 1}, "2", Status.FAIL, f"expected {THP} <= 1, found {THP} = 2"),
        ({"op": "ge", "value": 1}, "always [madvise] never", Status.ERROR,
         f"cannot evaluate: {THP}: value 'madvise' is not an integer"),
    ],
)
def test_every_op_on_the_selected_choice(
    raw: dict[str, Any], actual: str, status: Status, message: str
) -> None:
    assert verdict({"path": THP, **raw}, {THP: actual}) == (status, message)


def test_glob_names_the_failing_file() -> None:
    values: Values = {
        "devices/system/cpu/cpu0/cpufreq/scaling_governor": "performance",
        "devices/system/cpu/cpu1/cpufreq/scaling_governor": "performance",
        "devices/system/cpu/cpu2/cpufreq/scaling_governor": "powersave",
    }
    assert verdict({"path": GOVERNOR, "value": "performance"}, values) == (
        Status.FAIL,
        f"expected {GOVERNOR} == performance, "
        "found devices/system/cpu/cpu2/cpufreq/scaling_governor = powersave",
    )


def test_read_error_among_matches() -> None:
    raw = {"path": GOVERNOR, "value": "performance"}
    values: Values = {
        "devices/system/cpu/cpu0/cpufreq/scaling_governor": "performance",
        "devices/system/cpu/cpu1/cpufreq/scaling_governor":
            ReadError("no such device: /sys/devices/system/cpu/cpu1/cpufreq/scaling_governor"),
    }
    assert verdict(raw, values) == (
        Status.ERROR,
        "cannot evaluate: devices/system/cpu/cpu1/cpufreq/scaling_governor: no such device: "
        "/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
    )
    failing = {**values, "devices/system/cpu/cpu2/cpufreq/scaling_governor": "[powersave]"}
    status, message = verdict(raw, failing)
    assert status is Status.FAIL
    assert message.endswith("found devices/system/cpu/cpu2/cpufreq/scaling_governor = powersave")


def test_evidence_keeps_the_selected_value() -> None:
    spec = KIND.parse({"path": THP, "value": "never"})
    outcome = KIND.evaluate(spec, snapshot(sysfs={THP: {THP: "always [madvise] never"}}))
    assert outcome.evidence.actual == f"{THP} = madvise"
    assert outcome.evidence.items == ({"key": THP, "value": "madvise", "verdict": "fail"},)


@pytest.mark.parametrize(
    ("missing", "status"),
    [(None, Status.ERROR), ("not_applicable", Status.NOT_APPLICABLE), ("fail", Status.FAIL)],
)
def test_missing_file(missing: str | None, status: Status) -> None:
    raw: dict[str, Any] = {"path": THP, "value": "never"}
    if missing is not None:
        raw["missing"] = missing
    assert verdict(raw, {}) == (status, f"{THP} does not exist on this host")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/sys/kernel/mm", "path must be relative (no leading '/')"),
        ("../etc/shadow", "path component '..' is not allowed"),
        ("kernel/./mm", "path component '.' is not allowed"),
        ("kernel//mm", "path component '' is not allowed"),
        ("devices/system/cpu/cpu[0-9/online", "'[' at position 23 is never closed"),
    ],
)
def test_bad_paths(path: str, reason: str) -> None:
    with pytest.raises(SpecError) as caught:
        KIND.parse({"path": path, "value": 1})
    assert caught.value.problems == [
        SpecProblem(("path",), f"invalid sysfs path {path!r}: {reason}", "invalid-glob")
    ]


def test_value_problems_are_located() -> None:
    with pytest.raises(SpecError) as caught:
        KIND.parse({"path": THP, "op": "regex", "value": "(never"})
    (problem,) = caught.value.problems
    assert (problem.path, problem.rule) == (("value",), "invalid-regex")
