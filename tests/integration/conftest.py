"""Fixtures for end-to-end pipeline tests: the app under per-module settings.

A test module may set `PIPELINE_ENV` (extra app settings) and `PIPELINE_EMULATOR` (the name
of a fixture giving the Speech emulator to use; default the session's `scripted_emulator`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devhost.services import Azurite
from tests.integration.harness import Pipeline, env_for, running_pipeline


@pytest.fixture(scope="module")
def pipeline(request: pytest.FixtureRequest, azurite: Azurite) -> Iterator[Pipeline]:
    """`function_app` imported under settings of its own (containers, table, queue)."""
    emulator = request.getfixturevalue(
        getattr(request.module, "PIPELINE_EMULATOR", "scripted_emulator")
    )
    env = {**env_for(azurite, emulator, "pl"), **getattr(request.module, "PIPELINE_ENV", {})}
    with running_pipeline(azurite, emulator, env) as pipe:
        yield pipe
