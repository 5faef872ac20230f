"""The value conditions every comparing kind shares: parsing, comparison, and the verdict."""

from __future__ import annotations

import re
from typing import Any

import pytest

from agent.checks.base import SpecProblem
from agent.checks.compare import Condition, judge_values, normalise, parse_condition
from agent.host.facts import ReadError
from agent.host.snapshot import Values
from agent.result import Evidence, Outcome, Status


def condition(raw: dict[str, Any]) -> Condition:
    cond, problems = parse_condition(raw)
    assert problems == []
    return cond


# --- parse_condition ---------------------------------------------------------------------------


def test_op_defaults_to_eq() -> None:
    assert condition({"value": 1}) == Condition("eq", 1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"op": "eq", "value": "never"}, Condition("eq", "never")),
        ({"op": "ne", "value": 0}, Condition("ne", 0)),
        ({"op": "ge", "value": 1}, Condition("ge", 1)),
        ({"op": "le", "value": -1}, Condition("le", -1)),
        ({"op": "ge", "value": "65536"}, Condition("ge", 65536)),  # integer text is an integer
        ({"op": "in", "value": [1, "2"]}, Condition("in", (1, "2"))),
    ],
)
def test_parse_builds_the_condition(raw: dict[str, Any], expected: Condition) -> None:
    assert condition(raw) == expected


def test_regex_is_compiled() -> None:
    cond = condition({"op": "regex", "value": "perf.*"})
    assert (cond.op, cond.value) == ("regex", "perf.*")
    assert cond.pattern == re.compile("perf.*")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"op": "ge", "value": "high"},
         SpecProblem(("value",), "op 'ge' needs an integer value")),
        ({"op": "le", "value": "1.5"}, SpecProblem(("value",), "op 'le' needs an integer value")),
        ({"op": "in", "value": 1}, SpecProblem(("value",), "op 'in' takes a list of values")),
        ({"op": "eq", "value": [1, 2]},
         SpecProblem(("value",), "op 'eq' takes one value, not a list")),
        ({"op": "ge", "value": [1]},
         SpecProblem(("value",), "op 'ge' takes one value, not a list")),
        ({"op": "ne"}, SpecProblem((), "op 'ne' needs a value")),
    ],
)
def test_parse_problems(raw: dict[str, Any], problem: SpecProblem) -> None:
    assert parse_condition(raw)[1] == [problem]


def test_bad_regex_is_an_invalid_regex_problem() -> None:
    cond, problems = parse_condition({"op": "regex", "value": "perf(ormance"})
    assert len(problems) == 1
    assert problems[0].path == ("value",)
    assert problems[0].rule == "invalid-regex"
    assert problems[0].message.startswith("invalid regex 'perf(ormance': missing ), unterminated")
    assert cond.test("perf(ormance") is False  # the stand-in pattern never matches


def test_problems_are_located_under_the_given_path() -> None:
    _, problems = parse_condition({"op": "ge", "value": "x"}, ("values", "mitigations"))
    assert problems == [SpecProblem(("values", "mitigations", "value"),
                                    "op 'ge' needs an integer value")]
    _, problems = parse_condition({"op": "eq"}, ("values", "idle"))
    assert problems == [SpecProblem(("values", "idle"), "op 'eq' needs a value")]


