"""README.md's install block is found as the contract says (no container needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import PROJECT
from tests.systemd.readme import install_block


def test_the_readme_holds_one_install_block_that_enables_the_service() -> None:
    block = install_block(PROJECT / "README.md")
    lines = [line.strip() for line in block.splitlines()]
    assert "systemctl daemon-reload" in block
    assert any(line.endswith("systemctl enable --now hostguard") for line in lines), block


@pytest.mark.parametrize("text, problem", [
    ("no markers\n", "found 0 and 0"),
    ("<!-- install:begin -->\n```sh\ntrue\n```\n", "found 1 and 0"),
    ("<!-- install:end -->\n<!-- install:begin -->\n", "followed by one"),
    ("<!-- install:begin -->\n```bash\ntrue\n```\n<!-- install:end -->\n", ":2: the install"),
    ("<!-- install:begin -->\n```sh\na\n```\n```sh\nb\n```\n<!-- install:end -->\n",
     ":2: the install"),
])
def test_a_malformed_block_is_named(tmp_path: Path, text: str, problem: str) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(text)
    with pytest.raises(ValueError, match=problem):
        install_block(readme)


def test_the_block_text_is_returned_as_written(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- install:begin -->\n```sh\ninstall -d /x\n"
                      "systemctl daemon-reload\n```\n<!-- install:end -->\nmore\n")
    assert install_block(readme) == "install -d /x\nsystemctl daemon-reload\n"
