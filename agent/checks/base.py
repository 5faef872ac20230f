"""What a check kind is: a spec schema, a parser, a host request and a pure evaluator."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from agent.core.record import record
from agent.host.snapshot import Snapshot, SnapshotRequest
from agent.result import Outcome

SpecPath = tuple[str | int, ...]


@record
class SpecProblem:
    """A spec that matches the schema but means nothing sensible."""

    path: SpecPath
    """Path inside the spec, for locating the error."""
    message: str
    """Human sentence."""
    rule: str = "spec"
    """Lint rule id."""


class SpecError(Exception):
    """Raised by :meth:`CheckKind.parse` with every problem found."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


SpecT = TypeVar("SpecT")


class CheckKind(ABC, Generic[SpecT]):
    """One registered kind of check. Subclasses live one per module under ``agent/checks``."""

    name: ClassVar[str]
    """The ``kind:`` value in policies."""
    summary: ClassVar[str]
    """One line for docs and the schema."""
    spec_schema: ClassVar[Mapping[str, Any]]
    """JSON Schema (2020-12) of ``spec``; the published policy schema is generated from it."""

    @abstractmethod
    def parse(self, raw: Mapping[str, Any]) -> SpecT:
        """Turn a schema-valid spec into the kind's spec object; raise :class:`SpecError`."""

    def parse_at(self, raw: Mapping[str, Any], origin: Path | None) -> SpecT:
        """:meth:`parse` for a spec written in the file ``origin`` (kinds whose spec names
        other files resolve relative paths against it; the others ignore it)."""
        return self.parse(raw)

    @abstractmethod
    def request(self, spec: SpecT) -> SnapshotRequest:
        """What the host snapshot must contain for :meth:`evaluate`."""

    @abstractmethod
    def evaluate(self, spec: SpecT, snapshot: Snapshot) -> Outcome:
        """Verdict from the snapshot alone; never touches the host."""
