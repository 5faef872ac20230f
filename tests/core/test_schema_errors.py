"""Schema errors in words: generic over any schema, located at the offending node."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from agent.core.diagnostic import Diagnostic, Level
from agent.core.location import Location
from agent.core.schema_errors import (
    dotted,
    json_type,
    schema_diagnostics,
    short,
    suggest,
    wrong_document,
)
from agent.core.yamlload import Document, load_bytes

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "colour": {"enum": ["red", "green"]},
        "items": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "properties": {"kind": {"enum": ["alpha", "beta"]}, "size": {"type": "integer"}}}},
    },
}


def diagnostics(text: str) -> list[Diagnostic]:
    doc = load_bytes(text.encode(), "d.yaml")
    assert isinstance(doc, Document), doc
    return schema_diagnostics(doc, doc.data, Draft202012Validator(SCHEMA))


def test_unknown_key_at_the_key_with_the_nearest_unused_one() -> None:
    assert diagnostics("colour: red\ncolor: red\n") == [Diagnostic(
        Location("d.yaml", 2, 1), Level.ERROR, "unknown key 'color'", "unknown-key")]
    assert diagnostics("colr: red\n")[0].message == "unknown key 'colr' (did you mean 'colour'?)"


def test_an_enum_names_its_options() -> None:
    [diag] = diagnostics("colour: rde\n")
    assert diag.message == "colour must be one of red, green, not 'rde' (did you mean 'red'?)"
    assert diag.location == Location("d.yaml", 1, 9)


def test_a_kind_in_a_list_is_named_from_the_schema_enum_not_a_registry() -> None:
    [diag] = diagnostics("items:\n  - kind: alpah\n")
    assert (diag.rule, diag.message) == (
        "unknown-kind", "unknown check kind 'alpah' (did you mean 'alpha'?); known: alpha, beta")


def test_a_wrong_type_says_what_it_found() -> None:
    [diag] = diagnostics("items:\n  - size: [1]\n")
    assert diag.message == "items[0].size must be an integer, not array [1]"


def test_helpers() -> None:
    assert dotted(("checks", 0, "spec", "a b")) == "checks[0].spec['a b']"
    assert dotted(()) == "document"
    assert short("x" * 100) == "'" + "x" * 56 + "..."
    assert suggest("sysctrl", ["sysctl", "sysfs"]) == " (did you mean 'sysctl'?)"
    assert suggest("zzz", ["sysctl"]) == ""
    assert json_type(None) == "null"
    assert json_type(True) == "boolean"


def test_a_document_of_another_kind_is_named_at_what_differs() -> None:
    def wrong(text: str) -> Diagnostic | None:
        doc = load_bytes(text.encode(), "d.yaml")
        assert isinstance(doc, Document), doc
        return wrong_document(doc, doc.data, "Thing", "hostguard thing")

    def at(text: str) -> Location:
        found = wrong(text)
        assert found is not None, text
        return found.location

    assert wrong("apiVersion: hostguard/v1\nkind: Thing\n") is None
    assert wrong("apiVersion: hostguard/v2\nkind: Other\n") == Diagnostic(
        Location("d.yaml", 1, 13), Level.ERROR, "not a hostguard thing: apiVersion "
        "'hostguard/v2', kind 'Other' (expected 'hostguard/v1', 'Thing')", "unknown-document")
    assert at("apiVersion: hostguard/v1\nkind: Other\n") == Location("d.yaml", 2, 7)
    assert at("kind: Thing\n") == Location("d.yaml", 1, 1)  # no apiVersion at all
