"""SARIF 2.1.0 pieces shared by the lint output and the audit report (neither imports the other)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from agent import __version__

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
VERSION = "2.1.0"
SRCROOT = "SRCROOT"
"""``uriBaseId`` of relative paths: the folder the tool ran from."""
INFO_URI = "https://github.com/hostguard/hostguard/blob/main/docs/policy.md"


def artifact_location(path: str) -> dict[str, Any]:
    """A relative path: a percent-encoded URI under ``SRCROOT``; an absolute one: a file URI."""
    if os.path.isabs(path):
        return {"uri": Path(path).as_uri()}
    return {"uri": quote(Path(path).as_posix()), "uriBaseId": SRCROOT}


def physical_location(path: str, line: int, column: int) -> dict[str, Any]:
    """``{"physicalLocation": ...}`` pointing at ``path:line:column``."""
    return {"physicalLocation": {"artifactLocation": artifact_location(path),
                                 "region": {"startLine": line, "startColumn": column}}}


def driver(rules: Sequence[dict[str, Any]], information_uri: str = INFO_URI) -> dict[str, Any]:
    """``tool.driver`` for hostguard with ``rules``."""
    return {"name": "hostguard", "version": __version__, "semanticVersion": __version__,
            "informationUri": information_uri, "rules": list(rules)}


def log(runs: Sequence[dict[str, Any]]) -> str:
    """The SARIF log as indented JSON with a trailing newline (non-ASCII escaped)."""
    body = {"$schema": SCHEMA_URI, "version": VERSION, "runs": list(runs)}
    return json.dumps(body, indent=2, ensure_ascii=True) + "\n"
