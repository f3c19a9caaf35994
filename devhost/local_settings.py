"""Load `local.settings.json` into the environment the way `func start` does.

A variable already set in the environment wins over the file (so `export X=...` overrides a
value for one run), and a missing file is created from `local.settings.sample.json`.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("devhost")

SAMPLE_NAME = "local.settings.sample.json"


class LocalSettingsError(ValueError):
    """local.settings.json is unreadable or malformed; the message says how to fix it."""


@dataclass(frozen=True)
class LoadedSettings:
    """What `apply_local_settings` did: names copied into the environment, names skipped."""

    path: Path
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def ensure_local_settings(path: Path) -> bool:
    """Create `path` from the sample next to it when missing; True if it was created.

    Raises LocalSettingsError when neither the file nor the sample exists.
    """
    if path.exists():
        return False
    sample = path.with_name(SAMPLE_NAME)
    if not sample.exists():
        raise LocalSettingsError(
            f"{path} does not exist and there is no {SAMPLE_NAME} next to it to create it from. "
            'Create it with {"IsEncrypted": false, "Values": {...}} or pass --settings.'
        )
    shutil.copyfile(sample, path)
    log.info("Created %s from %s (edit it for your environment; never commit it).", path, sample)
    return True


def read_values(path: Path) -> dict[str, str]:
    """Parse the `Values` of a local.settings.json file, validating its shape."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LocalSettingsError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise LocalSettingsError(
            f"{path} is not valid JSON ({exc}); fix it or delete it to recreate it from the sample."
        ) from exc
    if not isinstance(document, dict):
        raise LocalSettingsError(f"{path} must hold a JSON object with a 'Values' object.")
    if document.get("IsEncrypted") is True:
        raise LocalSettingsError(
            f"{path} is encrypted (IsEncrypted: true); devhost reads plain settings only. "
            "Run `func settings decrypt` or recreate it from the sample."
        )
    values = document.get("Values", {})
    if not isinstance(values, dict):
        raise LocalSettingsError(f"'Values' in {path} must be a JSON object of strings.")
    bad = sorted(name for name, value in values.items() if not isinstance(value, str))
    if bad:
        raise LocalSettingsError(
            f"settings {', '.join(bad)} in {path} are not strings; app settings are strings: "
            'quote them (e.g. "SAS_VALIDITY_HOURS": "12").'
        )
    return dict(values)


def apply_local_settings(path: Path, environ: MutableMapping[str, str]) -> LoadedSettings:
    """Copy each value of `path` into `environ` unless that variable is already set."""
    result = LoadedSettings(path=path)
    for name, value in read_values(path).items():
        if name in environ:
            log.info(
                "Skipping '%s' from local settings as it's already defined in current "
                "environment variables.",
                name,
            )
            result.skipped.append(name)
        else:
            environ[name] = value
            result.applied.append(name)
    return result
