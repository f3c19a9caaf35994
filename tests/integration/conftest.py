"""Fixtures for end-to-end pipeline tests: the app under per-module settings.

A test module may set `PIPELINE_ENV` (extra app settings) and `PIPELINE_EMULATOR` (the name
of a fixture giving the Speech emulator to use; default the session's `scripted_emulator`).
`make_pipeline` gives a test pipelines of its own, each against its own emulator.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devhost.services import Azurite, SpeechEmulator
from shared.retry import set_testing
from shared.runtime import runtime_for
from shared.settings import get_settings
from tests.conftest import EmulatorFactory
from tests.integration.harness import (
    FastClock,
    Pipeline,
    PipelineFactory,
    env_for,
    import_function_app,
    patched_env,
    running_pipeline,
)


@pytest.fixture(scope="module")
def pipeline(request: pytest.FixtureRequest, azurite: Azurite) -> Iterator[Pipeline]:
    """`function_app` imported under settings of its own (containers, table, queue)."""
    emulator = request.getfixturevalue(
        getattr(request.module, "PIPELINE_EMULATOR", "scripted_emulator")
    )
    env = {**env_for(azurite, emulator, "pl"), **getattr(request.module, "PIPELINE_ENV", {})}
    with running_pipeline(azurite, emulator, env) as pipe:
        yield pipe


@pytest.fixture
def make_pipeline(
    azurite: Azurite, speech_emulator_factory: EmulatorFactory
) -> Iterator[PipelineFactory]:
    """A pipeline against an emulator of its own started with `args`, app clock 60x fast."""
    made: list[tuple[Pipeline, Any, Any]] = []

    def make(*args: str, **settings: str) -> Pipeline:
        emulator: SpeechEmulator = speech_emulator_factory("--engine", "scripted", *args)
        env = {**env_for(azurite, emulator, "fi"), **settings}
        patch = patched_env(env)
        patch.__enter__()
        pipe = Pipeline(env=env, azurite=azurite, emulator=emulator, module=import_function_app())
        rt = runtime_for(get_settings())
        made.append((pipe, patch, rt.clock))
        rt.clock = FastClock()
        return pipe

    with set_testing(True, attempts=2, cap=True):
        yield make
    for pipe, patch, clock in made:
        runtime_for(get_settings()).clock = clock
        pipe.close()
        patch.__exit__(None, None, None)
