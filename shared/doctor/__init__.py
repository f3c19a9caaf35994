"""``python -m shared.doctor``: a preflight of the app's settings and everything they point at.

It runs with the app's own settings, locally or in Azure (also as the admin-level HTTP
function ``GET /api/doctor``), and prints one line per check: what it found, the setting
at fault and what to fix. It exits non-zero when any check fails, and answers within
30 s even when a dependency accepts connections and never answers (`shared.doctor.runner`).

A check lives in a probe: a generator over a `DoctorContext` that yields `Check`s. `PROBES`
lists them; to add checks, write a probe (see `shared.doctor.speech_checks`) and add a
`Probe` to the list. Modules:

* `shared.doctor.report`           Check, Status, Report; rendering without secrets
* `shared.doctor.runner`           Probe; concurrent, time-bounded execution
* `shared.doctor.context`          the settings and quick clients the probes use
* `shared.doctor.platform_checks`  settings, blob trigger source (Flex), trigger identity
* `shared.doctor.speech_checks`    endpoint, credentials, model and locale, web hook
* `shared.doctor.storage_checks`   connections, containers, SAS, table, queue
* `shared.doctor.access_checks`    Speech reads a probe recording as the app hands it over
                                   (SPEECH_STORAGE_ACCESS); the app reads its result
                                   (SPEECH_RESULTS_CONNECTION)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from shared.doctor.access_checks import speech_storage_access
from shared.doctor.context import DoctorContext
from shared.doctor.platform_checks import blob_trigger, settings_valid
from shared.doctor.report import Check, Report, Status
from shared.doctor.runner import Probe, run_probes
from shared.doctor.speech_checks import speech_service, speech_webhook
from shared.doctor.storage_checks import host_storage, storage_data

__all__ = ["PROBES", "Check", "DoctorContext", "Probe", "Report", "Status", "run_doctor"]

_UNREACHABLE_SPEECH: Final = (
    "the Speech endpoint (or the sign-in) does not answer: check SPEECH_ENDPOINT and that "
    "this network may reach it"
)
_UNREACHABLE_STORAGE: Final = (
    "the storage account (or the sign-in) does not answer: check the connection's endpoints "
    "and that this network may reach them"
)

# Each probe's timeout keeps the whole run under 30 s (they run at once).
PROBES: Final[tuple[Probe, ...]] = (
    Probe("settings", settings_valid, timeout=2.0),
    Probe("speech", speech_service, 20.0, "SPEECH_ENDPOINT", _UNREACHABLE_SPEECH),
    Probe("speech.webhook", speech_webhook, 20.0, "SPEECH_ENDPOINT", _UNREACHABLE_SPEECH),
    Probe(
        "speech.storage",
        speech_storage_access,
        25.0,
        "SPEECH_ENDPOINT",
        "Speech or the storage account does not answer: check SPEECH_ENDPOINT and the "
        "connection's endpoints",
    ),
    Probe("storage", storage_data, 20.0, "STORAGE_CONNECTION", _UNREACHABLE_STORAGE),
    Probe("storage.host", host_storage, 20.0, "AzureWebJobsStorage", _UNREACHABLE_STORAGE),
    Probe("platform", blob_trigger, timeout=5.0),
)


def run_doctor(
    env: Mapping[str, str], *, webhook_url: str = "", probes: Sequence[Probe] = PROBES
) -> Report:
    """Every check of `probes` against the settings in `env`; never raises."""
    return run_probes(DoctorContext.from_env(env, webhook_url=webhook_url), probes)
