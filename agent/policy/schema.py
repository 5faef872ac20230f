"""The published JSON Schema of the policy format, generated from the check-kind registry.

``python -m agent.policy.schema --write`` regenerates ``agent/policy/schema.json``;
``--check`` exits 1 when the shipped file is stale (the tests run the same comparison).
"""

from __future__ import annotations

import json
import sys
from functools import cache
from typing import Any

from agent.checks import KINDS
from agent.core import schemafile

SCHEMA_ID = "https://hostguard.invalid/schema/policy-v1.json"
_ID = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
_TEXT = {"type": "string", "minLength": 1}


def build() -> dict[str, Any]:
    """The policy schema for the kinds registered now."""
    check_fields: dict[str, Any] = {
        "id": {"type": "string", "pattern": _ID, "description": "Unique across all policies."},
        "kind": {"enum": sorted(KINDS), "description": "Registered check kind."},
        "title": {**_TEXT, "description": "One line."},
        "severity": {"$ref": "#/$defs/severity"},
        "rationale": {**_TEXT, "description": "Why the check exists."},
        "remediation": {**_TEXT, "description": "How to fix a failure."},
        "references": {"type": "array", "items": _TEXT, "description": "Benchmarks, docs."},
        "spec": {"type": "object", "description": "Kind-specific expectations."},
    }
    per_kind = [
        {
            "if": {"properties": {"kind": {"const": name}}, "required": ["kind"]},
            "then": {"properties": {"spec": {"$ref": f"#/$defs/spec.{name}"}}},
        }
        for name in sorted(KINDS)
    ]
    override_fields = {k: v for k, v in check_fields.items() if k != "kind"}
    properties: dict[str, Any] = {
        "metadata": schemafile.METADATA,
        "extends": {
            "type": "array",
            "items": _TEXT,
            "description": "Policy files this one builds on, relative to this file.",
        },
        "hosts": {
            "type": "object",
            "additionalProperties": False,
            "description": "When this policy applies; every criterion given must match.",
            "properties": {
                "hostnames": {"type": "array", "items": _TEXT, "minItems": 1},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "checks": {"type": "array", "items": {"$ref": "#/$defs/check"}},
        "overrides": {"type": "array", "items": {"$ref": "#/$defs/override"}},
        "waivers": {"type": "array", "items": {"$ref": "#/$defs/waiver"}},
    }
    return {
        **schemafile.document(SCHEMA_ID, "hostguard policy",
                              "A hostguard policy file (docs/policy.md).", kind="Policy",
                              required=["metadata"], properties=properties),
        "$defs": {
            "severity": {"enum": ["critical", "high", "medium", "low", "info"]},
            "check": {
                "type": "object",
                "required": ["id", "kind", "title", "severity", "rationale", "remediation", "spec"],
                "additionalProperties": False,
                "properties": check_fields,
                "allOf": per_kind,
            },
            "override": {
                "type": "object",
                "required": ["id"],
                "minProperties": 2,
                "additionalProperties": False,
                "description": "Changes to an inherited check; spec is replaced whole.",
                "properties": override_fields,
            },
            "waiver": {
                "type": "object",
                "required": ["check", "reason", "expires"],
                "additionalProperties": False,
                "properties": {
                    "check": {"type": "string", "pattern": _ID},
                    "reason": {"type": "string"},
                    "expires": {"type": "string", "format": "date",
                                "pattern": r"^\d{4}-\d{2}-\d{2}$"},
                    "hosts": {"type": "array", "items": _TEXT, "minItems": 1},
                },
            },
            **{f"spec.{name}": dict(kind.spec_schema) for name, kind in sorted(KINDS.items())},
        },
    }


def render() -> str:
    """The schema as the shipped file holds it."""
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


@cache
def shipped() -> dict[str, Any]:
    """The schema file shipped in the package (what editors and the linter read)."""
    return schemafile.shipped(__file__, "schema.json")


def main(argv: list[str] | None = None) -> int:
    return schemafile.main(argv, "agent.policy", "schema.json", render)


if __name__ == "__main__":
    sys.exit(main())
