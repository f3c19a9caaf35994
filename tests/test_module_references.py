"""Docstrings and comments name modules that exist: `shared.submit`, not a long-gone
`shared.pipeline`. Checked on the source text, without importing anything."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("shared", "speech_emulator", "devhost", "bench")
SOURCES = sorted(
    [ROOT / "function_app.py", *(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))]
)
# A dotted name that starts with one of the packages: `shared.outcomes`, `devhost.host.DevHost`.
REFERENCE = re.compile(rf"(?<![\w.])((?:{'|'.join(PACKAGES)})(?:\.[A-Za-z_]\w*)+)")


def _module_file(parts: list[str]) -> Path | None:
    path = ROOT.joinpath(*parts)
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def _top_level_names(path: Path) -> frozenset[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text("utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def resolves(reference: str) -> bool:
    """True when `reference` names a module, or a top-level name in the longest module prefix."""
    parts = reference.split(".")
    for length in range(len(parts), 0, -1):
        module = _module_file(parts[:length])
        if module is None:
            continue
        rest = parts[length:]
        return not rest or rest[0] in _top_level_names(module)
    return False


def _references() -> list[tuple[str, int, str]]:
    found = []
    for path in SOURCES:
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            for match in REFERENCE.finditer(line):
                found.append((str(path.relative_to(ROOT)), number, match.group(1)))
    return found


def test_the_check_tells_real_from_missing_names() -> None:
    assert resolves("shared.submit")
    assert resolves("shared.outcomes.fail_job")
    assert resolves("devhost.host.DevHost")
    assert resolves("speech_emulator.engines.scripted")
    assert not resolves("shared.pipeline")
    assert not resolves("shared.outcomes.no_such_function")
    assert len(_references()) > 50  # the scan does see the docstrings


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_reference_in_the_source_exists(package: str) -> None:
    missing = [
        f"{path}:{line}: {ref}"
        for path, line, ref in _references()
        if ref.split(".")[0] == package and not resolves(ref)
    ]
    assert missing == []
