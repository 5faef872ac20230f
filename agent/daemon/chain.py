"""The hash chain over the history's runs: how each run is linked, and how the links are checked.

Hash chain
    ``json_sha256 = SHA-256(canonical_json)`` and
    ``run_hash = SHA-256(bytes.fromhex(prev_hash) + bytes.fromhex(json_sha256))`` -- the
    32-byte digests concatenated, hashed, written as lowercase hex. ``prev_hash`` is the previous
    run's ``run_hash``; the first run chains from the anchor, 64 zeros until a prune moves it.
    The shell can check one link: ``printf %s "$prev$json" | xxd -r -p | sha256sum``.

Anchor and head
    Retention deletes a prefix of the chain only and stores the last deleted run's hash as the
    new anchor (with its id), so the first remaining run's ``prev_hash`` must equal it. The head
    (id and hash of the newest run) is recorded too, so deleting the newest run shows.

Verification names an edited run (its JSON digest, hashes), a deleted run (an id missing, or a
broken link), reordered runs (the chain's order differs from the ids' order) and a rewritten
tail. A chain without a secret cannot stop someone who rewrites every later hash and the head
too: record the head hash elsewhere (a ticket, a log shipper) to pin the history up to it.

The same links chain the daemon's seccomp applications (``enforce:``) in a chain of their own,
whose metadata keys start with ``applications_`` and whose problems name an ``application``.

This module knows digests and links only; ``agent.daemon.history`` reads them out of the
database and checks, besides, that each run's copied columns and check index agree with its JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agent.core.digest import sha256_hex
from agent.core.record import record

GENESIS = "0" * 64
"""The anchor of a history that was never pruned."""
META_KEYS = ("anchor_hash", "anchor_id", "head_hash", "head_id", "pruned_runs")
"""The keys the chain's metadata must hold."""


@record
class Problem:
    """One finding of a verification."""

    run_id: int | None
    """The run it is about (a deleted run's id too); ``None`` for the database as a whole."""
    started: str | None
    """That run's start time as stored, when the run is still there."""
    message: str
    """What is wrong, in words."""
    noun: str = "run"
    """What the chain links: ``run`` (audits) or ``application`` (``enforce:``)."""

    def __str__(self) -> str:
        if self.run_id is None:
            return self.message
        when = f" (started {self.started})" if self.started else ""
        return f"{self.noun} {self.run_id}{when}: {self.message}"


@record
class Link:
    """One stored run as the chain sees it."""

    id: int
    """Run id."""
    started: str
    """Start time as stored (for the messages)."""
    content: str
    """SHA-256 of the stored JSON, recomputed now."""
    json_sha256: str
    """SHA-256 of the JSON as recorded."""
    prev_hash: str
    """The previous run's hash (or the anchor) as recorded."""
    run_hash: str
    """This run's hash as recorded."""

    @property
    def true_hash(self) -> str:
        """The hash the run has by its recorded previous hash and its content now."""
        return chain_hash(self.prev_hash, self.content)


@record
class Ends:
    """The chain's recorded anchor and head."""

    anchor_id: int
    """The last pruned run's id, 0 before any prune."""
    anchor_hash: str
    """That run's hash; ``GENESIS`` before any prune."""
    head_id: int
    """The newest run's id, or the anchor's when there is none."""
    head_hash: str
    """That run's hash."""


def chain_hash(prev_hash: str, json_sha256: str) -> str:
    """``SHA-256(prev || content)`` over the raw 32-byte digests, as hex."""
    return sha256_hex(bytes.fromhex(prev_hash) + bytes.fromhex(json_sha256))


def ends(meta: Mapping[str, str], prefix: str = "") -> Ends | Problem:
    """The anchor and head out of the chain's metadata (keys :data:`META_KEYS`, each after
    ``prefix``), or why the chain cannot be checked."""
    meta = {k[len(prefix):]: v for k, v in meta.items() if k.startswith(prefix)}
    missing = [prefix + k for k in META_KEYS if k not in meta]
    if missing:
        return Problem(None, None, "chain_meta lacks " + ", ".join(missing)
                       + ": the chain cannot be checked")
    try:
        anchor_id, head_id = int(meta["anchor_id"]), int(meta["head_id"])
    except ValueError:
        return Problem(None, None, "chain_meta holds a non-numeric run id")
    return Ends(anchor_id, meta["anchor_hash"], head_id, meta["head_hash"])


def _span(ids: Sequence[int], noun: str) -> str:
    return f"{noun} {ids[0]}" if len(ids) == 1 else f"{noun}s {ids[0]}..{ids[-1]}"


