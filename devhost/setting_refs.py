"""Resolve `%SETTING%` references in binding properties from app settings (the environment)."""

from __future__ import annotations

import re
from collections.abc import Mapping

_REF = re.compile(r"%([^%]+)%")


class BindingConfigError(ValueError):
    """A binding cannot be configured (missing app setting, bad schedule, ...)."""


def resolve_setting_refs(
    value: str, settings: Mapping[str, str], *, function: str, prop: str
) -> str:
    """Replace every `%NAME%` in `value` with the app setting NAME.

    Raises BindingConfigError naming the function, property and setting when one is unset.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in settings:
            raise BindingConfigError(
                f"Function '{function}': the '{prop}' property {value!r} references the app "
                f"setting '{name}', which is not set. Add it to local.settings.json 'Values' "
                "or export it in the environment."
            )
        return settings[name]

    return _REF.sub(substitute, value)
