"""Fixtures for end-to-end pipeline tests: the app under per-module settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devhost.services import Azurite, SpeechEmulator
from tests.integration.harness import Pipeline, env_for, import_function_app, patched_env


@pytest.fixture(scope="module")
def pipeline(azurite: Azurite, scripted_emulator: SpeechEmulator) -> Iterator[Pipeline]:
    """`function_app` imported under settings of its own (containers, table, queue)."""
    env = env_for(azurite, scripted_emulator, "pl")
    with patched_env(env):
        module = import_function_app()
        pipe = Pipeline(env=env, azurite=azurite, emulator=scripted_emulator, module=module)
        try:
            yield pipe
        finally:
            pipe.close()
