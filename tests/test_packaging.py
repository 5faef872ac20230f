"""pyproject.toml ships what hostguard needs: every package, the shipped policies, profiles,
sample configuration and units (mapped from their top-level folders), and as runtime
dependencies exactly the libraries ``agent/`` imports (test tools stay in the ``test`` extra).
tests/test_installed.py installs the wheel and runs it."""

from __future__ import annotations

import ast
import fnmatch
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

from tests.support import PROJECT

PYPROJECT: dict[str, Any] = tomllib.loads((PROJECT / "pyproject.toml").read_text())
SETUPTOOLS: dict[str, Any] = PYPROJECT["tool"]["setuptools"]
SHIPPED = {"agent.shipped.policies": "policies", "agent.shipped.packaging": "packaging"}


def folder_of(package: str) -> Path:
    """Where setuptools takes ``package`` from (its package-dir mapping, else its name)."""
    mapping: dict[str, str] = SETUPTOOLS["package-dir"]
    for mapped, folder in mapping.items():
        if package == mapped or package.startswith(mapped + "."):
            return PROJECT / folder / Path(*package[len(mapped):].split(".")[1:])
    return PROJECT / Path(*package.split("."))


def test_every_package_and_data_folder_is_listed() -> None:
    agent = PROJECT / "agent"
    wanted = {".".join(d.relative_to(PROJECT).parts) for d in [agent, *agent.rglob("*")]
              if d.is_dir() and d.name != "__pycache__"}
    for mapped, folder in SHIPPED.items():
        top = PROJECT / folder
        wanted |= {".".join([mapped, *d.relative_to(top).parts]) for d in [top, *top.rglob("*")]
                   if d.is_dir()}
    assert set(SETUPTOOLS["packages"]) == wanted
    assert SETUPTOOLS["package-dir"] == SHIPPED


def test_every_file_of_the_data_folders_is_package_data() -> None:
    data: dict[str, list[str]] = SETUPTOOLS["package-data"]
    for package in SETUPTOOLS["packages"]:
        folder = folder_of(package)
        for path in folder.iterdir():
            if path.is_dir() or path.suffix in (".py", ".pyc"):
                continue
            patterns = data.get(package, [])
            if package.startswith("agent.") and not package.startswith("agent.shipped"):
                top = package.split(".", 1)[1].replace(".", "/")
                patterns = patterns + [p.removeprefix(top + "/") for p in data["agent"]
                                       if p.startswith(top + "/")]
            elif package == "agent":
                patterns = data["agent"]
            assert any(fnmatch.fnmatch(path.name, p) for p in patterns), path


def imported_top_levels() -> set[str]:
    names = set()
    for path in (PROJECT / "agent").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"agent", "__future__"}


def distribution(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9_.-]+", requirement)
    assert match is not None
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def test_runtime_dependencies_are_what_the_agent_imports() -> None:
    by_module = packages_distributions()
    used = {distribution(d) for name in imported_top_levels() for d in by_module[name]}
    declared = {distribution(r) for r in PYPROJECT["project"]["dependencies"]}
    assert declared == used
    test_tools = {distribution(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]}
    assert {"pytest", "hypothesis", "ruff", "mypy"} <= test_tools
    assert not test_tools & declared
