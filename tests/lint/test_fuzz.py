"""Property tests: whatever the input, loading and linting never raise, and every diagnostic is
located (line and column >= 1) and names a known rule.

Example counts come from the hypothesis profiles in ``tests/conftest.py`` (1000 in CI). Files go
to one folder made once per module and overwritten per example, so an example costs a
millisecond or two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from agent.checks import KINDS
from agent.checks.compare import OPS
from agent.core.diagnostic import RULES, Diagnostic, Level
from agent.core.yamlload import MAX_DEPTH, Document, LoadError, load_bytes
from agent.lint.engine import lint_paths
from agent.policy.loader import parse_policy
from tests.policy.builders import policy

TODAY = dt.date(2026, 11, 24)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a valid base policy beside the file each example writes (p.yaml)."""
    path = tmp_path_factory.mktemp("fuzz")
    (path / "base.yaml").write_text(policy("base", checks=["BASE-001", "BASE-002"]))
    return path


def assert_located(diagnostics: Iterable[Diagnostic]) -> None:
    for diag in diagnostics:
        assert diag.location.line >= 1, diag
        assert diag.location.col >= 1, diag
        assert diag.rule in RULES, diag
        assert isinstance(diag.level, Level), diag
        assert diag.message, diag
        assert "\n" not in diag.message and "\r" not in diag.message, diag  # one line each


def check_text(raw: bytes, folder: Path) -> None:
    """Load, parse and lint ``raw``; every outcome must be a located diagnostic."""
    loaded = load_bytes(raw, "p.yaml")
    if isinstance(loaded, LoadError):
        assert loaded.rule in RULES
        assert loaded.location.line >= 1
        assert loaded.location.col >= 1
    else:
        _, diagnostics = parse_policy(loaded, TODAY)
        assert_located(diagnostics)
    (folder / "p.yaml").write_bytes(raw)
    report = lint_paths([str(folder)], TODAY)
    assert_located(report.diagnostics)
    assert report.usage_errors == ()
    lines = raw.count(b"\n") + raw.count(b"\r") + 2
    for diag in report.diagnostics:
        if diag.location.path.endswith("p.yaml"):
            assert diag.location.line <= lines, diag


# --- strategies ------------------------------------------------------------------------------
# Documents are built schema-valid (so they reach the semantic and cross-file checks: ops and
# values, regexes, globs, dates, extends, overrides, waivers), then mutated_policies() breaks
# some of them with random edits.

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
    st.text(max_size=12), st.dates(),
)
ANY = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=3),
    max_leaves=8,
)
TEXT = st.text(min_size=1, max_size=20)
IDS = st.from_regex(r"[A-Z]{2,4}-[0-9]{1,3}", fullmatch=True) | st.sampled_from(
    ["BASE-001", "BASE-002", "KRN-001", "x" * 64])
SEVERITIES = st.sampled_from(["critical", "high", "medium", "low", "info"])
OP = st.sampled_from(OPS)
SCALAR_VALUE = st.one_of(
    st.integers(), st.text(max_size=10),
    st.sampled_from(["abc", "([", "(?P<x", "a{1,", "[0-9]+", "off", "1", " 2 ", "0x1f"]),
)
VALUE = SCALAR_VALUE | st.lists(SCALAR_VALUE, min_size=1, max_size=3)
PATHS = st.sampled_from([
    "kernel.kptr_restrict", "net.ipv4.conf.*.rp_filter", "net/ipv4/conf/eth0.100/rp_filter",
    "kernel/mm/transparent_hugepage/enabled", "/abs", "a..b", "x[1", "x]", "a b", "*", "..",
    "block/*/queue/scheduler", "a//b",
]) | TEXT
MISSING = st.sampled_from(["error", "not_applicable", "fail"])
SYSCTL = st.fixed_dictionaries(
    {"key": PATHS, "value": VALUE}, optional={"op": OP, "missing": MISSING})
SYSFS = st.fixed_dictionaries(
    {"path": PATHS, "value": VALUE}, optional={"op": OP, "missing": MISSING})
PARAM = st.sampled_from(["nokaslr", "mitigations", "nohz_full", "rcu_nocbs", "a.b", "x-y"])
CMDLINE = st.fixed_dictionaries({}, optional={
    "present": st.lists(PARAM, min_size=1, max_size=3),
    "absent": st.lists(PARAM | st.sampled_from(["mitigations=off", "a="]), min_size=1,
                       max_size=3),
    "values": st.dictionaries(PARAM, st.fixed_dictionaries({"value": VALUE}, optional={"op": OP}),
                              min_size=1, max_size=2),
}).filter(bool)
KIND_SPECS = st.one_of(
    st.tuples(st.just("sysctl"), SYSCTL),
    st.tuples(st.just("sysfs"), SYSFS),
    st.tuples(st.just("kernel_cmdline"), CMDLINE),
)


@st.composite
def checks(draw: st.DrawFn) -> dict[str, Any]:
    kind, spec = draw(KIND_SPECS)
    check: dict[str, Any] = {
        "id": draw(IDS), "kind": kind, "title": draw(TEXT), "severity": draw(SEVERITIES),
        "rationale": draw(TEXT), "remediation": draw(TEXT), "spec": spec,
    }
    if draw(st.booleans()):
        check["references"] = draw(st.lists(TEXT, max_size=2))
    return check


DATES = st.dates(dt.date(2000, 1, 1), dt.date(2100, 1, 1)) | st.sampled_from([
    TODAY, TODAY + dt.timedelta(days=365), TODAY + dt.timedelta(days=366),
    TODAY - dt.timedelta(days=1), "2026-02-30", "2026-13-01",
])
GLOBS = st.lists(st.sampled_from(["trd-*", "md-[0-9", "x]", "a b", "[!a]*", "ok", "[]]"]) | TEXT,
                 min_size=1, max_size=3)
