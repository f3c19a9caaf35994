"""How devhost runs the project's Azurite: with the Node.js package.json pins, not the PATH's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from devhost import services
from devhost.services import PROJECT_ROOT, ServiceError, azurite_command


def _pinned(name: str) -> str:
    manifest = json.loads((PROJECT_ROOT / "package.json").read_text(encoding="utf-8"))
    return str(manifest["devDependencies"][name])


def test_azurite_runs_on_the_pinned_node_whatever_node_is_on_path() -> None:
    node, script = azurite_command()
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"v{_pinned('node')}"
    reported = subprocess.run(
        [node, script, "--version"], capture_output=True, text=True, check=True, timeout=60
    )
    assert reported.stdout.strip() == _pinned("azurite")


def test_a_missing_install_says_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "PROJECT_ROOT", tmp_path)
    with pytest.raises(ServiceError, match=r"make setup.*npm ci"):
        azurite_command()
