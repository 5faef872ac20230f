"""A verdict from rows: the kinds whose evidence is one row per thing looked at, each row with
its own ``verdict`` (``pass``, ``fail``, ``error``) and ``finding`` (what was found, in words,
naming the thing)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent.result import Evidence, Outcome, Status


def outcome_of(expected: str, rows: Sequence[Mapping[str, Any]]) -> Outcome:
    """Fail when a row fails, else error when a row could not be judged, else pass; the
    message names the failing (or unjudged) rows, the evidence holds them all."""
    evidence = Evidence(expected, "; ".join(r["finding"] for r in rows) or "nothing looked at",
                        tuple(rows))
    failed = [r["finding"] for r in rows if r["verdict"] == "fail"]
    errors = [r["finding"] for r in rows if r["verdict"] == "error"]
    if failed:
        return Outcome(Status.FAIL, "; ".join(failed), evidence)
    if errors or not rows:
        return Outcome(Status.ERROR, "cannot evaluate: " + ("; ".join(errors) or "nothing to "
                                                           "look at"), evidence)
    return Outcome(Status.PASS, f"{expected} holds", evidence)
