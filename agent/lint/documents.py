"""Linters for document kinds other than ``Policy``, by ``kind``.

Each takes a loaded document and the day to judge dates by, and returns every diagnostic for
that document, located in it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from agent.daemon.config import lint_config
from agent.lint.diagnostic import Diagnostic
from agent.policy.yamlload import Document
from agent.seccomp.lint import lint_profile

LINTERS: dict[str, Callable[[Document, dt.date], list[Diagnostic]]] = {
    "SeccompProfile": lint_profile,
    "AgentConfig": lint_config,
}
"""``kind`` -> linter."""
