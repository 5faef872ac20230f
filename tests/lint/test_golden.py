"""Golden tests of ``hostguard lint`` output: one bad input per file, exact expected output.

Each ``tests/lint/golden/<name>.yaml`` holds one mistake (``non-utf8.yaml`` is Latin-1 bytes
on purpose, ``empty.yaml`` is empty); ``<name>.<format>.expected`` is the exact stdout of::

    python -m agent lint --today 2026-11-24 tests/lint/golden/<name>.yaml --format <format>

run from the project root, for the formats ``text`` and ``github`` (and ``json`` for a few).

After an intended change of messages or positions, regenerate and review every diff by eye
(message clear? position on the offending node?) before committing:

    UPDATE_GOLDEN=1 PYTHONPATH=. pytest tests/lint/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support import PROJECT, run_cli

GOLDEN = Path(__file__).resolve().parent / "golden"
RELATIVE = GOLDEN.relative_to(PROJECT).as_posix()
UPDATE = os.environ.get("UPDATE_GOLDEN", "") not in ("", "0")
CASES = sorted(p.stem for p in GOLDEN.glob("*.yaml"))
JSON_CASES = ("extends-cycle-a", "unknown-key", "waiver-expired")
PARAMS = [(case, fmt) for case in CASES for fmt in ("text", "github")] + [
    (case, "json") for case in JSON_CASES
]


def lint(case: str, fmt: str) -> tuple[int, str, str]:
    result = run_cli("lint", "--today", "2026-11-24", f"{RELATIVE}/{case}.yaml",
                     "--format", fmt, cwd=PROJECT)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize(("case", "fmt"), PARAMS, ids=[f"{c}.{f}" for c, f in PARAMS])
def test_golden(case: str, fmt: str) -> None:
    code, out, err = lint(case, fmt)
    expected = GOLDEN / f"{case}.{fmt}.expected"
    if UPDATE:
        expected.write_text(out, encoding="utf-8")
    assert (code, err) == (1, ""), "every golden input holds an error"
    assert out == expected.read_text(encoding="utf-8")


def test_golden_cases_cover_the_list() -> None:
    assert set(CASES) >= {
        "alias-bomb", "bad-glob", "duplicate-key", "empty", "extends-cycle-a",
        "extends-cycle-b", "extends-missing", "invalid-regex", "non-utf8", "not-a-policy",
        "sysctl-op-value", "tabs", "unknown-key", "unknown-kind", "waiver-expired",
        "waiver-no-reason", "waiver-unknown-check", "wrong-type",
    }


def test_no_stale_expected_files() -> None:
    wanted = {f"{case}.{fmt}.expected" for case, fmt in PARAMS}
    assert sorted(p.name for p in GOLDEN.glob("*.expected")) == sorted(wanted)


def test_non_utf8_input_really_is_not_utf8() -> None:
    raw = (GOLDEN / "non-utf8.yaml").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert (GOLDEN / "empty.yaml").read_bytes() == b""
    assert b"\t" in (GOLDEN / "tabs.yaml").read_bytes()


@pytest.mark.parametrize("case", JSON_CASES)
def test_json_goldens_agree_with_text(case: str) -> None:
    # The json and text goldens are one report: same diagnostics, same counts.
    body = json.loads((GOLDEN / f"{case}.json.expected").read_text(encoding="utf-8"))
    text = (GOLDEN / f"{case}.text.expected").read_text(encoding="utf-8").splitlines()
    shown = [f"{d['path']}:{d['line']}:{d['column']}: {d['level']}: {d['message']} "
             f"[{d['rule']}]" for d in body["diagnostics"]]
    assert shown == text[:-1]
    assert text[-1] == (f"{body['files']} file(s) checked: {body['errors']} error(s), "
                        f"{body['warnings']} warning(s)")
