"""quickcheck.accepts says yes only where jsonschema says valid, on the real schemas (policy,
each kind's spec, result): their verdicts and messages stay exactly jsonschema's, and valid
policies and reports load without importing jsonschema."""

from __future__ import annotations

import copy
import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from agent.checks import KINDS
from agent.core.quickcheck import accepts
from agent.core.yamlload import Document, load_file
from agent.policy.schema import shipped
from agent.report import load as load_result
from agent.report.load import schema as result_schema
from tests.lint.test_fuzz import ANY, POLICY, WRONG, _paths, mutated_policies
from tests.report.conftest import NAMES, fixture_data
from tests.support import PROJECT

SCHEMA = shipped()
VALIDATOR = Draft202012Validator(SCHEMA)
RESULT_SCHEMA = result_schema()
RESULT_VALIDATOR = Draft202012Validator(RESULT_SCHEMA)
SHIPPED = [doc.data for path in sorted((PROJECT / "policies").glob("*.yaml"))
           if isinstance(doc := load_file(path, path.name), Document)]
SPECS = [(check["kind"], check["spec"]) for data in SHIPPED for check in data.get("checks", [])]
"""Every check spec of the shipped policies, with its kind."""
REPORT_WORDS: st.SearchStrategy[Any] = st.sampled_from(
    ["pass", "fail", "error", "waived", "not_applicable", "critical", "info",
     "hostguard/result/v1", "", -1, 0, 1.5, None, [], {}])


def valid(schema: Any, instance: Any) -> bool:
    return not any(Draft202012Validator(schema).iter_errors(instance))


@pytest.mark.parametrize("path", sorted((PROJECT / "policies").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_policies_are_accepted_as_jsonschema_accepts_them(path: Path) -> None:
    doc = load_file(path, path.name)
    assert isinstance(doc, Document)
    assert accepts(SCHEMA, doc.data) is True
    assert not list(VALIDATOR.iter_errors(doc.data))


@pytest.mark.parametrize("path", sorted((PROJECT / "tests" / "lint" / "golden").glob("*.y*ml")),
                         ids=lambda p: p.name)
def test_golden_lint_inputs_never_accepted_against_jsonschema(path: Path) -> None:
    doc = load_file(path, path.name)
    if isinstance(doc, Document) and accepts(SCHEMA, doc.data):
        assert not list(VALIDATOR.iter_errors(doc.data))


@given(doc=mutated_policies())
def test_never_accepts_what_jsonschema_refuses(doc: Any) -> None:
    if accepts(SCHEMA, doc):
        assert not list(VALIDATOR.iter_errors(doc)), doc


@st.composite
def mutated(draw: st.DrawFn, documents: list[Any], values: st.SearchStrategy[Any]) -> Any:
    """One of ``documents``, copied, then a few random edits: a value replaced (by a wrong one
    or another value of the same document), a key deleted, a key added."""
    doc = copy.deepcopy(draw(st.sampled_from(documents)))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            continue
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "borrow", "delete", "add-key"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "borrow":  # a value valid somewhere else, often the wrong shape here
            source: Any = doc
            for part in draw(st.sampled_from(paths)):
                source = source[part]
            parent[path[-1]] = copy.deepcopy(source)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.sampled_from(["id", "x", "status", "spec"]))] = draw(values)
    return doc


def test_shipped_result_fixtures_are_accepted_as_jsonschema_accepts_them() -> None:
    for name in NAMES:
        assert accepts(RESULT_SCHEMA, fixture_data(name)) is True
        assert RESULT_VALIDATOR.is_valid(fixture_data(name))


@pytest.mark.parametrize("name", NAMES)
def test_each_status_with_and_without_a_waiver_judged_as_jsonschema_judges_it(name: str) -> None:
    # The result schema's if/then/else (a waiver object exactly when waived) and its oneOfs.
    data = fixture_data(name)
    waiver_objects = [r["waiver"] for r in data["results"] if r["waiver"]]
    assert waiver_objects, name
    waivers = [waiver_objects[0], None, {}]
    for status in ("pass", "fail", "error", "waived", "not_applicable", "bogus"):
        for waiver in waivers:
            for waived_status in ("fail", "error", "pass", None):
                doc = copy.deepcopy(data)
                entry = doc["results"][0]
                entry["status"], entry["waiver"] = status, copy.deepcopy(waiver)
                if entry["waiver"]:
                    entry["waiver"]["status"] = waived_status
                expected = RESULT_VALIDATOR.is_valid(doc)
                assert accepts(RESULT_SCHEMA, doc) == expected, (status, waiver, waived_status)


