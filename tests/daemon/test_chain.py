"""The hash chain: each kind of break on links built here, and the same breaks made by an
intruder with sqlite3 in a real history, as ``History.verify`` names them."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.daemon.chain import (
    GENESIS,
    META_KEYS,
    Ends,
    Link,
    Problem,
    chain_hash,
    chain_problems,
    digest_problems,
    ends,
    head_problems,
)
from agent.daemon.history import History, canonical_json
from agent.result import AuditRun
from tests.daemon.histories import problems, stored, tamper


def content(n: int) -> str:
    return hashlib.sha256(f"run {n}".encode()).hexdigest()


def chain_of(count: int, first: int = 1, anchor: str = GENESIS) -> list[Link]:
    """``count`` honest links from ``anchor``, ids ``first``, ``first + 1``, ..."""
    links = []
    prev = anchor
    for n in range(first, first + count):
        run_hash = chain_hash(prev, content(n))
        links.append(Link(n, f"t{n}", content(n), content(n), prev, run_hash))
        prev = run_hash
    return links


def whole(links: list[Link], anchor_id: int = 0, anchor: str = GENESIS) -> Ends:
    """The ends recorded for ``links``."""
    if not links:
        return Ends(anchor_id, anchor, anchor_id, anchor)
    return Ends(anchor_id, anchor, links[-1].id, links[-1].run_hash)


def found(links: list[Link], chain: Ends) -> list[str]:
    return [str(p) for link in links for p in digest_problems(link)] + [
        str(p) for p in chain_problems(links, chain) + head_problems(links, chain)]


def replace(link: Link, **changes: Any) -> Link:
    fields = {"id": link.id, "started": link.started, "content": link.content,
              "json_sha256": link.json_sha256, "prev_hash": link.prev_hash,
              "run_hash": link.run_hash, **changes}
    return Link(**fields)


# -- links built here ----------------------------------------------------------------------------
def test_the_link_is_sha256_of_both_raw_digests() -> None:
    prev, digest = "ab" * 32, content(1)
    assert chain_hash(prev, digest) == hashlib.sha256(bytes.fromhex(prev)
                                                      + bytes.fromhex(digest)).hexdigest()
    assert GENESIS == "0" * 64


@pytest.mark.parametrize("count", [0, 1, 4])
def test_an_honest_chain_has_no_problem(count: int) -> None:
    links = chain_of(count)
    assert found(links, whole(links)) == []
    pruned = chain_of(count, first=7, anchor="cd" * 32)
    assert found(pruned, whole(pruned, 6, "cd" * 32)) == []


def test_each_edited_digest_is_told_apart() -> None:
    link = chain_of(1)[0]
    other = content(9)
    assert digest_problems(replace(link, content=other)) == [
        Problem(1, "t1", "edited: its stored JSON does not match its recorded SHA-256")]
    assert digest_problems(replace(link, content=other, json_sha256=content(8))) == [
        Problem(1, "t1", "edited: its JSON, JSON digest and run hash do not match one another")]
    assert digest_problems(replace(link, json_sha256=other)) == [
        Problem(1, "t1", "edited: its recorded JSON digest was changed")]
    assert digest_problems(replace(link, run_hash=other)) == [
        Problem(1, "t1", "edited: its run hash does not match its content and previous hash")]


def test_deleted_runs_are_placed() -> None:
    links = chain_of(5)
    chain = whole(links)
    assert found(links[1:], chain) == [
        "run 1: deleted: run 1 missing at the start of the history, before run 2 (started t2)"]
    assert found(links[:1] + links[3:], chain) == [
        "run 2: deleted: runs 2..3 missing after run 1, before run 4 (started t4)"]
    assert found(links[:3], chain) == [
        "run 4: deleted: runs 4..5 missing at the end (the chain head records run 5)"]
    pruned = chain_of(3, first=4, anchor="cd" * 32)
    assert found(pruned[1:], whole(pruned, 3, "cd" * 32)) == [
        "run 4: deleted: run 4 missing after the pruned runs (up to 3), before run 5 (started t5)"]


def test_renumbered_and_forged_links_are_named() -> None:
    links = chain_of(3)
    renumbered = [links[0], replace(links[2], id=2)]
    assert found(renumbered, whole(renumbered)) == [
        "run 2 (started t3): its previous hash matches no run: run 1 was rewritten with its "
        "hashes, or a run before it deleted and the rest renumbered"]
    assert found(links, whole(links, anchor="12" * 32)) == [
        "run 1 (started t1): its previous hash does not match the history's anchor: earlier "
        "runs deleted and the rest renumbered, or the anchor edited"]
    copy = replace(links[1], id=4, started="t4")
    forged = [*links, copy]
    assert found(forged, whole(forged)) == [
        "run 4 (started t4): inserted: it repeats another run's link in the chain (a copied or "
        "forged run)"]


def test_reordered_links_are_named() -> None:
    one, two, three = chain_of(3)
    swapped = [one, replace(three, id=2), replace(two, id=3)]
    # The head is the last link by the chain (the old run 3, now id 2).
    assert found(swapped, Ends(0, GENESIS, 3, swapped[2].run_hash)) == [
        "run 2 (started t3): reordered: the hash chain puts it after run 3, its id after run 1",
        "run 3 (started t2): reordered: the hash chain puts it after run 1, its id after run 2"]


def test_the_head_pins_the_tail() -> None:
    links = chain_of(3)
    assert found(links, whole(links[:2])) == [
        "run 3 (started t3): inserted: not in the recorded chain (its head is run 2)"]
    assert found(links, Ends(0, GENESIS, 3, "ef" * 32)) == [
        "run 3 (started t3): its hash differs from the recorded chain head: the run was "
        "rewritten with its hashes"]
    assert found([], Ends(0, GENESIS, 0, "ef" * 32)) == [
        "the chain head and anchor disagree (chain_meta edited)"]


def test_ends_come_from_complete_metadata() -> None:
    meta = {"anchor_hash": GENESIS, "anchor_id": "0", "head_hash": "ab" * 32, "head_id": "2",
            "pruned_runs": "0"}
    assert set(meta) == set(META_KEYS)
    assert ends(meta) == Ends(0, GENESIS, 2, "ab" * 32)
    assert ends({k: v for k, v in meta.items() if k not in ("head_id", "pruned_runs")}) == \
        Problem(None, None, "chain_meta lacks head_id, pruned_runs: the chain cannot be checked")
    assert ends({**meta, "anchor_id": "x"}) == Problem(
        None, None, "chain_meta holds a non-numeric run id")


# -- a real database tampered with by an intruder with sqlite3 --------------------------------
def _edit_json(db: Path, run_id: int, change: Callable[[dict[str, Any]], None]) -> bytes:
    data = stored(db, run_id)
    change(data)
    blob = canonical_json(data)
    tamper(db, ("UPDATE runs SET canonical_json = ? WHERE id = ?", (blob, run_id)))
    return blob


def _hide_failure(data: dict[str, Any]) -> None:
    data["results"][0]["status"] = "pass"


def test_edited_json_is_named(db: Path) -> None:
    _edit_json(db, 3, _hide_failure)
    assert problems(db) == [
        "run 3 (started 2026-11-24T12:00:00Z): edited: its stored JSON does not match its "
        "recorded SHA-256",
        "run 3 (started 2026-11-24T12:00:00Z): edited: the checks index disagrees with the "
        "stored JSON (check KRN-001)",
    ]


def test_edited_json_with_index_and_counts_still_shows(db: Path) -> None:
    def rewrite(data: dict[str, Any]) -> None:
        data["results"][0]["status"] = "pass"
        data["summary"]["fail"] = 1
        data["summary"]["pass"] = 1

    _edit_json(db, 3, rewrite)
    tamper(db, "UPDATE checks SET status = 'pass' WHERE run_id = 3 AND check_id = 'KRN-001'",
           "UPDATE runs SET counts = '{\"error\":1,\"fail\":1,\"not_applicable\":0,\"pass\":1,"
           "\"waived\":0}' WHERE id = 3")
    assert problems(db) == ["run 3 (started 2026-11-24T12:00:00Z): edited: its stored JSON does "
                            "not match its recorded SHA-256"]


def test_json_rewritten_with_its_hashes_breaks_the_next_link(db: Path) -> None:
    blob = _edit_json(db, 3, _hide_failure)
    content = hashlib.sha256(blob).hexdigest()
    con = sqlite3.connect(db)
    prev = con.execute("SELECT prev_hash FROM runs WHERE id = 3").fetchone()[0]
    con.close()
    forged = hashlib.sha256(bytes.fromhex(prev) + bytes.fromhex(content)).hexdigest()
    tamper(db, ("UPDATE runs SET json_sha256 = ?, run_hash = ? WHERE id = 3", (content, forged)),
           "UPDATE checks SET status = 'pass' WHERE run_id = 3 AND check_id = 'KRN-001'")
    assert problems(db) == [
        "run 4 (started 2026-11-24T13:00:00Z): its previous hash matches no run: run 3 was "
        "rewritten with its hashes, or a run before it deleted and the rest renumbered",
    ]


def test_deleted_middle_run_is_named(db: Path) -> None:
    tamper(db, "DELETE FROM runs WHERE id = 3", "DELETE FROM checks WHERE run_id = 3")
    assert problems(db) == ["run 3: deleted: run 3 missing after run 2, before run 4 (started "
                            "2026-11-24T13:00:00Z)"]


def test_deleted_run_with_its_index_left_behind(db: Path) -> None:
    tamper(db, "DELETE FROM runs WHERE id = 2")
    assert problems(db) == ["run 2: deleted: run 2 missing after run 1, before run 3 (started "
                            "2026-11-24T12:00:00Z)"]


def test_deleted_first_and_last_runs_are_named(db: Path) -> None:
    tamper(db, "DELETE FROM runs WHERE id IN (1, 5)", "DELETE FROM checks WHERE run_id IN (1, 5)")
    assert problems(db) == [
        "run 1: deleted: run 1 missing at the start of the history, before run 2 (started "
        "2026-11-24T11:00:00Z)",
        "run 5: deleted: run 5 missing at the end (the chain head records run 5)",
    ]


def test_deleted_and_renumbered_runs_break_the_chain(db: Path) -> None:
    tamper(db, "DELETE FROM runs WHERE id = 3", "DELETE FROM checks WHERE run_id = 3",
           "UPDATE runs SET id = id - 1 WHERE id > 3",
           "UPDATE checks SET run_id = run_id - 1 WHERE run_id > 3",
           "UPDATE chain_meta SET value = '4' WHERE key = 'head_id'")
    assert problems(db) == [
        "run 3 (started 2026-11-24T13:00:00Z): its previous hash matches no run: run 2 was "
        "rewritten with its hashes, or a run before it deleted and the rest renumbered"]


def test_swapped_runs_are_named(db: Path) -> None:
    tamper(db, "UPDATE runs SET id = 99 WHERE id = 2", "UPDATE runs SET id = 2 WHERE id = 3",
           "UPDATE runs SET id = 3 WHERE id = 99",
           "UPDATE checks SET run_id = 99 WHERE run_id = 2",
           "UPDATE checks SET run_id = 2 WHERE run_id = 3",
           "UPDATE checks SET run_id = 3 WHERE run_id = 99")
    assert problems(db) == [
        "run 2 (started 2026-11-24T12:00:00Z): reordered: the hash chain puts it after run 3, "
        "its id after run 1",
        "run 3 (started 2026-11-24T11:00:00Z): reordered: the hash chain puts it after run 1, "
        "its id after run 2",
    ]


def test_edited_hashes_are_named(db: Path) -> None:
    tamper(db, "UPDATE runs SET run_hash = '" + "ab" * 32 + "' WHERE id = 2",
           "UPDATE runs SET json_sha256 = '" + "cd" * 32 + "' WHERE id = 4")
    assert problems(db) == [
        "run 2 (started 2026-11-24T11:00:00Z): edited: its run hash does not match its content "
        "and previous hash",
        "run 4 (started 2026-11-24T13:00:00Z): edited: its recorded JSON digest was changed",
    ]


def test_edited_prev_hash_is_named(db: Path) -> None:
    tamper(db, "UPDATE runs SET prev_hash = '" + "ef" * 32 + "' WHERE id = 4")
    assert problems(db) == [
        "run 4 (started 2026-11-24T13:00:00Z): edited: its run hash does not match its content "
        "and previous hash",
        "run 4 (started 2026-11-24T13:00:00Z): its previous hash matches no run: run 3 was "
        "rewritten with its hashes, or a run before it deleted and the rest renumbered",
    ]


def test_rewritten_tail_and_inserted_run_are_named(db: Path, runs: list[AuditRun]) -> None:
    # An intruder appends a run of their own through hostguard's code: the chain head moves
    # with it, so it verifies -- but pretending it is older than it is fails.
    with History(db) as history:
        assert history.record(runs[0]) == 6
    tamper(db, "DELETE FROM runs WHERE id = 6", "DELETE FROM checks WHERE run_id = 6",
           "UPDATE chain_meta SET value = '5' WHERE key = 'head_id'")
    assert problems(db) == [
        "run 5 (started 2026-11-24T14:00:00Z): its hash differs from the recorded chain head: "
        "the run was rewritten with its hashes"]


def test_chain_meta_anchor_edited(db: Path) -> None:
    tamper(db, "UPDATE chain_meta SET value = '" + "12" * 32 + "' WHERE key = 'anchor_hash'")
    assert problems(db) == [
        "run 1 (started 2026-11-24T10:00:00Z): its previous hash does not match the history's "
        "anchor: earlier runs deleted and the rest renumbered, or the anchor edited"]
