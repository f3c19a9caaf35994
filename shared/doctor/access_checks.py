"""The doctor's access checks: can Speech read a recording the way the app hands it over, and
can the app read what Speech writes back?

``speech.storage``  a one-second silent probe recording, written under ``_doctor/`` in the
                    output container (never the input container, whose trigger would pick
                    it up), is submitted as the app submits recordings: with a read-only SAS
                    (``SPEECH_STORAGE_ACCESS=sas``) or as its plain URL, read with the
                    Speech resource's own identity (``identity``; no SAS is signed). The
                    probe transcription is watched for up to `WATCH_S` seconds: failed with
                    ``InvalidRecordingsUri``/``InaccessibleCustomerStorage`` means Speech
                    cannot read the storage as set up (the fix names the roles and network
                    rules of the mode); not started yet is a warning (the real service may
                    take minutes to start a job).
``speech.results``  the probe's result file is read as the app reads results: with its
                    SAS, or, without one (bring-your-own-storage), through the connection
                    SPEECH_RESULTS_CONNECTION names (`shared.results_reader`).

The probe transcription carries no deployment tag, so the app's poller never lists it, and
it is deleted, with the probe recording, whatever happens. It is one second of audio.
"""

from __future__ import annotations

import contextlib
import io
import time
import uuid
import wave
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Final

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient

from shared.content_urls import content_urls_for
from shared.doctor.context import DoctorContext, storage_options
from shared.doctor.report import Check
from shared.errors import (
    ConfigurationError,
    ResultsAccessDeniedError,
    ResultsNotReadableError,
    SpeechServiceError,
    StorageTransientError,
)
from shared.results_reader import RESULTS_SETTING, ResultsReader, has_sas
from shared.service_failures import INPUT_ACCESS_CODES
from shared.settings import Settings
from shared.speech_client import SpeechClient
from shared.speech_models import Transcription, build_submit_body
from shared.storage import blob_service_from_setting

__all__ = ["WATCH_S", "probe_recording", "read_verdict", "speech_storage_access"]

# How long the probe transcription is watched (the probe's own timeout is longer).
WATCH_S: Final = 12.0
_POLL_S: Final = 0.5
_PROBE_PREFIX: Final = "_doctor/"
_SKIPPED: Final = "not checked: the settings are invalid (see the settings check)"
_SETTING: Final = "SPEECH_STORAGE_ACCESS"


