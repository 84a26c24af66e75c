"""The reference ships with the repository: every --help names no file outside it (the old
../shared/SPEC.md), the groups point to docs/, and every relative link of README and docs/
leads to a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]


def _commands():
    from classify.cli import main as classify
    from featx.cli import main as featx
    from finetune.cli import main as finetune

    for group in (featx, classify, finetune):
        yield group, []
        for name, cmd in group.commands.items():
            yield group, [name]


@pytest.mark.parametrize("group, args", list(_commands()),
                         ids=lambda v: getattr(v, "name", None) or " ".join(v) or "group")
def test_help_names_nothing_outside_the_repository(group: click.Group, args: list[str]):
    res = CliRunner().invoke(group, [*args, "--help"])
    assert res.exit_code == 0, res.output
    assert "SPEC" not in res.output and "shared/" not in res.output
    for ref in re.findall(r"docs/[\w./-]+\.md", res.output):
        assert (ROOT / ref).is_file(), ref
    if not args:
        assert "docs/" in res.output


def test_readme_and_docs_links_resolve():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) > 5
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "shared/SPEC" not in text, page
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (page.parent / target).exists(), f"{page.name}: {target}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in (ROOT / "docs").glob("*.md"):
        assert f"docs/{doc.name}" in readme, doc.name