# --- Condition.test ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "actual", "verdict"),
    [
        # eq: integers compare as integers, everything else as whitespace-normalised text
        ({"op": "eq", "value": 1}, "1", True),
        ({"op": "eq", "value": 1}, "0", False),
        ({"op": "eq", "value": "1"}, "1", True),
        ({"op": "eq", "value": 1}, "01", True),
        ({"op": "eq", "value": "01"}, "1", True),
        ({"op": "eq", "value": -1}, "-1", True),
        ({"op": "eq", "value": 1}, " 1\n", True),
        ({"op": "eq", "value": "4 4 1 7"}, "4\t4\t1\t7", True),
        ({"op": "eq", "value": "4\t4  1 7"}, "4 4\t1\t7", True),
        ({"op": "eq", "value": "4 4 1 7"}, "4\t4\t1\t6", False),
        ({"op": "eq", "value": "never"}, "never", True),
        ({"op": "eq", "value": "never"}, "Never", False),
        ({"op": "eq", "value": 1}, "one", False),
        # only ASCII decimal text is an integer ("1_0" and Arabic-Indic one are not)
        ({"op": "eq", "value": 10}, "1_0", False),
        ({"op": "eq", "value": "10"}, "1_0", False),
        ({"op": "eq", "value": 1}, "\u0661", False),
        # ne
        ({"op": "ne", "value": 0}, "1", True),
        ({"op": "ne", "value": 0}, "0", False),
        ({"op": "ne", "value": "off"}, "auto", True),
        ({"op": "ne", "value": "off"}, "off", False),
        ({"op": "ne", "value": 0}, "00", False),
        # ge / le, boundaries included
        ({"op": "ge", "value": 1}, "2", True),
        ({"op": "ge", "value": 1}, "1", True),
        ({"op": "ge", "value": 1}, "0", False),
        ({"op": "ge", "value": 0}, "-1", False),
        ({"op": "ge", "value": 65536}, "9223372036854775807", True),
        ({"op": "le", "value": 10}, "10", True),
        ({"op": "le", "value": 10}, "11", False),
        ({"op": "le", "value": -1}, "-1", True),
        # in: any member, with the same integer/string rules
        ({"op": "in", "value": [1, 2]}, "2", True),
        ({"op": "in", "value": [1, 2]}, "0", False),
        ({"op": "in", "value": ["never", "madvise"]}, "madvise", True),
        ({"op": "in", "value": ["never", "madvise"]}, "always", False),
        ({"op": "in", "value": ["1", 2]}, "01", True),
        # regex: the whole (normalised) value must match
        ({"op": "regex", "value": "perf.*"}, "performance", True),
        ({"op": "regex", "value": "perf.*"}, "powersave", False),
        ({"op": "regex", "value": "perf"}, "performance", False),
        ({"op": "regex", "value": "ance"}, "performance", False),
        ({"op": "regex", "value": "4 4 1 7"}, "4\t4\t1\t7", True),
        ({"op": "regex", "value": "[0-9]+"}, "12", True),
    ],
)
def test_comparison(raw: dict[str, Any], actual: str, verdict: bool) -> None:
    assert condition(raw).test(actual) is verdict


@pytest.mark.parametrize(
    ("raw", "actual", "reason"),
    [
        ({"op": "ge", "value": 1}, "abc", "value 'abc' is not an integer"),
        ({"op": "le", "value": 1}, "2-15", "value '2-15' is not an integer"),
        ({"op": "ge", "value": 1}, "", "value '' is not an integer"),
        ({"op": "ge", "value": 1}, "4\t4", "value '4 4' is not an integer"),
        ({"op": "le", "value": 1}, "1_0", "value '1_0' is not an integer"),
    ],
)
def test_ordering_needs_an_integer_actual(raw: dict[str, Any], actual: str, reason: str) -> None:
    assert condition(raw).test(actual) == reason


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ({"op": "eq", "value": 1}, "kernel.kptr_restrict == 1"),
        ({"op": "ne", "value": "off"}, "kernel.kptr_restrict != off"),
        ({"op": "ge", "value": 1}, "kernel.kptr_restrict >= 1"),
        ({"op": "le", "value": 10}, "kernel.kptr_restrict <= 10"),
        ({"op": "in", "value": [1, 2]}, "kernel.kptr_restrict in [1, 2]"),
        ({"op": "regex", "value": "[12]"}, "kernel.kptr_restrict matches [12]"),
    ],
)
def test_describe(raw: dict[str, Any], text: str) -> None:
    assert condition(raw).describe("kernel.kptr_restrict") == text


def test_normalise() -> None:
    assert normalise("4\t4\t1\t7") == "4 4 1 7"
    assert normalise("  a \n b  ") == "a b"
    assert normalise("") == ""


# --- judge_values ------------------------------------------------------------------------------

KEY = "net.ipv4.conf.*.rp_filter"
IN_1_2 = Condition("in", (1, 2))


