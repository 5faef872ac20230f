"""agent/host/dump_cache.py: stacks kept by (tid, start time, count), and the file they are
saved to, trusted only when it is ours, private, intact and from this boot."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from pathlib import Path

import pytest

from agent.host.dump_cache import CACHE_FORMAT, DumpCache
from agent.host.seccomp_dump import read_boot_id
from tests.support import need_root

ALLOW_ALL = struct.pack("<HBBI", 0x06, 0, 0, 0x7FFF0000)
"""``ret SECCOMP_RET_ALLOW``: the smallest filter there is."""
LOAD_NR_ALLOW = struct.pack("<HBBI", 0x20, 0, 0, 0) + ALLOW_ALL
"""``ld [nr]; ret ALLOW``: another allow-all, told apart from the first by its bytes."""


def test_entries_are_kept_least_recently_used_first_out_and_retained_by_thread() -> None:
    cache = DumpCache(boot_id="b", max_entries=2)
    cache.put((10, 1, 1), (ALLOW_ALL,))
    cache.put((11, 1, 2), (LOAD_NR_ALLOW, ALLOW_ALL))
    assert cache.get((10, 1, 1)) == (ALLOW_ALL,)  # now the most recently used
    cache.put((12, 1, 1), (ALLOW_ALL[:4] + ALLOW_ALL[4:],))  # equal bytes, another object
    assert (len(cache), cache.get((11, 1, 2))) == (2, None)  # the least recently used went
    assert cache.get((10, 1, 2)) is None  # another count: another stack
    first, second = cache.get((10, 1, 1)), cache.get((12, 1, 1))
    assert first is not None and second is not None and first[0] is second[0]  # kept once
    cache.retain([(12, 1), (10, 2)])  # thread 10 with another start time is another thread
    assert (len(cache), cache.get((12, 1, 1))) == (1, (ALLOW_ALL,))


def write_cache(path: Path, doc: object, mode: int = 0o600) -> None:
    path.write_text(json.dumps(doc))
    path.chmod(mode)


def good_doc(boot: str | None) -> dict[str, object]:
    name = hashlib.sha256(ALLOW_ALL).hexdigest()
    return {"format": CACHE_FORMAT, "boot_id": boot,
            "entries": [{"tid": 4242, "start_time": 77, "filters": [name]}],
            "filters": {name: base64.b64encode(ALLOW_ALL).decode()}}


def test_cache_file_from_this_boot_loads(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    write_cache(path, good_doc("boot-a"))
    cache = DumpCache(path, boot_id="boot-a")
    assert (cache.ignored, cache.get((4242, 77, 1))) == (None, (ALLOW_ALL,))


def test_cache_file_from_another_boot_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    write_cache(path, good_doc("boot-a"))
    cache = DumpCache(path, boot_id="boot-b")
    assert len(cache) == 0
    assert cache.ignored is not None and "another boot" in cache.ignored


@pytest.mark.parametrize("damage", ["garbage", "sha", "base64", "length", "missing", "entry",
                                    "bool-tid", "format"])
def test_corrupt_cache_file_is_ignored(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "c.json"
    doc = good_doc("boot-a")
    blobs = doc["filters"]
    entries = doc["entries"]
    assert isinstance(blobs, dict) and isinstance(entries, list)
    name = next(iter(blobs))
    if damage == "garbage":
        path.write_bytes(b"\x00{not json")
        path.chmod(0o600)
    else:
        if damage == "sha":
            blobs[name] = base64.b64encode(LOAD_NR_ALLOW).decode()  # another program
        elif damage == "base64":
            blobs[name] = "!!!!"
        elif damage == "length":
            odd = b"\x06\x00\x00"
            doc["filters"] = {hashlib.sha256(odd).hexdigest(): base64.b64encode(odd).decode()}
            entries[0]["filters"] = [hashlib.sha256(odd).hexdigest()]
        elif damage == "missing":
            entries[0]["filters"] = ["0" * 64]
        elif damage == "entry":
            entries[0]["tid"] = "4242"
        elif damage == "bool-tid":
            entries[0]["tid"] = True
        elif damage == "format":
            doc["format"] = "something/else"
        write_cache(path, doc)
    cache = DumpCache(path, boot_id="boot-a")
    assert len(cache) == 0
    assert cache.ignored is not None and "corrupt" in cache.ignored


def test_cache_file_others_could_write_is_ignored(tmp_path: Path) -> None:
    need_root()
    path = tmp_path / "c.json"
    write_cache(path, good_doc("boot-a"), mode=0o644)
    assert "mode 0644" in str(DumpCache(path, boot_id="boot-a").ignored)
    path.chmod(0o600)
    os.chown(path, 65534, 65534)
    assert "owned by uid 65534" in str(DumpCache(path, boot_id="boot-a").ignored)
    link = tmp_path / "link.json"
    link.symlink_to(path)
    assert DumpCache(link, boot_id="boot-a").ignored is not None


def test_cache_without_changes_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    DumpCache(path, boot_id="b").save()
    assert not path.exists()
    assert read_boot_id() is not None
