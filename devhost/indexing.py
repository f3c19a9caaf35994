"""Import a Functions app module and index its functions through the azure.functions API."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, get_type_hints

import azure.functions as func


class AppLoadError(RuntimeError):
    """The app module could not be imported or holds no functions."""


@dataclass(frozen=True)
class FunctionSpec:
    """One indexed function: its name, bindings (as in function.json) and Python callable."""

    name: str
    bindings: tuple[dict[str, Any], ...]
    user_function: Callable[..., Any]

    @property
    def trigger(self) -> dict[str, Any]:
        """The function's trigger binding."""
        return next(b for b in self.bindings if str(b.get("type", "")).endswith("Trigger"))

    @property
    def trigger_type(self) -> str:
        """`blobTrigger`, `queueTrigger`, `timerTrigger`, `httpTrigger`, ..."""
        return str(self.trigger["type"])

    def annotation(self, parameter: str) -> Any:
        """The type annotation of `parameter` (resolved), or None when it has none."""
        try:
            hints = get_type_hints(self.user_function)
        except (NameError, TypeError):
            hints = dict(getattr(self.user_function, "__annotations__", {}))
        return hints.get(parameter)

    def parameters(self) -> list[str]:
        """The user function's parameter names, in order."""
        return list(inspect.signature(self.user_function).parameters)


def import_app_module(target: str, root: Path) -> ModuleType:
    """Import `target` (a `.py` path relative to `root`, or a dotted module name).

    `root` goes first on sys.path, as the Functions worker does with the app directory, so
    the app imports its own packages (e.g. `shared`) unmodified.
    """
    root = root.resolve()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        if target.endswith(".py"):
            path = (root / target).resolve()
            if not path.exists():
                raise AppLoadError(f"app file {path} does not exist; pass --app or --root.")
            name = path.stem
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise AppLoadError(f"cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(target)
    except AppLoadError:
        raise
    except Exception as exc:
        raise AppLoadError(
            f"importing the app {target!r} from {root} failed: {type(exc).__name__}: {exc}"
        ) from exc


def find_function_app(module: ModuleType) -> func.FunctionApp:
    """The module's FunctionApp instance (the worker looks it up the same way)."""
    apps = [v for v in vars(module).values() if isinstance(v, func.FunctionApp)]
    if not apps:
        raise AppLoadError(
            f"module {module.__name__!r} defines no azure.functions.FunctionApp; "
            "the v2 programming model needs `app = func.FunctionApp()` in it."
        )
    if len(apps) > 1:
        raise AppLoadError(f"module {module.__name__!r} defines more than one FunctionApp.")
    return apps[0]


def index_app(app: func.FunctionApp) -> list[FunctionSpec]:
    """Index every function of `app`.

    `app.get_functions()` may be called only once per app object (a second call raises a
    duplicate-name ValueError), so callers index once and keep the result.
    """
    specs: list[FunctionSpec] = []
    for function in app.get_functions():
        document = json.loads(function.get_function_json())
        specs.append(
            FunctionSpec(
                name=str(function.get_function_name()),
                bindings=tuple(document["bindings"]),
                user_function=function.get_user_function(),
            )
        )
    if not specs:
        raise AppLoadError("the app defines no functions.")
    return specs


def load_functions(target: str, root: Path) -> list[FunctionSpec]:
    """Import the app `target` under `root` and index its functions."""
    return index_app(find_function_app(import_app_module(target, root)))
