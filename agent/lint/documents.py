"""Linters for document kinds other than ``Policy``, by ``kind``.

Each takes a loaded document and the day to judge dates by, and returns every diagnostic for
that document, located in it. A linter's module is imported when the linter is first looked
up: the audit only needs the kinds' names (to skip those documents), not their linters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from agent.core.diagnostic import Diagnostic
from agent.core.registry import LazyRegistry
from agent.core.yamlload import Document

Linter = Callable[[Document, dt.date], list[Diagnostic]]

LINTERS: Mapping[str, Linter] = LazyRegistry({
    "SeccompProfile": "agent.seccomp.lint:lint_profile",
    "AgentConfig": "agent.daemon.config:lint_config",
})
"""``kind`` -> linter, as ``module:function``."""
