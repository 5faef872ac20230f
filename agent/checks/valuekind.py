"""The base of the kinds that hold every host value a key or glob matches to one condition.

``sysctl`` (keys under ``/proc/sys``) and ``sysfs`` (paths under ``/sys``) are such kinds: a
spec names the values, gives one condition (:mod:`agent.checks.compare`) and says what a key that
matches nothing means (``missing``). A subclass names its key field, says where the snapshot
keeps the values, and how its key's components are separated. ``sysfs`` adds two options of
its own (:class:`ValueSpec`'s ``cpus`` and ``where``: :mod:`agent.checks.sysfs`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from agent.checks.base import CheckKind, SpecError, SpecProblem
from agent.checks.compare import (
    CONDITION_PROPERTIES,
    MISSING_SCHEMA,
    Condition,
    judge_values,
    parse_condition,
)
from agent.core.record import record
from agent.host.snapshot import Snapshot, Values
from agent.policy.globs import path_glob_problem
from agent.result import Outcome


@record
class Where:
    """Only the matches whose sibling file satisfies a condition are judged (``sysfs``)."""

    file: str
    """The sibling's name, in the folder of each match (``latency`` beside ``disable``)."""
    condition: Condition
    """What the sibling must satisfy for its match to be judged."""


@record
class ValueSpec:
    """Parsed spec of a :class:`ValueKind`."""

    key: str
    """Key or glob as written (a sysctl key, a path under /sys): the snapshot's key too."""
    condition: Condition
    """What every match must satisfy."""
    missing: str
    """Verdict when the key matches nothing on the host."""
    cpus: str | frozenset[int] | None = None
    """``sysfs`` only: the CPUs the key's ``{cpus}`` stands for, each in turn: a set the host
    names (``isolated``, ``online``, ``all``) or the CPUs the policy lists; None: no ``{cpus}``."""
    where: Where | None = None
    """``sysfs`` only: which matches are judged; None: all."""


def value_schema(summary: str, field: str, key: Mapping[str, Any],
                 more: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The spec schema of a :class:`ValueKind`: ``field`` (a non-empty string further described
    by ``key``), the condition, ``missing`` and the kind's ``more`` properties."""
    return {
        "type": "object",
        "description": summary,
        "required": [field, "value"],
        "additionalProperties": False,
        "properties": {
            field: {"type": "string", "minLength": 1, **key},
            **CONDITION_PROPERTIES,
            "missing": MISSING_SCHEMA,
            **(more or {}),
        },
    }


class ValueKind(CheckKind[ValueSpec]):
    """A kind whose spec names host values by key or glob, every match held to one condition."""

    field: ClassVar[str]
    """The spec's name for the key (``key``, ``path``); :func:`value_schema` takes it too."""
    noun: ClassVar[str]
    """The key in words, for messages (``sysctl key``)."""

    def separator(self, key: str) -> str:
        """What separates the components of ``key``, in which ``*`` matches."""
        return "/"

    @abstractmethod
    def values(self, spec: ValueSpec, snapshot: Snapshot) -> Values | None:
        """The values the snapshot holds for ``spec.key`` (None when it was not read)."""

    def key_problem(self, key: str) -> str | None:
        """Why ``key`` names no host value, or None."""
        return path_glob_problem(key, self.separator(key))

    def parse_value(self, raw: Mapping[str, Any]) -> tuple[ValueSpec, list[SpecProblem]]:
        """The key, condition and ``missing`` of ``raw``, and what is wrong with them."""
        key = str(raw[self.field])
        condition, problems = parse_condition(raw)
        problem = self.key_problem(key)
        if problem:
            problems.insert(0, SpecProblem((self.field,), f"invalid {self.noun} {key!r}: {problem}",
                                           "invalid-glob"))
        return ValueSpec(key, condition, str(raw.get("missing", "error"))), problems

    def parse(self, raw: Mapping[str, Any]) -> ValueSpec:
        spec, problems = self.parse_value(raw)
        if problems:
            raise SpecError(problems)
        return spec

    def evaluate(self, spec: ValueSpec, snapshot: Snapshot) -> Outcome:
        return judge_values(spec.key, self.values(spec, snapshot), spec.condition, spec.missing)