WAIVER = st.fixed_dictionaries(
    {"check": IDS, "reason": st.sampled_from(["", "  ", "CHG-1"]) | TEXT, "expires": DATES},
    optional={"hosts": GLOBS},
)
OVERRIDE = st.fixed_dictionaries(
    {"id": IDS},
    optional={"severity": SEVERITIES, "title": TEXT, "spec": SYSCTL | SYSFS | CMDLINE,
              "references": st.lists(TEXT, max_size=2)},
).filter(lambda o: len(o) > 1)
EXTENDS = st.lists(st.sampled_from(["base.yaml", "p.yaml", "nope.yaml", "sub/../base.yaml",
                                    "missing/deep.yaml", "./base.yaml", "x\0y.yaml", "x" * 300])
                   | st.text(min_size=1, max_size=10), max_size=3)
POLICY = st.fixed_dictionaries(
    {"apiVersion": st.just("hostguard/v1"),
     "kind": st.just("Policy"),
     "metadata": st.fixed_dictionaries(
         {"name": st.from_regex(r"[a-z0-9][a-z0-9._-]{0,10}", fullmatch=True)},
         optional={"description": st.text(max_size=20), "version": st.text(max_size=5)})},
    optional={
        "extends": EXTENDS,
        "hosts": st.fixed_dictionaries({}, optional={
            "hostnames": GLOBS, "labels": st.dictionaries(TEXT, TEXT, max_size=2)}),
        "checks": st.lists(checks(), max_size=3),
        "overrides": st.lists(OVERRIDE, max_size=2),
        "waivers": st.lists(WAIVER, max_size=2),
    },
)
WRONG = ANY | st.sampled_from(
    ["Other", "hostguard/v2", "", "sysctrl", "severe", "Bad Name", *KINDS])


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


@st.composite
def mutated_policies(draw: st.DrawFn) -> Any:
    """A policy-shaped document, then a few random edits: new keys, deleted keys, new types."""
    doc = draw(POLICY)
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "add-key", "delete"]))
        if not path:
            continue
        if action == "replace":
            parent[path[-1]] = draw(WRONG)
        elif action == "delete":
            del parent[path[-1]]
        else:
            target = parent[path[-1]]
            if isinstance(target, dict):
                target[draw(st.sampled_from(["tittle", "kind", "id", "spec", "x"]) | TEXT)] = (
                    draw(WRONG))
    return doc


def dump(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


def _depth(node: Any) -> int:
    if isinstance(node, dict):
        return 1 + max(map(_depth, node.values()), default=0)
    if isinstance(node, list):
        return 1 + max(map(_depth, node), default=0)
    return 0


# --- (a) generated YAML texts ----------------------------------------------------------------


@given(data=ANY)
def test_json_like_data(folder: Path, data: Any) -> None:
    check_text(dump(data), folder)


@given(data=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ -"),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(alphabet="abcxyz_", min_size=1), inner, max_size=4),
    max_leaves=20,
))
def test_safe_dump_round_trips(data: Any) -> None:
    # Letters-only strings mean the same in YAML 1.1 (the dumper) and 1.2 (the loader).
    assume(_depth(data) <= MAX_DEPTH)
    loaded = load_bytes(dump(data), "p.yaml")
    assert isinstance(loaded, Document), loaded
    assert loaded.data == data


@given(doc=mutated_policies())
def test_mutated_policies(folder: Path, doc: Any) -> None:
    check_text(dump(doc), folder)


VALID = policy("valid", extends=["base.yaml"], checks=["KRN-001", "KRN-002"], hosts=(
    '{hostnames: ["trd-*"], labels: {role: gw}}'), rest=(
    "overrides:\n  - id: BASE-001\n    severity: low\n"
    "    spec: {key: kernel.dmesg_restrict, value: 1}\n"
    "waivers:\n  - check: KRN-002\n    reason: CHG-1\n    expires: 2027-03-31\n"
    "    hosts: [stg-*]\n"
)).encode()


@given(edits=st.lists(
    st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.integers(0, len(VALID)),
              st.binary(min_size=1, max_size=3)),
    min_size=1, max_size=4,
))
def test_byte_edits_of_a_valid_policy(folder: Path, edits: list[tuple[str, int, bytes]]) -> None:
    raw = bytearray(VALID)
    for action, offset, data in edits:
        where = min(offset, len(raw))
        if action == "insert":
            raw[where:where] = data
        elif action == "delete":
            del raw[where:where + len(data)]
        else:
            raw[where:where + len(data)] = data
    check_text(bytes(raw), folder)


def test_the_valid_policy_is_valid(folder: Path) -> None:
    (folder / "p.yaml").write_bytes(VALID)
    assert lint_paths([str(folder)], TODAY).diagnostics == ()


# --- (b) arbitrary bytes ---------------------------------------------------------------------


@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes(raw: bytes) -> None:
    loaded = load_bytes(raw, "p.yaml")
    if isinstance(loaded, LoadError):
        assert loaded.rule in RULES
        assert loaded.location.line >= 1
        assert loaded.location.col >= 1
    else:
        assert all(loc.line >= 1 and loc.col >= 1 for loc in loaded.positions.values())


@given(raw=st.text(alphabet="{}[]:-?&*!|>'\"#%@`, \t\n\rab01.~<", max_size=80))
def test_yaml_punctuation_soup(raw: str) -> None:
    loaded = load_bytes(raw.encode(), "p.yaml")
    if isinstance(loaded, LoadError):
        assert loaded.rule in RULES
        assert loaded.location.line >= 1
        assert loaded.location.col >= 1
    else:
        _, diagnostics = parse_policy(loaded, TODAY)
        assert_located(diagnostics)