@given(doc=mutated([fixture_data(name) for name in NAMES], WRONG | REPORT_WORDS))
def test_never_accepts_a_report_jsonschema_refuses(doc: Any) -> None:
    if accepts(RESULT_SCHEMA, doc):
        assert RESULT_VALIDATOR.is_valid(doc), doc


@given(doc=mutated([fixture_data(name) for name in NAMES], WRONG | REPORT_WORDS))
def test_loading_vouches_for_a_report_as_the_whole_schema_does(doc: Any) -> None:
    # load.py judges each result's check definition once and the rest of the document against
    # the schema without them: the same verdict as the whole schema, with the definitions of
    # the unedited fixtures already judged (as in a fleet, where most are).
    for name in NAMES:
        assert load_result._vouched(fixture_data(name)) is not None
    assert (load_result._vouched(doc) is not None) == accepts(RESULT_SCHEMA, doc), doc


@given(doc=mutated(SHIPPED, WRONG))
def test_never_accepts_a_shipped_policy_edited_so_jsonschema_refuses_it(doc: Any) -> None:
    if accepts(SCHEMA, doc):
        assert VALIDATOR.is_valid(doc), doc


@given(pair=st.sampled_from(SPECS), data=st.data())
def test_never_accepts_a_spec_jsonschema_refuses(pair: tuple[str, Any],
                                                 data: st.DataObject) -> None:
    kind, spec = pair
    doc = data.draw(mutated([spec], WRONG))
    schema = dict(KINDS[kind].spec_schema)
    if accepts(schema, doc):
        assert valid(schema, doc), (kind, doc)


@given(doc=ANY, which=st.sampled_from(["policy", "result", *sorted(KINDS)]))
def test_never_accepts_arbitrary_data_jsonschema_refuses(doc: Any, which: str) -> None:
    schemas = {"policy": SCHEMA, "result": RESULT_SCHEMA}
    schema = schemas[which] if which in schemas else dict(KINDS[which].spec_schema)
    if accepts(schema, doc):
        assert valid(schema, doc), (which, doc)


@given(doc=POLICY)
def test_generated_policies_agree(doc: Any) -> None:
    # Schema-valid by construction (but for a few values the schema refuses): both agree, so
    # the quick path is the one taken for valid documents.
    assert accepts(SCHEMA, doc) == (not list(VALIDATOR.iter_errors(doc)))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_spec_schema_judged_alike_on_samples(kind: str) -> None:
    schema = dict(KINDS[kind].spec_schema)
    samples: list[object] = [{}, {"x": 1}, [], "x", None, {"name": "a", "required": True},
                             {"key": "kernel.x", "value": 1}, {"forbid": [23]}, {"unit": "x"},
                             {"allow": [{"port": "22"}]}, {"allow": [{"port": True}]}]
    for sample in samples:
        if accepts(schema, sample):
            assert valid(schema, sample), (kind, sample)


ANY_OF_INT = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+$"}]}


