"""The lazy registry: names known at once, a module imported on the first lookup it serves."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from agent import cli
from agent.checks import KINDS
from agent.core.registry import LazyRegistry
from agent.lint.documents import LINTERS
from agent.report.writer import FORMATS


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package of two fresh modules, ``<name>.one`` and ``<name>.two``, on the path."""
    name = f"plugins_{tmp_path.name}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    for module, value in (("one", 1), ("two", 2)):
        (tmp_path / name / f"{module}.py").write_text(f"VALUE = {value}\nOTHER = -{value}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_names_need_no_import_and_a_lookup_imports_only_its_module(plugins: str) -> None:
    registry = LazyRegistry({"a": f"{plugins}.one:VALUE", "b": f"{plugins}.two:VALUE"})
    assert (list(registry), len(registry), "a" in registry, "c" in registry) == (
        ["a", "b"], 2, True, False)
    assert registry.module("b") == f"{plugins}.two"
    assert f"{plugins}.one" not in sys.modules
    assert registry["a"] == 1
    assert f"{plugins}.one" in sys.modules
    assert f"{plugins}.two" not in sys.modules
    assert dict(registry) == {"a": 1, "b": 2}


def test_the_value_is_made_once_and_kept(plugins: str) -> None:
    made: list[str] = []

    def make(name: str, value: Any) -> list[Any]:
        made.append(name)
        return [name, value]

    registry = LazyRegistry({"a": f"{plugins}.one:OTHER"}, make)
    assert registry["a"] == ["a", -1]
    assert registry["a"] is registry["a"]
    assert made == ["a"]


def test_an_unknown_name_or_a_malformed_entry_fails_loudly(plugins: str) -> None:
    with pytest.raises(KeyError):
        LazyRegistry({"a": f"{plugins}.one:VALUE"})["b"]
    for target in (f"{plugins}.one", f"{plugins}.one:", ":VALUE"):
        with pytest.raises(ValueError, match=r"is not 'package\.module:attribute'"):
            LazyRegistry({"a": target})


@pytest.mark.parametrize("registry", [KINDS, LINTERS, FORMATS, cli.COMMANDS],
                         ids=["kinds", "linters", "formats", "commands"])
def test_every_entry_of_the_package_registries_resolves(registry: Mapping[str, Any]) -> None:
    assert isinstance(registry, LazyRegistry)
    for name in registry:
        assert registry[name] is not None, name
