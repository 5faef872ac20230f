"""What several benchmarks share."""

from __future__ import annotations

import importlib
from typing import Any


def installed(name: str) -> Any:
    """The module ``name``, or None where it is not installed (a comparison point, never a
    dependency: an import statement would make mypy look for it)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
