"""JSON Schemas of hostguard's documents: their common top, and one ``--write``/``--check``
command for each published file.

Policies, seccomp profiles and the daemon's configuration are YAML documents with
``apiVersion: hostguard/v1`` and a ``kind``; :func:`document` writes that part of each schema.
The published schemas (``agent/policy/schema.json``, ``agent/seccomp/profile.schema.json``) are
generated from the declarations in code; the shipped file must equal the generated text, which
``--check`` (run by ``make lint``) and the tests verify.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

API_VERSION = "hostguard/v1"
"""The ``apiVersion`` of every hostguard document."""

METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9._-]{0,63}$"},
        "description": {"type": "string"},
        "version": {"type": "string"},
    },
}
"""Schema of ``metadata`` (policies and seccomp profiles): a name, a description, a version."""


def document(schema_id: str, title: str, description: str, *, kind: str,
             required: Sequence[str], properties: Mapping[str, Any]) -> dict[str, Any]:
    """The schema (draft 2020-12) of a document of ``kind``: ``apiVersion``, ``kind`` and
    ``required`` must be there, no key but those and ``properties`` may. A caller adds its
    ``$defs`` (and conditions) after these keys."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "title": title,
        "description": description,
        "type": "object",
        "required": ["apiVersion", "kind", *required],
        "additionalProperties": False,
        "properties": {"apiVersion": {"const": API_VERSION}, "kind": {"const": kind},
                       **properties},
    }


def shipped(module_file: str, filename: str) -> dict[str, Any]:
    """The JSON schema ``filename`` shipped beside the module whose ``__file__`` is
    ``module_file``. Read as a plain file, not through importlib.resources, which an audit
    would otherwise import (with zipfile and its compressors) for this alone."""
    data: dict[str, Any] = json.loads(Path(module_file).with_name(filename).read_text("utf-8"))
    return data


def main(argv: list[str] | None, package: str, filename: str, render: Callable[[], str]) -> int:
    """``--write`` rewrites the shipped file, ``--check`` exits 1 when it is stale, else print."""
    from importlib import resources  # noqa: PLC0415 - not for the audit that imports the schema

    parser = argparse.ArgumentParser(description=f"The published {filename}.")
    parser.add_argument("--write", action="store_true", help=f"rewrite the shipped {filename}")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if {filename} is stale")
    args = parser.parse_args(argv)
    target = resources.files(package).joinpath(filename)
    if args.write:
        with resources.as_file(target) as path:
            path.write_text(render(), encoding="utf-8")
        return 0
    if args.check:
        current = target.read_text(encoding="utf-8") if target.is_file() else ""
        if current != render():
            print(f"{package.replace('.', '/')}/{filename} is stale: run make schema",
                  file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(render())
    return 0
