"""The documentation tells the truth about the settings: every declared setting is listed
with its real default, in the README's short table and in docs/settings.md, and nothing
that does not exist is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.settings import iter_settings

ROOT = Path(__file__).resolve().parents[1]
_ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|\s*([^|]*)\|", re.MULTILINE)


def _rows(path: Path) -> dict[str, str]:
    """Setting name -> default cell of every settings-table row in `path`."""
    text = path.read_text(encoding="utf-8")
    return {name: cell.strip() for name, cell in _ROW.findall(text)}


def _shown_default(cell: str) -> str:
    """The default as a table cell shows it: `value`, or *(required)* / *(empty)*."""
    match = re.fullmatch(r"`([^`]*)`", cell)
    return match.group(1) if match else cell


@pytest.mark.parametrize("doc", ["README.md", "docs/settings.md"])
def test_every_setting_is_documented_with_its_default(doc: str) -> None:
    rows = _rows(ROOT / doc)
    declared = {spec.env: spec for spec in iter_settings()}
    assert declared, "no settings declared"
    missing = sorted(set(declared) - set(rows))
    unknown = sorted(set(rows) - set(declared))
    assert not missing, f"{doc} does not list {missing}"
    assert not unknown, f"{doc} documents settings that do not exist: {unknown}"
    for name, spec in declared.items():
        shown = _shown_default(rows[name])
        if spec.required:
            assert shown == "*(required)*", f"{doc}: {name} is required"
        elif spec.default_text == "":
            assert shown == "*(empty)*", f"{doc}: {name} defaults to empty, shown {shown!r}"
        else:
            assert shown == spec.default_text, (
                f"{doc}: {name} defaults to {spec.default_text!r}, documented as {shown!r}"
            )


def test_doc_links_point_to_files_that_exist() -> None:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for doc in docs:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"
