"""Policies across files: extends, overrides, ids, waivers and host selectors.

Files are written into a temporary folder that is also the working folder, so diagnostics name
them relatively (``child.yaml:4:11``) and can be compared as exact strings. Positions follow the
layout documented in :mod:`tests.policy.builders`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from agent.policy.loader import one_year_after
from agent.policy.model import HostSelector, Severity
from agent.policy.resolve import PolicySet, resolve
from tests.policy.builders import policy, write

TODAY = dt.date(2026, 11, 24)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*roots: str, today: dt.date = TODAY) -> PolicySet:
    return resolve([Path(r) for r in roots], today)


def found(policy_set: PolicySet) -> list[str]:
    return [str(d) for d in policy_set.diagnostics]


def ids(policy_set: PolicySet) -> list[str]:
    return [c.id for c in policy_set.checks]


def waiver(check: str, expires: str = "2027-01-01", reason: str = "CHG-1",
           hosts: str | None = None) -> str:
    text = f"  - check: {check}\n    reason: {reason}\n    expires: {expires}\n"
    return text + (f"    hosts: {hosts}\n" if hosts is not None else "")


# --- extends ---------------------------------------------------------------------------------


def test_extends_merges_depth_first_in_order(here: Path) -> None:
    write(here, {
        "deep.yaml": policy("deep", checks=["D-1"]),
        "base1.yaml": policy("base1", extends=["deep.yaml"], checks=["B1-1"]),
        "base2.yaml": policy("base2", checks=["B2-1", "B2-2"]),
        "child.yaml": policy("child", extends=["base2.yaml", "base1.yaml"], checks=["C-1"]),
    })
    result = run("child.yaml")
    assert found(result) == []
    assert ids(result) == ["B2-1", "B2-2", "D-1", "B1-1", "C-1"]
    assert [c.policy for c in result.checks] == ["base2", "base2", "deep", "base1", "child"]
    assert [str(c.location) for c in result.checks] == [
        "base2.yaml:5:5", "base2.yaml:12:5", "deep.yaml:5:5", "base1.yaml:6:5", "child.yaml:6:5",
    ]
    assert [f.display for f in result.files] == [
        "child.yaml", "base2.yaml", "base1.yaml", "deep.yaml",
    ]


def test_extends_paths_are_relative_to_the_naming_file(here: Path) -> None:
    write(here, {
        "site/child.yaml": policy("child", extends=["../base/base.yaml"]),
        "base/base.yaml": policy("base", extends=["common.yaml"], checks=["B-1"]),
        "base/common.yaml": policy("common", checks=["K-1"]),
    })
    result = run("site/child.yaml")
    assert found(result) == []
    assert ids(result) == ["K-1", "B-1"]
    assert str(result.checks[0].location) == "base/common.yaml:5:5"


def test_diamond_loads_the_shared_base_once(here: Path) -> None:
    # The base carries a warning: it must be reported once, however many routes reach it.
    write(here, {
        "base/base.yaml": policy("base", checks=["B-1", "B-2"],
                                 rest="waivers:\n" + waiver("B-1", expires="2028-01-01")),
        "left.yaml": policy("left", extends=["base/base.yaml"], checks=["L-1"]),
        "right.yaml": policy("right", extends=["base/base.yaml"], checks=["R-1"]),
        "top.yaml": policy("top", extends=["left.yaml", "right.yaml"], checks=["T-1"]),
    })
    result = run("top.yaml")
    assert found(result) == [
        "base/base.yaml:22:14: warning: waiver for 'B-1' runs until 2028-01-01, more than a "
        "year away [waiver-long]",
    ]
    assert ids(result) == ["B-1", "B-2", "L-1", "R-1", "T-1"]
    assert [f.display for f in result.files] == [
        "top.yaml", "left.yaml", "base/base.yaml", "right.yaml",
    ]
    assert len(result.waivers) == 1


def test_diamond_later_parent_override_wins(here: Path) -> None:
    write(here, {
        "base.yaml": policy("base", checks=["B-1"]),
        "left.yaml": policy("left", extends=["base.yaml"],
                            rest="overrides:\n  - id: B-1\n    severity: low\n"),
        "right.yaml": policy("right", extends=["base.yaml"],
                             rest="overrides:\n  - id: B-1\n    severity: medium\n"),
        "top.yaml": policy("top", extends=["left.yaml", "right.yaml"]),
    })
    result = run("top.yaml")
    assert found(result) == []
    [check] = result.checks
    assert check.severity is Severity.MEDIUM
    assert [str(loc) for loc in check.overridden_at] == ["right.yaml:6:5"]


def test_two_file_cycle_is_located_at_the_closing_entry(here: Path) -> None:
    write(here, {
        "a.yaml": policy("a", extends=["b.yaml"], checks=["A-1"]),
        "b.yaml": policy("b", extends=["a.yaml"], checks=["B-1"]),
    })
    expected = ["b.yaml:4:11: error: extends cycle: a.yaml -> b.yaml -> a.yaml [extends-cycle]"]
    assert found(run("a.yaml")) == expected
    assert found(run("a.yaml", "b.yaml")) == expected  # once, not once per root
    assert found(run("b.yaml")) == [
        "a.yaml:4:11: error: extends cycle: b.yaml -> a.yaml -> b.yaml [extends-cycle]",
    ]


def test_self_cycle(here: Path) -> None:
    write(here, {"a.yaml": policy("a", extends=["a.yaml"], checks=["A-1"])})
    result = run("a.yaml")
    assert found(result) == [
        "a.yaml:4:11: error: extends cycle: a.yaml -> a.yaml [extends-cycle]",
    ]
    assert ids(result) == ["A-1"]


def test_longer_cycle_names_the_whole_chain(here: Path) -> None:
    write(here, {
        "base.yaml": policy("base", checks=["K-1"]),
        "a.yaml": policy("a", extends=["base.yaml", "b.yaml"], checks=["A-1"]),
        "b.yaml": policy("b", extends=["c.yaml"], checks=["B-1"]),
        "c.yaml": policy("c", extends=["./a.yaml"], checks=["C-1"]),
    })
    result = run("a.yaml")
    assert found(result) == [
        "c.yaml:4:11: error: extends cycle: a.yaml -> b.yaml -> c.yaml -> a.yaml [extends-cycle]",
    ]
    assert ids(result) == ["K-1", "C-1", "B-1", "A-1"]


def test_missing_base_is_reported_at_the_entry_only(here: Path) -> None:
    write(here, {
        "common.yaml": policy("common", checks=["K-1"]),
        "child.yaml": policy("child", extends=["common.yaml", "nope.yaml"], checks=["C-1"]),
    })
    result = run("child.yaml")
    assert found(result) == [
        "child.yaml:4:24: error: cannot extend 'nope.yaml': cannot read file: No such file or "
        "directory [extends-missing]",
    ]
    assert ids(result) == ["K-1", "C-1"]


def test_impossible_extends_paths(here: Path) -> None:
    write(here, {"child.yaml": policy("child", extends=['"a\\0b.yaml"', "x" * 300])})
    assert found(run("child.yaml")) == [
        "child.yaml:4:11: error: cannot extend 'a\\x00b.yaml': a path cannot contain a NUL "
        "character [extends-missing]",
        f"child.yaml:4:24: error: cannot extend '{'x' * 56}...: cannot read file: File name too "
        "long [extends-missing]",
    ]


def test_unparsable_base_says_where_it_breaks(here: Path) -> None:
    write(here, {
        "broken.yaml": "apiVersion: hostguard/v1\nkind: Policy\nchecks: [\n",
        "child.yaml": policy("child", extends=["broken.yaml"]),
    })
    assert found(run("child.yaml")) == [
        "child.yaml:4:11: error: cannot extend 'broken.yaml': while parsing a flow node did not "
        "find expected node content (at broken.yaml:4:1) [extends-missing]",
    ]


def test_broken_base_does_not_cascade(here: Path) -> None:
    # The base is invalid, so its checks are unknown: overriding or waiving them is not an error
    # of its own, the one error is the base's.
    write(here, {
        "base.yaml": policy("base", checks=["B-1"]).replace("severity: high", "severity: hi"),
        "child.yaml": policy("child", extends=["base.yaml"],
                             rest="overrides:\n  - id: B-1\n    severity: low\n"
                                  "waivers:\n" + waiver("B-1")),
    })
    assert found(run("child.yaml")) == [
        "base.yaml:8:15: error: checks[0].severity must be one of critical, high, medium, low, "
        "info, not 'hi' (did you mean 'high'?) [schema]",
        "child.yaml:4:11: error: extended policy 'base.yaml' has errors [extends-invalid]",
    ]


# --- overrides -------------------------------------------------------------------------------

BASE3 = policy("base", checks=["B-1", "B-2", "B-3"])


def test_overrides_replace_fields_and_keep_the_kind(here: Path) -> None:
    write(here, {
        "base.yaml": BASE3,
        "child.yaml": policy("child", extends=["base.yaml"], checks=["C-1"], rest=(
            "overrides:\n"                                                # 13
            "  - id: B-1\n"                                               # 14
            "    severity: low\n"
            "    title: new title\n"
            "    references: [CIS 1]\n"
            "  - id: B-2\n"                                               # 18
            "    spec: {key: kernel.dmesg_restrict, op: eq, value: 1}\n"
        )),
    })
    result = run("child.yaml")
    assert found(result) == []
    b1, b2, b3, _ = result.checks
    assert (b1.severity, b1.title, b1.references) == (Severity.LOW, "new title", ("CIS 1",))
    assert b1.rationale == "why"
    assert [str(loc) for loc in b1.overridden_at] == ["child.yaml:14:5"]
    assert str(b1.location) == "base.yaml:5:5"  # where it is defined
    assert b2.kind == "sysctl"
    assert b2.raw_spec == {"key": "kernel.dmesg_restrict", "op": "eq", "value": 1}
    assert b2.spec.key == "kernel.dmesg_restrict"
    assert b2.severity is Severity.HIGH
    assert b3.overridden_at == ()


def test_override_spec_is_validated_against_the_inherited_kind(here: Path) -> None:
    write(here, {
        "base.yaml": BASE3,
        "child.yaml": policy("child", extends=["base.yaml"], rest=(
            "overrides:\n"                                      # 5
            "  - id: B-1\n"                                     # 6
            "    spec: {present: [nokaslr]}\n"                  # 7: a kernel_cmdline spec
            "  - id: B-2\n"
            "    spec: {key: kernel.x, op: ge, value: abc}\n"   # 9
            "  - id: B-3\n"
            "    severity: low\n"
            "    spec: {key: '', value: 1}\n"                   # 12
        )),
    })
    result = run("child.yaml")
    assert found(result) == [
        "child.yaml:7:11: error: missing required key 'key' in overrides[0].spec [schema]",
        "child.yaml:7:11: error: missing required key 'value' in overrides[0].spec [schema]",
        "child.yaml:7:12: error: unknown key 'present' [unknown-key]",
        "child.yaml:9:42: error: op 'ge' needs an integer value [spec]",
        "child.yaml:12:17: error: overrides[2].spec.key must not be empty [schema]",
    ]
    # An override with an invalid spec is not applied at all, not even its other fields.
    assert [c.severity for c in result.checks] == [Severity.HIGH] * 3
    assert all(c.overridden_at == () for c in result.checks)


def test_override_cannot_change_the_kind(here: Path) -> None:
    write(here, {
        "base.yaml": BASE3,
        "child.yaml": policy("child", extends=["base.yaml"],
                             rest="overrides:\n  - id: B-1\n    kind: sysfs\n"),
    })
    assert found(run("child.yaml")) == [
        "child.yaml:7:5: error: unknown key 'kind' [unknown-key]",
    ]


def test_override_of_unknown_or_own_check(here: Path) -> None:
    write(here, {
        "base.yaml": BASE3,
        "child.yaml": policy("child", extends=["base.yaml"], checks=["C-1"], rest=(
            "overrides:\n"           # 13
            "  - id: NOPE\n"         # 14
            "    title: x\n"
            "  - id: C-1\n"          # 16
            "    title: y\n"
        )),
    })
    result = run("child.yaml")
    assert found(result) == [
        "child.yaml:14:5: error: override of 'NOPE': no extended policy defines that check "
        "[override-unknown]",
        "child.yaml:16:5: error: override of 'C-1': no extended policy defines that check (it is "
        "defined here: edit it directly) [override-unknown]",
    ]
    assert result.checks[-1].title == "title of C-1"


def test_override_of_a_near_miss_id_suggests_the_inherited_one(here: Path) -> None:
    write(here, {
        "base.yaml": policy("base", checks=["KRN-001", "NET-001"]),
        "child.yaml": policy("child", extends=["base.yaml"],
                             rest="overrides:\n  - id: KRN-01\n    severity: low\n"),
    })
    assert found(run("child.yaml")) == [
        "child.yaml:6:5: error: override of 'KRN-01': no extended policy defines that check "
        "(did you mean 'KRN-001'?) [override-unknown]",
    ]


def test_override_without_extends(here: Path) -> None:
    write(here, {"a.yaml": policy("a", rest="overrides:\n  - id: X-1\n    severity: low\n")})
    assert found(run("a.yaml")) == [
        "a.yaml:5:5: error: override of 'X-1': no extended policy defines that check "
        "[override-unknown]",
    ]


# --- duplicate ids ---------------------------------------------------------------------------


def test_duplicate_id_within_a_file(here: Path) -> None:
    write(here, {"a.yaml": policy("a", checks=["A-1", "A-2", "A-1"])})
    result = run("a.yaml")
    assert found(result) == [
        "a.yaml:19:9: error: duplicate check id 'A-1' (first defined at line 5) [duplicate-id]",
    ]
    assert ids(result) == ["A-1", "A-2"]


def test_duplicate_id_across_unrelated_files(here: Path) -> None:
    write(here, {
        "a.yaml": policy("a", checks=["S-1"]),
        "b.yaml": policy("b", checks=["X-1", "S-1"]),
    })
    result = run("a.yaml", "b.yaml")
    assert found(result) == [
        "b.yaml:12:5: error: duplicate check id 'S-1': also defined at a.yaml:5:5 [duplicate-id]",
    ]
    assert ids(result) == ["S-1", "X-1"]
    assert str(result.checks[0].location) == "a.yaml:5:5"


def test_duplicate_id_across_two_parents(here: Path) -> None:
    write(here, {
        "b1.yaml": policy("b1", checks=["S-1"]),
        "b2.yaml": policy("b2", checks=["S-1"]),
        "child.yaml": policy("child", extends=["b1.yaml", "b2.yaml"]),
    })
    assert found(run("child.yaml")) == [
        "b2.yaml:5:5: error: duplicate check id 'S-1': also defined at b1.yaml:5:5 [duplicate-id]",
    ]


def test_child_cannot_redefine_an_inherited_check(here: Path) -> None:
    write(here, {
        "base.yaml": BASE3,
        "child.yaml": policy("child", extends=["base.yaml"], checks=["B-2"]),
    })
    assert found(run("child.yaml")) == [
        "child.yaml:6:5: error: check 'B-2' is already defined at base.yaml:12:5; change an "
        "inherited check under overrides [duplicate-id]",
    ]


def test_same_check_through_two_roots_is_not_a_duplicate(here: Path) -> None:
    write(here, {
        "base.yaml": policy("base", checks=["B-1"]),
        "r1.yaml": policy("r1", extends=["base.yaml"]),
        "r2.yaml": policy("r2", extends=["base.yaml"]),
    })
    result = run("r1.yaml", "r2.yaml", "base.yaml")
    assert found(result) == []
    assert ids(result) == ["B-1"]


# --- waivers ---------------------------------------------------------------------------------


def test_waiver_for_unknown_check(here: Path) -> None:
    write(here, {"a.yaml": policy("a", checks=["A-1"],
                                  rest="waivers:\n" + waiver("A-1") + waiver("ZZZ-9"))})
    result = run("a.yaml")
    assert found(result) == [
        "a.yaml:16:5: error: waiver for unknown check 'ZZZ-9' [waiver-unknown-check]",
    ]
    assert [w.check for w in result.waivers] == ["A-1"]


def test_child_waives_a_parent_check(here: Path) -> None:
    write(here, {
        "base.yaml": BASE3,
        "child.yaml": policy("child", extends=["base.yaml"],
                             rest="waivers:\n" + waiver("B-2", hosts='["stg-*"]')),
    })
    result = run("child.yaml")
    assert found(result) == []
    [w] = result.waivers
    assert (w.check, w.hosts, str(w.location)) == ("B-2", ("stg-*",), "child.yaml:6:5")
    assert w.applies("stg-1", TODAY)
    assert not w.applies("prd-1", TODAY)


def test_parent_cannot_waive_a_child_check(here: Path) -> None:
    write(here, {
        "base.yaml": policy("base", checks=["B-1"], rest="waivers:\n" + waiver("C-1")),
        "child.yaml": policy("child", extends=["base.yaml"], checks=["C-1"]),
    })
    assert found(run("child.yaml")) == [
        "base.yaml:13:5: error: waiver for unknown check 'C-1' [waiver-unknown-check]",
    ]


@pytest.mark.parametrize(("expires", "expected"), [
    ("2026-11-23", "a.yaml:15:14: error: waiver for 'A-1' expired on 2026-11-23 "
                   "[waiver-expired]"),
    ("2020-01-01", "a.yaml:15:14: error: waiver for 'A-1' expired on 2020-01-01 "
                   "[waiver-expired]"),
    ("2026-11-24", None),  # last valid day is today
    ("2027-11-24", None),  # exactly a year
    ("2027-11-25", "a.yaml:15:14: warning: waiver for 'A-1' runs until 2027-11-25, more than a "
                   "year away [waiver-long]"),
    ("2099-01-01", "a.yaml:15:14: warning: waiver for 'A-1' runs until 2099-01-01, more than a "
                   "year away [waiver-long]"),
    ("2026-02-30", "a.yaml:15:14: error: '2026-02-30' is not a valid date [schema]"),
])
def test_waiver_expiry(here: Path, expires: str, expected: str | None) -> None:
    write(here, {"a.yaml": policy("a", checks=["A-1"], rest="waivers:\n" + waiver("A-1", expires))})
    result = run("a.yaml")
    assert found(result) == ([expected] if expected else [])
    assert result.ok is (expected is None or "warning" in expected)


def test_waiver_horizon_across_29_february(here: Path) -> None:
    write(here, {"a.yaml": policy("a", checks=["A-1"], rest="waivers:\n"
                                  + waiver("A-1", "2029-02-28") + waiver("A-1", "2029-03-01"))})
    assert found(run("a.yaml", today=dt.date(2028, 2, 29))) == [
        "a.yaml:18:14: warning: waiver for 'A-1' runs until 2029-03-01, more than a year away "
        "[waiver-long]",
    ]


@pytest.mark.parametrize(("day", "expected"), [
    (dt.date(2026, 11, 24), dt.date(2027, 11, 24)),
    (dt.date(2028, 2, 29), dt.date(2029, 2, 28)),
    (dt.date(2027, 2, 28), dt.date(2028, 2, 28)),
    (dt.date(9999, 6, 1), dt.date.max),
])
def test_one_year_after(day: dt.date, expected: dt.date) -> None:
    assert one_year_after(day) == expected


@pytest.mark.parametrize("reason", ['""', '"   "', "''"])
def test_waiver_with_empty_reason(here: Path, reason: str) -> None:
    write(here, {"a.yaml": policy("a", checks=["A-1"],
                                  rest="waivers:\n" + waiver("A-1", reason=reason))})
    assert found(run("a.yaml")) == [
        "a.yaml:14:13: error: waiver has an empty reason [waiver-reason]",
    ]


def test_waiver_without_reason(here: Path) -> None:
    write(here, {"a.yaml": policy("a", checks=["A-1"],
                                  rest="waivers:\n  - check: A-1\n    expires: 2027-01-01\n")})
    assert found(run("a.yaml")) == [
        "a.yaml:13:5: error: missing required key 'reason' in waivers[0] [schema]",
    ]


# --- hosts -----------------------------------------------------------------------------------


def test_host_selectors_of_the_defining_and_root_policies(here: Path) -> None:
    write(here, {
        "base.yaml": policy("base", checks=["B-1"], hosts='{hostnames: ["trd-*"]}'),
        "gw.yaml": policy("gw", extends=["base.yaml"], checks=["G-1"],
                          hosts="{labels: {role: gateway}}"),
        "md.yaml": policy("md", extends=["base.yaml"], hosts='{hostnames: ["md-*"]}'),
    })
    result = run("gw.yaml", "md.yaml")
    assert found(result) == []
    base_sel = HostSelector(("trd-*",))
    gw_sel = HostSelector((), {"role": "gateway"})
    md_sel = HostSelector(("md-*",))
    b1, g1 = result.checks
    assert (b1.id, b1.hosts, b1.roots) == ("B-1", base_sel, (gw_sel, md_sel))
    assert (g1.id, g1.hosts, g1.roots) == ("G-1", gw_sel, (gw_sel,))


def test_policy_without_hosts_matches_every_host(here: Path) -> None:
    write(here, {"a.yaml": policy("a", checks=["A-1"])})
    [check] = run("a.yaml").checks
    assert check.hosts == HostSelector()
    assert check.hosts.matches("anything", {})
    assert check.roots == (HostSelector(),)


def test_invalid_hostname_globs(here: Path) -> None:
    write(here, {"a.yaml": policy(
        "a", checks=["A-1"], hosts='{hostnames: ["trd-[0-9", "a b", "ok-*", "x]"]}',
        rest="waivers:\n" + waiver("A-1", hosts='["stg-*", "[]"]'),
    )})
    assert found(run("a.yaml")) == [
        "a.yaml:12:21: error: invalid hostname glob 'trd-[0-9': '[' at position 5 is never "
        "closed [invalid-glob]",
        "a.yaml:12:33: error: invalid hostname glob 'a b': hostname pattern 'a b' has characters "
        "no hostname contains [invalid-glob]",
        "a.yaml:12:48: error: invalid hostname glob 'x]': ']' at position 2 closes no '[' "
        "[invalid-glob]",
        "a.yaml:17:22: error: invalid hostname glob '[]': '[' at position 1 is never closed "
        "[invalid-glob]",
    ]


def test_empty_hostname_list_is_a_schema_error(here: Path) -> None:
    write(here, {"a.yaml": policy("a", checks=["A-1"], hosts="{hostnames: []}")})
    assert found(run("a.yaml")) == [
        "a.yaml:12:20: error: hosts.hostnames must not be empty [schema]",
    ]


# --- messages --------------------------------------------------------------------------------


def test_user_keys_in_messages_are_quoted_on_one_line(here: Path) -> None:
    long_key = "k" * 500
    write(here, {"a.yaml": policy("a", hosts='{labels: {"a\\nb": 5, app.tier: 6}}',
                                  rest=f"{long_key}: 1\n")})
    assert found(run("a.yaml")) == [
        "a.yaml:4:26: error: hosts.labels['a\\nb'] must be a string, not integer 5 [schema]",
        "a.yaml:4:39: error: hosts.labels['app.tier'] must be a string, not integer 6 [schema]",
        f"a.yaml:5:1: error: unknown key '{'k' * 56}... [unknown-key]",
    ]
