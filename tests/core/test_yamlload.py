"""The YAML layer: positions, YAML 1.2 scalars, and refusal of hostile or malformed input."""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import pytest

from agent.core import yamlload
from agent.core.location import Location
from agent.core.yamlload import Document, LoadError, load_bytes, load_file
from tests.support import need

NAME = "p.yaml"


def load(text: str | bytes) -> Document:
    """The document of ``text``; fails the test on a load error."""
    result = load_bytes(text.encode() if isinstance(text, str) else text, NAME)
    assert isinstance(result, Document), result
    return result


def refuse(text: str | bytes) -> LoadError:
    """The load error of ``text``; fails the test when it loads."""
    result = load_bytes(text.encode() if isinstance(text, str) else text, NAME)
    assert isinstance(result, LoadError), result
    return result


def at(line: int, col: int) -> Location:
    return Location(NAME, line, col)


# --- positions -------------------------------------------------------------------------------

BLOCK = """\
a: 1
b:
  c: [x, {d: e}]
  f:
    - g
    - h: i
"""


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        (("a",), (1, 4), (1, 1)),
        (("b",), (3, 3), (2, 1)),
        (("b", "c"), (3, 6), (3, 3)),
        (("b", "c", 0), (3, 7), None),
        (("b", "c", 1), (3, 10), None),
        (("b", "c", 1, "d"), (3, 14), (3, 11)),
        (("b", "f"), (5, 5), (4, 3)),
        (("b", "f", 0), (5, 7), None),
        (("b", "f", 1, "h"), (6, 10), (6, 7)),
    ],
)
def test_block_positions_of_values_and_keys(
    path: tuple[str | int, ...], value: tuple[int, int], key: tuple[int, int] | None
) -> None:
    doc = load(BLOCK)
    assert doc.data == {"a": 1, "b": {"c": ["x", {"d": "e"}], "f": ["g", {"h": "i"}]}}
    assert doc.at(path) == at(*value)
    assert doc.key_positions.get(path) == (at(*key) if key else None)


def test_flow_positions_of_values_and_keys() -> None:
    doc = load('{a: [1, {b: 2}], "c": d, e: {}}')
    assert doc.at(()) == at(1, 1)
    assert doc.at(("a",)) == at(1, 5)
    assert doc.key_at(("a",)) == at(1, 2)
    assert doc.at(("a", 1)) == at(1, 9)
    assert doc.at(("a", 1, "b")) == at(1, 13)
    assert doc.key_at(("a", 1, "b")) == at(1, 10)
    assert doc.key_at(("c",)) == at(1, 18)  # the opening quote
    assert doc.at(("c",)) == at(1, 23)
    assert doc.at(("e",)) == at(1, 29)


def test_missing_paths_fall_back_to_the_nearest_ancestor() -> None:
    doc = load(BLOCK)
    assert doc.at(("b", "c", 7, "zz")) == at(3, 6)
    assert doc.key_at(("b", "c", 0)) == at(3, 7)  # a list item has no key: its value
    assert doc.at(("nope",)) == at(1, 1)


def test_columns_count_characters_not_bytes() -> None:
    doc = load("x: ééé\ny: [é, 5]\n")
    assert doc.at(("y", 1)) == at(2, 8)


def test_crlf_line_ends() -> None:
    doc = load(b"a: 1\r\nb:\r\n  - 2\r\n")
    assert doc.data == {"a": 1, "b": [2]}
    assert doc.at(("b", 0)) == at(3, 5)


def test_utf8_bom_is_accepted_and_not_counted() -> None:
    doc = load(b"\xef\xbb\xbfa: 1\nb: x\n")
    assert doc.data == {"a": 1, "b": "x"}
    assert doc.at(("a",)) == at(1, 4)
    assert doc.key_at(("a",)) == at(1, 1)


def test_digest_is_of_the_bytes() -> None:
    raw = b"a: 1\n"
    assert load(raw).sha256 == hashlib.sha256(raw).hexdigest()


# --- scalars: YAML 1.2 core schema -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("off", "off"),
        ("on", "on"),
        ("yes", "yes"),
        ("no", "no"),
        ("y", "y"),
        ("true", True),
        ("True", True),
        ("FALSE", False),
        ("2027-03-31", "2027-03-31"),
        ("2027-03-31T10:00:00Z", "2027-03-31T10:00:00Z"),
        ("12:30", "12:30"),  # YAML 1.1 sexagesimal
        ("0x1f", 31),
        ("0o17", 15),
        ("017", 17),  # YAML 1.2: decimal, not octal
        ("0b101", "0b101"),  # YAML 1.1 binary
        ("1_000", "1_000"),  # YAML 1.1 digit separators
        ("-0x1f", "-0x1f"),
        ("+12", 12),
        ("-7", -7),
        ("1e3", 1000.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("~", None),
        ("null", None),
        ("", None),
        (".inf", math.inf),
        ("-.Inf", -math.inf),
        ("'true'", "true"),
        ('"0x1f"', "0x1f"),
        ("!!str 5", "5"),
        ("!!int '7'", 7),
        ("!!float 1", 1.0),
        ("!!bool true", True),
        ("!!null ''", None),
    ],
)
def test_scalars_follow_yaml_1_2(text: str, expected: object) -> None:
    value = load(f"v: {text}\n").data["v"]
    assert value == expected
    assert type(value) is type(expected)