def digest_problems(link: Link, noun: str = "run") -> list[Problem]:
    """A run (or application) whose content and recorded digests disagree, with which of them
    was edited."""
    if link.content != link.json_sha256:
        if link.run_hash == chain_hash(link.prev_hash, link.json_sha256):
            message = "edited: its stored JSON does not match its recorded SHA-256"
        elif link.run_hash == link.true_hash:
            message = "edited: its recorded JSON digest was changed"
        else:
            message = "edited: its JSON, JSON digest and run hash do not match one another"
    elif link.run_hash != link.true_hash:
        message = "edited: its run hash does not match its content and previous hash"
    else:
        return []
    return [Problem(link.id, link.started, message, noun)]


def chain_problems(links: Sequence[Link], chain: Ends, noun: str = "run") -> list[Problem]:
    """Breaks and reordering: walk the chain by hashes and compare with the ids' order
    (``links`` in id order)."""
    out = []
    keys: dict[str, list[Link]] = {}
    for link in links:
        keys.setdefault(link.prev_hash, []).append(link)
    # A link may name a run's stored hash or (if that hash was edited) its true one.
    hashes_of = {link.id: {link.run_hash, link.true_hash} for link in links}
    known = {h for hashes in hashes_of.values() for h in hashes} | {chain.anchor_hash}
    reached: set[int] = set()
    order: list[Link] = []

    def follow(hashes: set[str]) -> None:
        while True:
            nxt = sorted((r for h in hashes for r in keys.get(h, []) if r.id not in reached),
                         key=lambda r: r.id)
            if not nxt:
                return
            reached.add(nxt[0].id)
            order.append(nxt[0])
            hashes = hashes_of[nxt[0].id]

    follow({chain.anchor_hash})
    anchor_id = chain.anchor_id
    previous_id = anchor_id
    for link in links:
        if link.id not in reached:
            if link.id - previous_id > 1:
                gone = list(range(previous_id + 1, link.id))
                place = (f"after {noun} {previous_id}" if previous_id > anchor_id
                         else "at the start of the history" if anchor_id == 0
                         else f"after the pruned {noun}s (up to {anchor_id})")
                out.append(Problem(gone[0], None, f"deleted: {_span(gone, noun)} missing "
                                   f"{place}, before {noun} {link.id} (started {link.started})",
                                   noun))
            elif link.prev_hash in known:
                out.append(Problem(link.id, link.started, f"inserted: it repeats another "
                                   f"{noun}'s link in the chain (a copied or forged {noun})",
                                   noun))
            elif previous_id == anchor_id:
                out.append(Problem(link.id, link.started, f"its previous hash does not match "
                                   f"the history's anchor: earlier {noun}s deleted and the rest "
                                   "renumbered, or the anchor edited", noun))
            else:
                out.append(Problem(link.id, link.started, f"its previous hash matches no "
                                   f"{noun}: {noun} {previous_id} was rewritten with its "
                                   f"hashes, or a {noun} before it deleted and the rest "
                                   "renumbered", noun))
            reached.add(link.id)
            order.append(link)
            follow(hashes_of[link.id])
        previous_id = link.id
    by_id = [r.id for r in links]
    chain_ids = [r.id for r in order]
    for position, (stored, chained) in enumerate(zip(by_id, chain_ids, strict=True)):
        if stored != chained:
            link = links[position]
            where = chain_ids.index(link.id)
            chain_says = f"after {noun} {chain_ids[where - 1]}" if where else "first"
            ids_say = f"after {noun} {by_id[position - 1]}" if position else "first"
            out.append(Problem(link.id, link.started, f"reordered: the hash chain puts it "
                               f"{chain_says}, its id {ids_say}", noun))
    return out


def head_problems(links: Sequence[Link], chain: Ends, noun: str = "run") -> list[Problem]:
    """The newest run must be the recorded chain head (``links`` in id order)."""
    last_id = links[-1].id if links else chain.anchor_id
    if last_id < chain.head_id:
        gone = list(range(last_id + 1, chain.head_id + 1))
        return [Problem(gone[0], None, f"deleted: {_span(gone, noun)} missing at the end (the "
                        f"chain head records {noun} {chain.head_id})", noun)]
    if last_id > chain.head_id:
        last = links[-1]
        return [Problem(last.id, last.started, f"inserted: not in the recorded chain (its "
                        f"head is {noun} {chain.head_id})", noun)]
    if not links:
        if chain.head_hash != chain.anchor_hash:
            return [Problem(None, None, "the chain head and anchor disagree (chain_meta "
                            "edited)")]
        return []
    last = links[-1]
    if chain.head_hash not in {last.run_hash, last.true_hash}:
        return [Problem(last.id, last.started, f"its hash differs from the recorded chain "
                        f"head: the {noun} was rewritten with its hashes", noun)]
    return []
