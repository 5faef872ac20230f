"""Shared fixtures of the report tests: the fixed result files, validators for the CI schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from tests.support import need, need_shared

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
NAMES = ("gateway", "hostile")


def fixture_data(name: str) -> dict[str, Any]:
    """``fixtures/<name>.json`` parsed."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def sarif_validator() -> Draft4Validator:
    path = need_shared("fixtures/schemas/sarif-schema-2.1.0.json")
    return Draft4Validator(json.loads(path.read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def junit_xsd() -> Any:
    """``lxml.etree.XMLSchema`` of Jenkins' junit-10.xsd."""
    try:
        from lxml import etree  # noqa: PLC0415 - a test dependency only
    except ImportError:
        need(False, "lxml is not installed (pip install -e '.[test]')")
    path = need_shared("fixtures/schemas/junit-10.xsd")
    return etree.XMLSchema(etree.parse(str(path)))
