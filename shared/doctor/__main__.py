"""``python -m shared.doctor [--json] [--settings-file FILE] [--webhook-url URL]``.

Reads the app's settings from the environment; locally, values missing there are taken
from ``local.settings.json`` (or ``--settings-file``), as ``func start`` does. Exit codes: 0
when no check failed (warnings allowed), 1 when one did, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from shared.doctor import run_doctor
from shared.doctor.context import in_azure

_LOCAL_SETTINGS: Final = Path("local.settings.json")
_EXIT_FAILED: Final = 1
_EXIT_USAGE: Final = 2


class UsageError(Exception):
    """The command line or the settings file cannot be used."""


def settings_environment(
    env: Mapping[str, str], settings_file: Path | None
) -> tuple[dict[str, str], str]:
    """`env` plus the ``Values`` of the settings file for names `env` does not set.

    Returns the merged mapping and where the settings came from, for the first line.
    Without `settings_file`, ``./local.settings.json`` is used when it exists and the
    doctor does not run in Azure.
    """
    merged = dict(env)
    path = settings_file
    if path is None and _LOCAL_SETTINGS.is_file() and not in_azure(env):
        path = _LOCAL_SETTINGS
    if path is None:
        return merged, "the environment"
    try:
        values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
    except (OSError, ValueError, AttributeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if not isinstance(values, dict):
        raise UsageError(f"{path}: 'Values' must be an object of settings")
    for key, value in values.items():
        if key not in merged and isinstance(value, str):
            merged[key] = value
    return merged, f"the environment and {path}"


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run the doctor; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m shared.doctor",
        description="Check the app's settings and everything they point at: Speech, "
        "Storage, the web hook, the blob trigger's source.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--settings-file",
        type=Path,
        help="a local.settings.json whose Values fill in what the environment does not set "
        "(default: ./local.settings.json when it exists, outside Azure)",
    )
    parser.add_argument(
        "--webhook-url",
        default="",
        help="this app's web hook URL, https://<app>/api/speech-webhook (default: from "
        "WEBSITE_HOSTNAME in Azure)",
    )
    args = parser.parse_args(argv)
    try:
        values, source = settings_environment(
            os.environ if env is None else env, args.settings_file
        )
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    report = run_doctor(values, webhook_url=args.webhook_url)
    if args.json:
        print(report.json_text())
    else:
        print(f"Settings from {source}.")
        for line in report.lines():
            print(line)
    return 0 if report.ok else _EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
