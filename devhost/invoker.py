"""Invoke one function the way the Functions host does: bind arguments, run, log, deliver outputs.

Every execution is logged like `func start` does:
`Executing 'Functions.<name>' (Reason='...', Id=<uuid>)` then
`Executed 'Functions.<name>' (Succeeded|Failed, Id=<uuid>, Duration=<ms>ms)`.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions import _abc as func_abc

from devhost.bindings import Bindings
from devhost.host_config import HostConfig
from devhost.indexing import FunctionSpec
from devhost.queue_watcher import SharedQueueWatcher
from devhost.setting_refs import BindingConfigError

log = logging.getLogger("devhost")

# The function whose code is running on this thread; the log filter shows it on app logs.
current_function: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "devhost_current_function", default=None
)


@dataclass(frozen=True)
class Outcome:
    """The result of one execution."""

    invocation_id: str
    function: str
    succeeded: bool
    duration_ms: float
    result: Any = None
    error: BaseException | None = None


class OutputValue(func.Out[Any]):
    """The object an output-binding parameter receives (`func.Out`), as the worker passes it."""

    def __init__(self) -> None:
        self._value: Any = None
        self.was_set = False

    def set(self, val: Any) -> None:
        self._value = val
        self.was_set = True

    def get(self) -> Any:
        return self._value


class _Context(func_abc.Context):
    """The `context` argument: invocation id, function name and directory."""

    def __init__(self, invocation_id: str, name: str, directory: str) -> None:
        self._id = invocation_id
        self._name = name
        self._directory = directory
        self._local = threading.local

    @property
    def invocation_id(self) -> str:
        return self._id

    @property
    def thread_local_storage(self) -> type[threading.local]:
        return self._local

    @property
    def function_name(self) -> str:
        return self._name

    @property
    def function_directory(self) -> str:
        return self._directory

    @property
    def trace_context(self) -> func_abc.TraceContext:
        raise NotImplementedError("devhost has no distributed tracing context")

    @property
    def retry_context(self) -> func_abc.RetryContext:
        raise NotImplementedError("devhost has no retry policies")


class Invoker:
    """Runs one function: binds inputs and outputs around a trigger value."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        settings: Mapping[str, str],
        host: HostConfig,
        root: Path,
        watcher: SharedQueueWatcher | None = None,
    ) -> None:
        self._bindings = Bindings(spec, settings=settings, host=host, watcher=watcher)
        self.spec = spec
        self._settings = settings
        self._host = host
        self._root = root

    def __call__(
        self,
        reason: str,
        trigger_value: Any,
        metadata: Mapping[str, str] | None = None,
        *,
        bind: Callable[[], Any] | None = None,
    ) -> Outcome:
        """Execute the function once; never raises (failures are in the Outcome).

        `bind`, when given, builds the trigger value inside the execution, so a binding
        failure (e.g. the blob vanished) is a failed execution, logged as the host does.
        """
        invocation_id = str(uuid.uuid4())
        name = self.spec.name
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", name, reason, invocation_id)
        start = time.monotonic()
        token = current_function.set(name)
        try:
            value = bind() if bind is not None else trigger_value
            result = self._run(invocation_id, value, dict(metadata or {}))
        except Exception as exc:
            duration = (time.monotonic() - start) * 1000
            log.error(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)",
                name,
                invocation_id,
                duration,
                exc_info=exc,
            )
            return Outcome(invocation_id, name, False, duration, error=exc)
        finally:
            current_function.reset(token)
        duration = (time.monotonic() - start) * 1000
        timeout = self._host.function_timeout
        if timeout is not None and duration > timeout * 1000:
            log.warning(
                "Function 'Functions.%s' (Id=%s) ran %.0f s, longer than functionTimeout "
                "(%.0f s); the Functions host would have stopped it.",
                name,
                invocation_id,
                duration / 1000,
                timeout,
            )
        log.info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)",
            name,
            invocation_id,
            duration,
        )
        return Outcome(invocation_id, name, True, duration, result=result)

    def _run(self, invocation_id: str, trigger_value: Any, metadata: dict[str, str]) -> Any:
        spec = self.spec
        trigger_name = spec.trigger["name"]
        by_name = {b["name"]: b for b in spec.bindings}
        kwargs: dict[str, Any] = {}
        outs: dict[str, OutputValue] = {}
        for param in spec.parameters():
            binding = by_name.get(param)
            if param == trigger_name:
                kwargs[param] = trigger_value
            elif binding is not None and str(binding.get("direction")).lower() == "out":
                outs[param] = kwargs[param] = OutputValue()
            elif binding is not None:
                kwargs[param] = self._bindings.blob_input(
                    binding, self.spec.annotation(param), metadata
                )
            elif param == "context":
                kwargs[param] = _Context(invocation_id, spec.name, str(self._root))
            else:
                raise BindingConfigError(
                    f"Function '{spec.name}': parameter '{param}' matches no binding."
                )
        function = spec.user_function
        if inspect.iscoroutinefunction(function):
            result = asyncio.run(function(**kwargs))
        else:
            result = function(**kwargs)
        for param, out in outs.items():
            if not out.was_set:
                continue
            if by_name[param]["type"] == "http":
                result = out.get()  # an HTTP response set through func.Out[HttpResponse]
            else:
                self._bindings.deliver(by_name[param], out.get(), metadata)
        returned = by_name.get("$return")
        if returned is not None and returned["type"] != "http" and result is not None:
            self._bindings.deliver(returned, result, metadata)
        return result


class FunctionLogFilter(logging.Filter):
    """Adds `function` (e.g. `Functions.on_blob: `) to records logged by a running function."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = current_function.get()
        record.function = f"Functions.{name}: " if name and record.name != "devhost" else ""
        return True