def test_every_match_passes() -> None:
    values = {"net.ipv4.conf.all.rp_filter": "1", "net/ipv4/conf/eth0.100/rp_filter": "2"}
    assert judge_values(KEY, values, IN_1_2, "error") == Outcome(
        Status.PASS,
        "net.ipv4.conf.*.rp_filter in [1, 2] holds",
        Evidence(
            "net.ipv4.conf.*.rp_filter in [1, 2]",
            "net.ipv4.conf.all.rp_filter = 1; net/ipv4/conf/eth0.100/rp_filter = 2",
            (
                {"key": "net.ipv4.conf.all.rp_filter", "value": "1", "verdict": "pass"},
                {"key": "net/ipv4/conf/eth0.100/rp_filter", "value": "2", "verdict": "pass"},
            ),
        ),
    )


def test_one_failing_match_fails_and_is_named() -> None:
    values = {"net.ipv4.conf.all.rp_filter": "1", "net.ipv4.conf.lo.rp_filter": "0",
              "net.ipv4.conf.eth0.rp_filter": "2"}
    outcome = judge_values(KEY, values, IN_1_2, "error")
    assert outcome.status is Status.FAIL
    assert outcome.message == ("expected net.ipv4.conf.*.rp_filter in [1, 2], "
                               "found net.ipv4.conf.lo.rp_filter = 0")
    assert [row["verdict"] for row in outcome.evidence.items] == ["pass", "fail", "pass"]


def test_every_failing_match_is_named() -> None:
    values = {"a.x": "0", "a.y": "1", "a.z": "4\t4"}
    outcome = judge_values("a.*", values, Condition("eq", 1), "error")
    assert outcome.message == "expected a.* == 1, found a.x = 0, a.z = 4 4"


def test_read_error_among_matches_is_error() -> None:
    values: Values = {"net.ipv4.conf.all.rp_filter": "1",
              "net.ipv4.conf.lo.rp_filter": ReadError("permission denied: /proc/sys/x")}
    outcome = judge_values(KEY, values, IN_1_2, "error")
    assert outcome.status is Status.ERROR
    assert outcome.message == ("cannot evaluate: net.ipv4.conf.lo.rp_filter: "
                               "permission denied: /proc/sys/x")
    assert outcome.evidence.actual == ("net.ipv4.conf.all.rp_filter = 1; "
                                       "net.ipv4.conf.lo.rp_filter: permission denied: /proc/sys/x")
    assert outcome.evidence.items[1] == {"key": "net.ipv4.conf.lo.rp_filter", "value": None,
                                         "verdict": "error",
                                         "reason": "permission denied: /proc/sys/x"}


def test_fail_dominates_error() -> None:
    values: Values = {"net.ipv4.conf.all.rp_filter": ReadError("i/o error: x"),
              "net.ipv4.conf.lo.rp_filter": "0"}
    outcome = judge_values(KEY, values, IN_1_2, "error")
    assert outcome.status is Status.FAIL
    assert outcome.message == ("expected net.ipv4.conf.*.rp_filter in [1, 2], "
                               "found net.ipv4.conf.lo.rp_filter = 0")


def test_incomparable_actual_is_error() -> None:
    outcome = judge_values("vm.swappiness", {"vm.swappiness": "lots"}, Condition("le", 10),
                           "error")
    assert outcome.status is Status.ERROR
    assert outcome.message == "cannot evaluate: vm.swappiness: value 'lots' is not an integer"
    assert outcome.evidence.items == ({"key": "vm.swappiness", "value": "lots",
                                       "verdict": "error",
                                       "reason": "value 'lots' is not an integer"},)


@pytest.mark.parametrize(
    ("missing", "status"),
    [("error", Status.ERROR), ("not_applicable", Status.NOT_APPLICABLE), ("fail", Status.FAIL)],
)
def test_nothing_matched(missing: str, status: Status) -> None:
    assert judge_values("kernel.sysrq", {}, Condition("eq", 0), missing) == Outcome(
        status, "kernel.sysrq does not exist on this host", Evidence("kernel.sysrq == 0", "absent")
    )


def test_not_read_is_error_whatever_missing_says() -> None:
    for missing in ("error", "not_applicable", "fail"):
        assert judge_values("kernel.sysrq", None, Condition("eq", 0), missing) == Outcome(
            Status.ERROR, "kernel.sysrq was not read", Evidence("kernel.sysrq == 0", "not read")
        )
