"""Non-trigger bindings: blob input, blob and queue outputs, binding expressions.

Paths and queue names may use app settings (`%NAME%`) and trigger metadata (`{name}`,
`{queueTrigger}`); outputs create their container or queue on demand, as the host does,
and a queue output wakes this host's listeners of that queue (`devhost.queue_watcher`).
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from devhost.blob_binding import blob_argument
from devhost.connections import DEFAULT_CONNECTION, blob_service, queue_service
from devhost.host_config import HostConfig
from devhost.indexing import FunctionSpec
from devhost.queue_watcher import SharedQueueWatcher
from devhost.setting_refs import BindingConfigError, resolve_setting_refs

_SUPPORTED_EXTRA = {("blob", "in"), ("blob", "out"), ("queue", "out"), ("http", "out")}
_EXPRESSION = re.compile(r"\{([^{}]+)\}")


def fill_expression(template: str, metadata: Mapping[str, str], *, function: str) -> str:
    """Replace `{name}`-style binding expressions with trigger metadata values.

    Names are case-insensitive, as in the host (`{queueTrigger}` is `QueueTrigger`).
    """
    folded = {k.lower(): v for k, v in metadata.items()}

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key.lower() not in folded:
            raise BindingConfigError(
                f"Function '{function}': binding expression {{{key}}} in {template!r} has no "
                f"value; the trigger provides {sorted(metadata)}."
            )
        return folded[key.lower()]

    return _EXPRESSION.sub(substitute, template)


def check_supported(spec: FunctionSpec) -> None:
    """Raise BindingConfigError for bindings devhost does not implement."""
    for binding in spec.bindings:
        kind = str(binding.get("type"))
        if kind.endswith("Trigger"):
            continue
        direction = str(binding.get("direction", "")).lower()
        if (kind, direction) not in _SUPPORTED_EXTRA:
            raise BindingConfigError(
                f"Function '{spec.name}': devhost does not support the {direction} binding "
                f"'{kind}' ('{binding.get('name')}'). Supported besides triggers: blob input/"
                "output, queue output, HTTP output. Run it with `func start` instead."
            )


class Bindings:
    """The blob/queue bindings of one function (validated when built)."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        settings: Mapping[str, str],
        host: HostConfig,
        watcher: SharedQueueWatcher | None = None,
    ) -> None:
        check_supported(spec)
        self._function = spec.name
        self._settings = settings
        self._encoding = host.queues.message_encoding
        self._watcher = watcher

    def _path(self, binding: dict[str, Any], metadata: Mapping[str, str]) -> tuple[str, str]:
        path = resolve_setting_refs(
            str(binding["path"]), self._settings, function=self._function, prop="path"
        )
        container, _, blob = fill_expression(path, metadata, function=self._function).partition("/")
        return container, blob

    def blob_input(
        self, binding: dict[str, Any], annotation: Any, metadata: Mapping[str, str]
    ) -> Any:
        """The argument for a blob input binding, by the parameter's annotation."""
        container, blob = self._path(binding, metadata)
        connection = str(binding.get("connection") or DEFAULT_CONNECTION)
        return blob_argument(
            annotation,
            service=blob_service(connection, self._settings, function=self._function),
            connection=connection,
            container=container,
            blob=blob,
        )

    def deliver(self, binding: dict[str, Any], value: Any, metadata: Mapping[str, str]) -> None:
        """Write an output binding's value: a blob, or queue message(s) encoded per host.json."""
        connection = str(binding.get("connection") or DEFAULT_CONNECTION)
        if binding["type"] == "blob":
            container, blob = self._path(binding, metadata)
            service = blob_service(connection, self._settings, function=self._function)
            data = value.encode("utf-8") if isinstance(value, str) else value
            target = service.get_blob_client(container, blob)
            try:
                target.upload_blob(data, overwrite=True)
            except ResourceNotFoundError:  # the host creates output containers on demand
                with contextlib.suppress(ResourceExistsError):
                    service.create_container(container)
                target.upload_blob(data, overwrite=True)
            return
        queue_name = resolve_setting_refs(
            str(binding["queueName"]), self._settings, function=self._function, prop="queueName"
        )
        queue = queue_service(connection, self._settings, function=self._function)
        client = queue.get_queue_client(queue_name.lower())
        values = value if isinstance(value, list) else [value]
        for item in values:
            raw = item.encode("utf-8") if isinstance(item, str) else bytes(item)
            if self._encoding == "base64":
                text = base64.b64encode(raw).decode("ascii")
            else:
                text = raw.decode("utf-8")
            try:
                client.send_message(text)
            except ResourceNotFoundError:  # the host creates output queues on demand
                with contextlib.suppress(ResourceExistsError):
                    client.create_queue()
                client.send_message(text)
        if self._watcher is not None and values:
            self._watcher.notify(client.queue_name)