@pytest.mark.parametrize(("schema", "instance", "expected"), [
    ({"type": "integer"}, 3, True),
    ({"type": "integer"}, True, False),  # bool is no integer
    ({"type": "integer"}, 3.0, False),  # an integer to jsonschema, left to it here
    ({"type": "number"}, 2.5, True),
    ({"type": ["string", "integer"]}, "a", True),
    ({"type": "object"}, [], False),
    ({"enum": ["a", "b"]}, "b", True),
    ({"enum": [1, 2]}, True, False),  # jsonschema: True is not 1
    ({"enum": [True]}, 1, False),
    ({"enum": ["1"]}, 1, False),
    ({"const": "hostguard/v1"}, "hostguard/v1", True),
    ({"const": 0}, False, False),
    ({"pattern": "^[a-z]+$"}, "abc", True),
    ({"pattern": "^[a-z]+$"}, "abc\n", True),  # re.search: "$" matches before a last "\n"
    ({"pattern": "^[a-z]+$"}, "ab1", False),
    ({"pattern": "^[a-z]+$"}, 5, True),  # applies to strings only
    ({"minLength": 1}, "", False),
    ({"minItems": 1}, [], False),
    ({"minProperties": 1}, {}, False),
    ({"uniqueItems": True}, ["a", "b"], True),
    ({"uniqueItems": True}, ["a", "a"], False),
    ({"uniqueItems": True}, [1, True], False),  # unique to jsonschema: left to it
    ({"minimum": 0, "maximum": 99}, 99, True),
    ({"minimum": 0}, -1, False),
    ({"minimum": 0}, True, True),  # not a number: minimum does not apply
    ({"required": ["a"], "properties": {"a": {"type": "string"}}}, {"a": "x"}, True),
    ({"required": ["a"]}, {"b": 1}, False),
    ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}, False),
    ({"additionalProperties": {"type": "string"}}, {"a": "x"}, True),
    ({"additionalProperties": {"type": "string"}}, {"a": 1}, False),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"ab": 1}, True),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"A": 1}, False),
    ({"items": {"type": "string"}}, ["a", "b"], True),
    ({"items": {"type": "string"}}, ["a", 2], False),
    (ANY_OF_INT, "22", True),
    (ANY_OF_INT, 22, True),
    (ANY_OF_INT, "x", False),
    ({"allOf": [{"if": {"properties": {"k": {"const": "a"}}, "required": ["k"]},
                 "then": {"required": ["a"]}}]}, {"k": "a"}, False),
    ({"allOf": [{"if": {"properties": {"k": {"const": "a"}}, "required": ["k"]},
                 "then": {"required": ["a"]}}]}, {"k": "b"}, True),
    ({"$defs": {"s": {"type": "string"}}, "items": {"$ref": "#/$defs/s"}}, ["a"], True),
    ({"$defs": {"s": {"type": "string"}}, "items": {"$ref": "#/$defs/s"}}, [1], False),
    ({"$ref": "other.json"}, 1, False),  # not a local reference: left to jsonschema
    ({"format": "date", "type": "string"}, "2026-02-30", True),  # format asserts nothing
    ({"not": {"type": "string"}}, 1, False),  # a keyword it does not know: left to jsonschema
    ({"oneOf": [{"type": "string"}, {"type": "null"}]}, "a", True),
    ({"oneOf": [{"type": "string"}, {"minLength": 1}]}, "a", False),  # both: not one of
    ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, 1.0, False),  # unsure: left to it
    ({"oneOf": [{"type": "string"}]}, 1, False),
    ({"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"minimum": 1}}, "ab", True),
    ({"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"minimum": 1}}, "a", False),
    ({"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"minimum": 1}}, 1, True),
    ({"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"minimum": 1}}, 0, False),
    ({"if": {"type": "integer"}, "else": {"minLength": 1}}, 1.0, False),  # unsure if: left
    ({"else": {"minLength": 1}}, 1, False),  # else without if: left to jsonschema
    (True, "anything", True),
    (False, "anything", False),
])
def test_keywords(schema: Any, instance: Any, expected: bool) -> None:
    assert accepts(schema, instance) is expected
    if expected:
        assert valid(schema, instance)


def test_an_invalid_policy_still_gets_jsonschemas_located_errors(tmp_path: Path) -> None:
    from agent.policy.loader import parse_policy  # noqa: PLC0415

    path = tmp_path / "p.yaml"
    path.write_text("apiVersion: hostguard/v1\nkind: Policy\nmetadata: {name: p}\n"
                    "checks:\n  - id: A-1\n    kind: sysctl\n    title: t\n    severity: severe\n"
                    "    rationale: r\n    remediation: m\n    spec: {key: k, value: 1}\n")
    doc = load_file(path, "p.yaml")
    assert isinstance(doc, Document)
    policy, diagnostics = parse_policy(doc, dt.date(2026, 6, 1))
    assert policy is None
    assert [str(d) for d in diagnostics] == [
        "p.yaml:8:15: error: checks[0].severity must be one of critical, high, medium, low, "
        "info, not 'severe' [schema]"]


def test_a_valid_policy_loads_without_importing_jsonschema() -> None:
    code = ("import sys, datetime\n"
            "from pathlib import Path\n"
            "from agent.policy.resolve import resolve\n"
            "found = resolve([Path('policies/trading-baseline.yaml')], datetime.date(2026, 6, 1))\n"
            "assert found.checks and not found.diagnostics, found.diagnostics\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'jsonschema'))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True,
                          text=True, timeout=60, check=False, env={"PYTHONPATH": str(PROJECT)})
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "[]\n")