def test_nan() -> None:
    assert math.isnan(load("v: .nan\n").data["v"])


def test_mapping_keys_are_always_strings() -> None:
    assert load("1: a\ntrue: b\nnull: c\n2027-01-01: d\n").data == {
        "1": "a", "true": "b", "null": "c", "2027-01-01": "d",
    }


@pytest.mark.parametrize(("text", "message"), [
    ("v: !!int x\n", "'x' is not a valid int"),
    ("v: !!bool yes\n", "'yes' is not a valid bool"),
])
def test_tagged_scalar_that_does_not_match_its_tag(text: str, message: str) -> None:
    err = refuse(text)
    assert (err.location, err.message, err.rule) == (at(1, 4), message, "yaml-syntax")


def test_huge_integer_literal() -> None:
    digits = "9" * 1000
    assert load(f"v: {digits}\n").data["v"] == int(digits)
    # Past Python's int() digit limit the literal is kept as text rather than raising.
    huge = "9" * 5000
    assert load(f"v: {huge}\n").data["v"] == huge


# --- duplicate and odd keys ------------------------------------------------------------------


def test_duplicate_key_is_located_at_the_second_and_names_the_first() -> None:
    err = refuse("a: 1\nb: 2\na: 3\n")
    assert err.location == at(3, 1)
    assert err.message == "duplicate key 'a' (first at line 1, column 1)"
    assert err.rule == "duplicate-key"


def test_nested_duplicate_key() -> None:
    err = refuse("top:\n  x: 1\n  y: 2\n  x: 3\n")
    assert (err.location, err.message) == (
        at(4, 3), "duplicate key 'x' (first at line 2, column 3)",
    )


def test_duplicate_key_in_flow_style() -> None:
    err = refuse("m: {a: 1, b: 2, a: 2}\n")
    assert (err.location, err.message, err.rule) == (
        at(1, 17), "duplicate key 'a' (first at line 1, column 5)", "duplicate-key",
    )


def test_duplicate_key_message_stays_on_one_line() -> None:
    err = refuse('"a\\nb": 1\n"a\\nb": 2\n')
    assert err.message == "duplicate key 'a\\nb' (first at line 1, column 1)"
    long_key = "k" * 1000
    err = refuse(f"{long_key}: 1\n{long_key}: 2\n")
    assert err.message == f"duplicate key '{'k' * 56}... (first at line 1, column 1)"


def test_same_key_in_sibling_mappings_is_fine() -> None:
    assert load("- a: 1\n- a: 2\n").data == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize(("text", "where"), [
    ("? [a]\n: 1\n", at(1, 3)),
    ("? {a: 1}\n: 1\n", at(1, 3)),
    ("&k a: 1\n", at(1, 1)),
    ("!!int 1: a\n", at(1, 1)),
])
def test_complex_keys_are_refused(text: str, where: Location) -> None:
    err = refuse(text)
    assert (err.location, err.message, err.rule) == (
        where, "mapping keys must be plain strings", "yaml-key",
    )


def test_alias_as_key_is_refused() -> None:
    err = refuse("a: &x k\n*x : 1\n")
    assert (err.location, err.rule) == (at(2, 1), "yaml-key")


# --- anchors, aliases and merge keys ---------------------------------------------------------


def test_alias_repeats_the_anchored_value() -> None:
    assert load("a: &x [1, 2]\nb: *x\n").data == {"a": [1, 2], "b": [1, 2]}


@pytest.mark.parametrize("text", [
    "base: &b {a: 1, b: 2}\nc:\n  <<: *b\n  b: 3\n",
    "base: &b {a: 1, b: 2}\nc:\n  b: 3\n  <<: *b\n",
])
def test_merge_key_explicit_keys_win(text: str) -> None:
    doc = load(text)
    assert doc.data["c"] == {"a": 1, "b": 3}
    assert doc.key_at(("c", "b")).col == 3  # the explicit key, wherever the merge is


def test_merge_of_several_mappings_first_wins() -> None:
    doc = load("x: &x {a: 1}\ny: &y {a: 2, b: 2}\nz:\n  <<: [*x, *y]\n")
    assert doc.data["z"] == {"a": 1, "b": 2}
    assert doc.key_at(("z", "a")) == at(4, 7)  # merged keys point at the merge


