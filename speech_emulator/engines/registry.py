"""Engines by name. The sphinx engine is imported only when chosen (pocketsphinx is heavy)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from speech_emulator.engines.base import CustomModel, Engine
from speech_emulator.engines.scripted import ScriptedEngine

ENGINE_NAMES = ("sphinx", "scripted")


class EngineUnavailableError(RuntimeError):
    """The chosen engine cannot run here (unknown name, missing module or dependency)."""


def create_engine(name: str, custom_models: Mapping[str, CustomModel]) -> Engine:
    """Build the engine called ``name``; custom models are keyed by model id."""
    if name == "scripted":
        return ScriptedEngine()
    if name == "sphinx":
        try:
            module = importlib.import_module("speech_emulator.engines.sphinx")
        except ImportError as exc:
            if exc.name == "speech_emulator.engines.sphinx":
                reason = "speech_emulator/engines/sphinx.py is missing from this checkout"
            else:
                reason = f"{exc}; install pocketsphinx with pip install -r requirements-dev.txt"
            raise EngineUnavailableError(
                f"the sphinx engine cannot be loaded ({reason}). Start with --engine scripted "
                "to run without it."
            ) from exc
        engine_class = getattr(module, "SphinxEngine", None)
        if engine_class is None:
            raise EngineUnavailableError(
                "speech_emulator.engines.sphinx has no SphinxEngine; use --engine scripted"
            )
        engine: Engine = engine_class(custom_models)
        return engine
    raise EngineUnavailableError(f"unknown engine {name!r}; choose one of {ENGINE_NAMES}")
