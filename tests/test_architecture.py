"""The layers of docs/ARCHITECTURE.md hold: no module imports a layer above its own (nor a peer
of its tier), core imports nothing else of agent, and every late import says why."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import PROJECT

AGENT = PROJECT / "agent"
ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*([^|]+?)\s*\|\s*(`[^|]+`)\s*\|\s*$")


def layers() -> dict[str, tuple[int, str]]:
    """Module prefix -> (tier, component), from the table of docs/ARCHITECTURE.md."""
    table: dict[str, tuple[int, str]] = {}
    text = (PROJECT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for line in text.splitlines():
        if match := ROW.match(line):
            for prefix in re.findall(r"`([^`]+)`", match.group(3)):
                table[prefix] = (int(match.group(1)), match.group(2))
    return table


LAYERS = layers()


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    found = {}
    for path in sorted(AGENT.rglob("*.py")):
        parts = list(path.relative_to(PROJECT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = modules()


def layer(module: str) -> tuple[int, str] | None:
    """The (tier, component) of ``module``: its longest listed prefix; the root package by its
    name alone (it is a prefix of everything)."""
    if module == "agent":
        return LAYERS.get("agent")
    best = max((p for p in LAYERS if p != "agent" and (module == p or module.startswith(p + "."))),
               key=len, default=None)
    return None if best is None else LAYERS[best]


def imports(module: str, source: str, package: bool) -> Iterator[tuple[int, str]]:
    """(line, imported agent module) for every import statement anywhere in ``source``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if package else module.split(".")[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            # ``from agent.x import y``: y is a module when there is one by that name.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            if target == "agent" or target.startswith("agent."):
                yield node.lineno, target


def violations(module: str, source: str, package: bool = False) -> list[str]:
    """Every import of ``module`` against the layers, as ``module:line: why``."""
    own = layer(module)
    if own is None:
        return [f"{module}: in no layer of docs/ARCHITECTURE.md"]
    found = []
    for line, target in imports(module, source, package):
        theirs = layer(target)
        if theirs is None or theirs[1] == own[1]:
            continue  # the same component (or a module no layer lists, reported on its own)
        if own[0] == 0:
            why = "core imports nothing else of agent"
        elif theirs[0] > own[0]:
            why = f"a layer above ({theirs[1]}, tier {theirs[0]} > {own[0]})"
        elif theirs[0] == own[0]:
            why = f"a peer of its tier ({theirs[1]}, tier {theirs[0]})"
        else:
            continue
        found.append(f"{module}:{line}: imports {target}: {why}")
    return found


def test_the_table_is_read() -> None:
    assert LAYERS["agent.core"] == (0, "core")
    assert LAYERS["agent.cli"] == (9, "cli")
    assert layer("agent.policy.loader") == (4, "policy loading")
    assert layer("agent.policy.model") == (1, "policy model")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_against_the_layers(module: str) -> None:
    path = MODULES[module]
    assert violations(module, path.read_text(encoding="utf-8"), path.name == "__init__.py") == []


@pytest.mark.parametrize(("module", "source", "found"), [
    ("agent.core.x", "def f():\n    from agent.cli import main\n",
     ["agent.core.x:2: imports agent.cli: core imports nothing else of agent"]),
    ("agent.checks.x", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
     "    from agent.daemon import service\n",
     ["agent.checks.x:3: imports agent.daemon.service: a layer above (daemon, tier 8 > 3)"]),
    ("agent.checks.x", "from ..audit import run\n",
     ["agent.checks.x:1: imports agent.audit: a layer above (audit, tier 6 > 3)"]),
    ("agent.host.x", "import agent.seccomp.bpf\n",
     ["agent.host.x:1: imports agent.seccomp.bpf: a peer of its tier (seccomp, tier 1)"]),
    ("agent.report.x", "from agent.enforce import exec\n",
     ["agent.report.x:1: imports agent.enforce.exec: a peer of its tier (enforce, tier 7)"]),
    ("agent.checks.x", "from agent.host import snapshot\nfrom agent.core import record\n"
     "from agent.checks import base\nfrom agent import __version__\n", []),
    ("agent.newthing", "", ["agent.newthing: in no layer of docs/ARCHITECTURE.md"]),
])
def test_the_check_finds_what_it_should(module: str, source: str, found: list[str]) -> None:
    assert violations(module, source) == found


LATE_REASON = re.compile(r"#\s*noqa:\s*PLC0415\s*-\s*\S")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_late_import_says_why(module: str) -> None:
    """An import inside a function is for start-up speed, and its line (or a comment just above)
    says so."""
    lines = MODULES[module].read_text(encoding="utf-8").splitlines()
    silent = []
    for function in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import | ast.ImportFrom):
                above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                if not LATE_REASON.search(lines[node.lineno - 1]) and not above.startswith("#"):
                    silent.append(f"{module}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert silent == []