def test_merge_keys_do_not_count_as_duplicates() -> None:
    assert load("<<: {a: 1}\n<<: {b: 2}\n").data == {"a": 1, "b": 2}


def test_merge_of_a_scalar_is_refused() -> None:
    err = refuse("<<: 5\n")
    assert (err.location, err.message, err.rule) == (
        at(1, 5), "a '<<' merge key takes a mapping or a list of them", "yaml-key",
    )


def test_quoted_merge_key_is_an_ordinary_key() -> None:
    assert load("'<<': {a: 1}\nb: 2\n").data == {"<<": {"a": 1}, "b": 2}
    assert load('"<<": 5\n').data == {"<<": 5}


@pytest.mark.parametrize(("text", "where"), [
    ("a: &a [*a]\n", at(1, 8)),
    ("x: &a {b: *a}\n", at(1, 11)),
    ("x: &a\n  y:\n    - *a\n", at(3, 7)),
])
def test_recursive_alias_is_refused(text: str, where: Location) -> None:
    err = refuse(text)
    assert (err.location, err.rule) == (where, "yaml-syntax")
    assert err.message == "recursive alias: *a refers to a node that contains it"


def test_undefined_alias_is_refused() -> None:
    err = refuse("a: *nowhere\n")
    assert (err.location, err.message, err.rule) == (
        at(1, 4), "alias *nowhere names no complete anchor", "yaml-syntax",
    )


def billion_laughs(levels: int = 9) -> bytes:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghijklmnop"[: levels - 1]:
        refs = ",".join([f"*{previous}"] * 9)
        lines.append(f"{name}: &{name} [{refs}]")
        previous = name
    return ("\n".join(lines) + "\n").encode()


def test_alias_bomb_is_refused_with_yaml_limits() -> None:
    start = time.perf_counter()
    err = refuse(billion_laughs())
    elapsed = time.perf_counter() - start
    assert err.rule == "yaml-limits"
    assert err.message == (f"document expands to more than {yamlload.MAX_NODES} nodes "
                           "(alias bomb?)")
    assert err.location.line < 9  # stopped on the way, not after building it all
    assert elapsed < 5  # ~10^9 nodes if expanded; the bound stops it after 2 * 10^5


def test_many_plain_nodes_hit_the_same_bound() -> None:
    err = refuse("[" + "1," * (yamlload.MAX_NODES + 1) + "1]")
    assert err.rule == "yaml-limits"


# --- tags ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "tag"), [
    ("a: !!python/object:os.system x\n", "!!python/object:os.system"),
    ("a: !!python/object {x: 1}\n", "!!python/object"),
    ("a: !!python/object/apply:os.system [ls]\n", "!!python/object/apply:os.system"),
    ("a: !!binary aGk=\n", "!!binary"),
    ("a: !!timestamp 2027-01-01\n", "!!timestamp"),
    ("a: !!set {x}\n", "!!set"),
    ("a: !custom x\n", "!custom"),
])
def test_unknown_tags_are_refused(text: str, tag: str) -> None:
    err = refuse(text)
    assert (err.location, err.message, err.rule) == (
        at(1, 4), f"unsupported YAML tag {tag}", "yaml-syntax",
    )


def test_standard_collection_tags_are_fine() -> None:
    assert load("!!map {a: !!seq [1]}\n").data == {"a": [1]}


# --- depth -----------------------------------------------------------------------------------


def test_nesting_at_the_limit_loads() -> None:
    depth = yamlload.MAX_DEPTH
    assert isinstance(load("[" * depth + "]" * depth).data, list)


@pytest.mark.parametrize(("text", "where"), [
    pytest.param("[" * 65 + "]" * 65, at(1, 65), id="flow-65"),
    pytest.param("[" * 10_000 + "]" * 10_000, at(1, 1001), id="flow-seq-10000"),
    pytest.param("{a: " * 10_000 + "1" + "}" * 10_000, at(1, 257), id="flow-map-10000"),
    pytest.param("".join("  " * i + "k:\n" for i in range(10_000)), at(65, 129),
                 id="block-map-10000"),
    pytest.param("- " * 10_000 + "x\n", at(1, 129), id="block-seq-10000"),
])
def test_deep_nesting_is_refused_without_recursion(text: str, where: Location) -> None:
    err = refuse(text)
    assert (err.location, err.message, err.rule) == (
        where, f"nesting deeper than {yamlload.MAX_DEPTH} levels", "yaml-limits",
    )


# --- files that are not one document ---------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"# only a comment\n", b"\n\n   \n", b"\xef\xbb\xbf"])
def test_no_document(raw: bytes) -> None:
    err = refuse(raw)
    assert (err.location, err.message, err.rule) == (
        at(1, 1), "file holds no YAML document", "empty-file",
    )


def test_explicit_empty_document_is_null() -> None:
    assert load("---\n").data is None


