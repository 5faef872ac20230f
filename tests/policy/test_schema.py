"""The published JSON Schema: fresh, valid, complete, and satisfied by the shipped policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from agent.checks import KINDS
from agent.core.yamlload import Document, load_bytes, load_file
from agent.policy import schema
from tests.support import PROJECT

SCHEMA_FILE = PROJECT / "agent" / "policy" / "schema.json"
SHIPPED_POLICIES = sorted((PROJECT / "policies").glob("*.yaml"))


def shipped() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


def validator() -> Draft202012Validator:
    return Draft202012Validator(shipped())


def test_shipped_schema_is_fresh() -> None:
    # If this fails: python -m agent.policy.schema --write (make schema), and commit the file.
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema.render()


def test_check_command_agrees() -> None:
    assert schema.main(["--check"]) == 0


def test_package_reads_the_same_file() -> None:
    assert schema.shipped() == shipped()


def test_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(shipped())
    assert shipped()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_registered_kind_has_a_spec_definition() -> None:
    defs = shipped()["$defs"]
    assert sorted(KINDS) == sorted(name.removeprefix("spec.") for name in defs
                                   if name.startswith("spec."))
    for name, kind in KINDS.items():
        assert defs[f"spec.{name}"] == json.loads(json.dumps(dict(kind.spec_schema)))
    assert shipped()["$defs"]["check"]["properties"]["kind"]["enum"] == sorted(KINDS)


def test_there_are_shipped_policies() -> None:
    assert SHIPPED_POLICIES, "policies/ holds no *.yaml"


@pytest.mark.parametrize("path", SHIPPED_POLICIES, ids=lambda p: p.name)
def test_shipped_policy_validates(path: Path) -> None:
    doc = load_file(path)
    assert isinstance(doc, Document), doc
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator().iter_errors(doc.data)]
    assert errors == []


MINIMAL = """\
apiVersion: hostguard/v1
kind: Policy
metadata: {name: minimal}
checks:
  - id: KRN-001
    kind: sysctl
    title: t
    severity: high
    rationale: r
    remediation: m
    spec: {key: kernel.kptr_restrict, op: ge, value: 1}
"""


def data_of(text: str) -> Any:
    doc = load_bytes(text.encode(), "inline.yaml")
    assert isinstance(doc, Document), doc
    return doc.data


def test_minimal_policy_validates() -> None:
    assert list(validator().iter_errors(data_of(MINIMAL))) == []


@pytest.mark.parametrize(("old", "new"), [
    ("metadata: {name: minimal}", "metadata: {name: Minimal}"),  # name pattern
    ("metadata: {name: minimal}", "metadata: {name: minimal, owner: me}"),  # unknown key
    ("kind: Policy", "kind: Other"),
    ("    kind: sysctl", "    kind: sysctll"),
    ("    severity: high", "    severity: severe"),
    ("op: ge, value: 1}", "op: ge, value: 1, path: x}"),  # a sysfs field on a sysctl spec
    ("{key: kernel.kptr_restrict, op: ge, value: 1}", "{present: [nokaslr]}"),
    ("    title: t\n", ""),
])
def test_schema_rejects(old: str, new: str) -> None:
    assert old in MINIMAL
    assert list(validator().iter_errors(data_of(MINIMAL.replace(old, new)))) != []