def probe_recording(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    """A mono 16-bit PCM WAV of silence: something every Speech engine accepts."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * round(rate * seconds))
    return buffer.getvalue()


def speech_storage_access(ctx: DoctorContext) -> Iterator[Check]:
    """``speech.storage`` then ``speech.results``, around one probe transcription."""
    s = ctx.settings
    if s is None:
        yield Check.skip("speech.storage", _SKIPPED)
        return
    try:
        clients = ctx.storage_clients_of(ctx.connection(s.storage_connection))
    except (ConfigurationError, ValueError):
        yield Check.skip("speech.storage", "not checked: see the storage.connection check")
        return
    blob = clients.blob_client(s.output_container, f"{_PROBE_PREFIX}{uuid.uuid4().hex}.wav")
    try:
        blob.upload_blob(probe_recording(), overwrite=True)
    except AzureError:
        yield Check.skip(
            "speech.storage",
            f"not checked: no probe recording could be written to {s.output_container} "
            "(see the storage.containers check)",
        )
        return
    try:
        with ctx.speech_client() as client:
            yield from _probe(
                ctx,
                s,
                client,
                service=clients.blob,
                container=blob.container_name,
                name=blob.blob_name,
            )
    finally:
        with contextlib.suppress(AzureError):
            blob.delete_blob()


def _probe(
    ctx: DoctorContext,
    s: Settings,
    client: SpeechClient,
    *,
    service: BlobServiceClient,
    container: str,
    name: str,
) -> Iterator[Check]:
    access = content_urls_for(s, service)  # in identity mode: no signer, nothing signed
    how = "its own identity (a plain URL)" if access.mode == "identity" else "a read-only SAS"
    try:
        url = access.url_for(container, name, now=datetime.now(UTC))
    except (AzureError, StorageTransientError, ConfigurationError) as exc:
        yield Check.skip("speech.storage", f"not checked: no SAS could be signed ({exc})")
        return
    body = build_submit_body(
        display_name=f"doctor-probe-{uuid.uuid4().hex}",
        content_url=url,
        locale=s.speech_locale,
        channels=[0],
        time_to_live_hours=6,
    )
    try:
        job = client.submit(body)
    except SpeechServiceError as exc:
        yield Check.skip("speech.storage", f"not checked: the probe was not accepted ({exc})")
        return
    try:
        finished = _watch(client, job)
        yield read_verdict(s, how, container, finished)
        if finished is not None and finished.status == "Succeeded":
            yield _results_check(ctx, s, client, finished)
        else:
            yield Check.skip("speech.results", "not checked: the probe did not finish")
    finally:
        with contextlib.suppress(SpeechServiceError):
            client.delete(job.id)


def _watch(client: SpeechClient, job: Transcription) -> Transcription | None:
    """The probe once it has finished, or None when it has not within `WATCH_S`."""
    deadline = time.monotonic() + WATCH_S
    while True:
        current, _ = client.get(job.id)
        if current.status.is_terminal:
            return current
        if time.monotonic() >= deadline:
            return None
        time.sleep(_POLL_S)  # the service is asynchronous: nothing to wait on but time


def read_verdict(s: Settings, how: str, container: str, finished: Transcription | None) -> Check:
    if finished is None:
        return Check.warn(
            "speech.storage",
            f"not confirmed: the probe transcription had not finished after {WATCH_S:g} s "
            "(the service may take minutes to start a job)",
            fix="run the doctor again later",
        )
    if finished.status == "Succeeded":
        return Check.ok("speech.storage", f"Speech read a probe recording through {how}")
    code = finished.error_code or "Unknown"
    said = f"{code}: {finished.error_message or 'no message'}"
    if code not in INPUT_ACCESS_CODES:
        return Check.warn(
            "speech.storage",
            f"the probe transcription failed for another reason ({said})",
            fix="see the Speech resource's health; the storage access could not be told",
        )
    if s.speech_storage_access == "identity":
        return Check.fail(
            "speech.storage",
            f"Speech could not read a probe recording in {container} with its own identity "
            f"(plain URL, no SAS): {said}",
            setting=_SETTING,
            fix="turn on the Speech resource's system-assigned identity, grant it 'Storage "
            "Blob Data Reader' on the storage account (not only the input container: the probe "
            "lies in the output container), and let it through the storage firewall (a "
            "resource-instance rule for the Speech resource, or trusted Azure services); or, "
            "if the account accepts SAS, set SPEECH_STORAGE_ACCESS=sas. See "
            "docs/deployment.md#locked-down-storage",
        )
    return Check.fail(
        "speech.storage",
        f"Speech could not read a probe recording in {container} through a valid read-only "
        f"SAS: {said}",
        setting=_SETTING,
        fix="the storage account refuses SAS (or the Speech service's network): set "
        "SPEECH_STORAGE_ACCESS=identity and give the Speech resource's system-assigned identity "
        "'Storage Blob Data Reader' and a resource-instance rule, or let the account accept "
        "SAS. See docs/deployment.md#locked-down-storage",
    )


def _results_check(
    ctx: DoctorContext, s: Settings, client: SpeechClient, finished: Transcription
) -> Check:
    try:
        files = [f for f in client.list_files(finished.id) if f.kind == "Transcription"]
    except SpeechServiceError as exc:
        return Check.warn("speech.results", f"the probe's files could not be listed: {exc}")
    if not files:
        return Check.warn("speech.results", "the probe finished without a result file")
    url = files[0].content_url
    connection = s.speech_results_connection
    try:
        account = (
            blob_service_from_setting(ctx.env, connection, **storage_options())
            if connection
            else None
        )
        ResultsReader(client.download, account, connection=connection).read(url)
    except ResultsAccessDeniedError as exc:
        return Check.fail(
            "speech.results",
            exc.message,
            setting=exc.setting,
            fix=f"grant the identity of {connection} 'Storage Blob Data Reader' on the results "
            "account and let the app reach it (network rules, private endpoint)",
        )
    except ResultsNotReadableError as exc:
        return Check.fail(
            "speech.results",
            exc.message,
            setting=exc.setting,
            fix=f"set {RESULTS_SETTING} to a connection to the Speech resource's own storage "
            "account (bring-your-own-storage). See docs/deployment.md#locked-down-storage",
        )
    except ConfigurationError as exc:
        return Check.fail("speech.results", exc.problem, setting=exc.setting)
    except (SpeechServiceError, StorageTransientError, AzureError) as exc:
        return Check.fail(
            "speech.results",
            f"the probe's result file could not be read: {exc}",
            setting=RESULTS_SETTING if not has_sas(url) else "",
        )
    if has_sas(url):
        unused = f" ({RESULTS_SETTING} is set but not needed)" if connection else ""
        return Check.ok("speech.results", f"result read with its SAS{unused}")
    return Check.ok(
        "speech.results",
        f"result without SAS (bring-your-own-storage) read through {RESULTS_SETTING}={connection}",
    )