def test_multiple_documents() -> None:
    err = refuse("a: 1\n---\nb: 2\n")
    assert (err.location, err.message, err.rule) == (
        at(2, 1), "file holds more than one YAML document", "multiple-documents",
    )


# --- bytes that are not YAML text ------------------------------------------------------------


@pytest.mark.parametrize(("raw", "where", "byte"), [
    (b"a: 1\nb: caf\xe9\n", at(2, 7), 0xE9),
    ("b: é".encode() + b"\xff\n", at(1, 5), 0xFF),  # column in characters
    (b"\xef\xbb\xbfa: \xff\n", at(1, 4), 0xFF),  # the BOM is not a column
    (b"\xff\xfea\x00:\x00", at(1, 1), 0xFF),  # UTF-16
    (b"a: \xed\xa0\x80\n", at(1, 4), 0xED),  # an encoded surrogate
])
def test_non_utf8_is_located_at_the_bad_byte(raw: bytes, where: Location, byte: int) -> None:
    err = refuse(raw)
    assert (err.location, err.rule) == (where, "encoding")
    assert err.message == f"not UTF-8 text: byte 0x{byte:02x} cannot be decoded"


@pytest.mark.parametrize(("raw", "where"), [
    (b"a: 1\x00\nb: 2\n", at(1, 5)),
    ("a: 1\néé: x\x01\n".encode(), at(2, 6)),  # column in characters, not bytes
    (b"\xef\xbb\xbfa: \x00", at(1, 4)),
])
def test_control_characters_are_located(raw: bytes, where: Location) -> None:
    err = refuse(raw)
    assert (err.location, err.message, err.rule) == (
        where, "control characters are not allowed", "yaml-syntax",
    )


def test_binary_junk_is_refused() -> None:
    elf = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4
    assert refuse(elf).rule in ("encoding", "yaml-syntax")


@pytest.mark.parametrize(("text", "where"), [
    ("a:\n\tb: 1\n", at(2, 1)),
    ("a: 1\n\tb: 2\n", at(2, 1)),
    ("a:\n  - 1\n\t- 2\n", at(3, 1)),
    ("a:\n  b: 1\n \tc: 2\n", at(3, 2)),
    ("\ta: 1\n", at(1, 1)),
])
def test_tab_indentation_is_explained(text: str, where: Location) -> None:
    err = refuse(text)
    assert (err.location, err.rule) == (where, "yaml-syntax")
    assert "tab" in err.message
    assert "use spaces" in err.message


def test_tabs_as_separators_are_fine() -> None:
    assert load("a:\tb\nc: [1,\t2]\n").data == {"a": "b", "c": [1, 2]}


def test_syntax_error_is_located() -> None:
    err = refuse("a: [1, 2\nb: 3\n")
    assert err.rule == "yaml-syntax"
    assert err.location.line >= 2
    assert err.message


# --- files -----------------------------------------------------------------------------------


def test_load_file_uses_the_display_name(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: [1, 2]\n")
    doc = load_file(path, "shown.yaml")
    assert isinstance(doc, Document)
    assert doc.path == "shown.yaml"
    assert doc.at(("a", 1)) == Location("shown.yaml", 1, 8)


def test_missing_file_is_a_read_error(tmp_path: Path) -> None:
    err = load_file(tmp_path / "absent.yaml", "absent.yaml")
    assert err == LoadError(Location("absent.yaml"),
                            "cannot read file: No such file or directory", "read-error")


def test_folder_is_a_read_error(tmp_path: Path) -> None:
    err = load_file(tmp_path, "dir.yaml")
    assert isinstance(err, LoadError)
    assert (err.location, err.rule) == (Location("dir.yaml"), "read-error")


def _bytes_read_by_this_process() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_large_file_is_refused_unread(tmp_path: Path) -> None:
    need(Path("/proc/self/io").exists(), "needs /proc/self/io to count bytes read")
    path = tmp_path / "big.yaml"
    with path.open("wb") as handle:
        handle.write(b"a: 1\n")
        handle.truncate(20 * 1024 * 1024)
    before = _bytes_read_by_this_process()
    err = load_file(path, "big.yaml")
    read = _bytes_read_by_this_process() - before
    assert err == LoadError(Location("big.yaml"),
                            "file is larger than the 2 MiB limit for a policy", "file-too-large")
    assert read <= yamlload.MAX_BYTES + 64 * 1024  # the limit plus one, not 20 MB


def test_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    body = b"a: 1\n"
    path.write_bytes(body + b"#" * (yamlload.MAX_BYTES - len(body)))
    assert isinstance(load_file(path), Document)
    path.write_bytes(body + b"#" * (yamlload.MAX_BYTES - len(body) + 1))
    err = load_file(path)
    assert isinstance(err, LoadError)
    assert err.rule == "file-too-large"
