"""Session-wide fixtures: real Azurite and the real Speech emulator, as subprocesses.

Both start on free ports with their data in pytest's temp directory, so the suite never
touches a developer's own Azurite on 10000-10002 and leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devhost.services import Azurite, SpeechEmulator, start_azurite, start_speech_emulator

EmulatorFactory = Callable[..., SpeechEmulator]


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite for the session; tests isolate themselves by container/queue/table names."""
    base = tmp_path_factory.mktemp("azurite")
    service = start_azurite(base / "data", log_path=base / "azurite.log")
    try:
        yield service
    finally:
        service.close()


@pytest.fixture
def speech_emulator_factory(tmp_path: Path) -> Iterator[EmulatorFactory]:
    """Start emulators with the given CLI options; all are stopped when the test ends."""
    started: list[SpeechEmulator] = []

    def start(*args: str, key: str = "local-dev-key") -> SpeechEmulator:
        emulator = start_speech_emulator(
            *args, key=key, log_path=tmp_path / f"emulator-{len(started)}.log"
        )
        started.append(emulator)
        return emulator

    try:
        yield start
    finally:
        for emulator in started:
            emulator.stop()


@pytest.fixture(scope="session")
def scripted_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpeechEmulator]:
    """A shared emulator with the deterministic `scripted` engine and instant jobs.

    Tests that change its faults or clock must restore them (or use the factory instead).
    """
    base = tmp_path_factory.mktemp("emulator")
    emulator = start_speech_emulator(
        "--engine", "scripted", "--instant", log_path=base / "emulator.log"
    )
    try:
        yield emulator
    finally:
        emulator.stop()
