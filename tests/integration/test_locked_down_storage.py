"""Locked-down storage end to end: Speech reads recordings with its own identity, results stay
in the customer's storage (BYOS), on Azurite and the local Speech service.

The local Speech service stands in for the real one: ``--storage-access identity`` makes the
account it is given accept only the resource's identity (a SAS URL into it fails the job
with ``InvalidRecordingsUri``, a plain URL is read), ``--byos`` writes result and report
files into that account with contentUrls that carry no SAS (an anonymous GET fails).
Azurite's one account plays the app's storage, the locked-down account and the BYOS account.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.storage.blob import BlobServiceClient

from devhost.services import DEV_ACCOUNT, DEV_ACCOUNT_KEY, Azurite, SpeechEmulator, wait_for
from shared import storage
from shared.complete import RESULTS_ACCESS_GRACE
from shared.retry import set_testing
from shared.runtime import Runtime, runtime_for
from shared.settings import get_settings
from tests.conftest import EmulatorFactory
from tests.integration.harness import (
    Clock,
    Pipeline,
    delta,
    env_for,
    mono_call,
    requests_by_route,
    running_pipeline,
    stereo_call,
)

pytestmark = pytest.mark.integration

SUBMIT_ROUTE = "POST /speechtotext/transcriptions:submit"
BYOS_CONTAINER = "customspeech-artifacts"  # where the local service writes BYOS results
RESULTS = "SpeechResultsStorage"
TERMINAL = frozenset({"done", "failed", "rejected"})
GOOD = {
    "locked/mono call #1.wav": (mono_call, [["my account is locked"]]),
    "locked/stereo ü%?.wav": (stereo_call, [["how can i help"], ["reset my password"]]),
}
BAD = "locked/notes.txt"  # rejected from its name and header: one report, nothing sent


def _emulator(
    factory: EmulatorFactory, azurite: Azurite, *, identity: bool, byos: bool
) -> SpeechEmulator:
    args = ["--engine", "scripted", "--instant"]
    if identity:
        args += [
            "--storage-access",
            "identity",
            "--storage-connection-string",
            azurite.connection_string,
        ]
    if byos:
        args += ["--byos", azurite.connection_string]
    return factory(*args)


def _env(
    azurite: Azurite, emulator: SpeechEmulator, *, identity: bool, results: str | None
) -> dict[str, str]:
    env = env_for(azurite, emulator, "lock")
    if identity:
        env["SPEECH_STORAGE_ACCESS"] = "identity"
    if results is not None:
        env["SPEECH_RESULTS_CONNECTION"] = RESULTS
        env[RESULTS] = results
    return env


class Seen:
    """What the app handed its Speech client: submitted bodies, anonymous downloads."""

    def __init__(self, rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
        self.content_urls: list[str] = []
        self.downloads: list[str] = []
        submit, download = rt.speech.submit, rt.speech.download

        def submitted(body: Any) -> Any:
            self.content_urls += body["contentUrls"]
            return submit(body)

        def downloaded(url: str) -> bytes:
            self.downloads.append(url)
            return download(url)

        monkeypatch.setattr(rt.speech, "submit", submitted)
        monkeypatch.setattr(rt.speech, "download", downloaded)


@contextmanager
def no_sas_can_be_made(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail any account-key SAS or user-delegation key request; yields what was tried."""
    tried: list[str] = []

    def refuse(name: str) -> Any:
        def call(*_args: Any, **_kwargs: Any) -> Any:
            tried.append(name)
            raise AssertionError(f"{name} must not be called in identity mode")

        return call

    with monkeypatch.context() as patch:
        patch.setattr(storage, "generate_blob_sas", refuse("generate_blob_sas"))
        patch.setattr(
            BlobServiceClient, "get_user_delegation_key", refuse("get_user_delegation_key")
        )
        yield tried


def _settle(pipe: Pipeline, names: list[str], timeout: float = 60.0) -> dict[str, Any]:
    """Poll and complete until every job of `names` is terminal; their rows by name.

    The app's clock moves 5 minutes per round that leaves work, so deferred jobs come due
    at once (the clock is the only time the pipeline reads).
    """
    rt = runtime_for(get_settings())
    clock = rt.clock if isinstance(rt.clock, Clock) else Clock()
    rt.clock = clock

    def rows() -> dict[str, Any]:
        return {r["BlobName"]: r for r in pipe.records() if r["BlobName"] in names}

    def step() -> bool:
        pipe.poll()
        pipe.drain()
        found = rows()
        if len(found) == len(names) and {r["State"] for r in found.values()} <= TERMINAL:
            return True
        clock.offset += timedelta(minutes=5)
        return False

    wait_for(step, timeout=timeout, interval=0.1, what=f"jobs to end: {rows()}")
    return rows()


def _one_outcome_each(pipe: Pipeline, names: list[str]) -> dict[str, str]:
    """Each recording has transcripts or an error report, never both, never neither."""
    outputs, reports = pipe.outputs(), set(pipe.errors())
    outcome = {}
    for name in names:
        has_outputs = any(o.startswith(f"{name}/") for o in outputs)
        has_report = f"{name}.json" in reports
        assert has_outputs != has_report, (name, has_outputs, has_report)
        outcome[name] = "transcripts" if has_outputs else "report"
    return outcome


def _upload_all(pipe: Pipeline) -> list[str]:
    for name, (audio, script) in GOOD.items():
        pipe.submit(pipe.upload(name, audio(), script))
    pipe.submit(pipe.upload(BAD, b"not a recording"))
    return [*GOOD, BAD]


def _byos_blobs(azurite: Azurite) -> dict[str, bytes]:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client(BYOS_CONTAINER)
    if not container.exists():
        return {}
    return {b.name: container.download_blob(b.name).readall() for b in container.list_blobs()}


# ------------------------------------------------------------------ the three set-ups


@pytest.mark.parametrize(
    ("identity", "byos"),
    [(True, False), (False, True), (True, True)],
    ids=["identity", "byos", "identity+byos"],
)
def test_the_pipeline_runs_locked_down(
    azurite: Azurite,
    speech_emulator_factory: EmulatorFactory,
    monkeypatch: pytest.MonkeyPatch,
    identity: bool,
    byos: bool,
) -> None:
    emulator = _emulator(speech_emulator_factory, azurite, identity=identity, byos=byos)
    results = azurite.connection_string if byos else None
    env = _env(azurite, emulator, identity=identity, results=results)
    with running_pipeline(azurite, emulator, env) as pipe:
        rt = runtime_for(get_settings())
        seen = Seen(rt, monkeypatch)
        with no_sas_can_be_made(monkeypatch) if identity else _nothing() as tried:
            names = _upload_all(pipe)
            rows = _settle(pipe, names)
        assert {name: row["State"] for name, row in rows.items()} == {
            **dict.fromkeys(GOOD, "done"),
            BAD: "rejected",
        }
        assert _one_outcome_each(pipe, names) == {
            **dict.fromkeys(GOOD, "transcripts"),
            BAD: "report",
        }
        assert all(row["Attempts"] == 1 for name, row in rows.items() if name in GOOD)
        assert len(seen.content_urls) == len(GOOD)
        if identity:
            # Every submission carried plain URLs, and no SAS was even attempted.
            assert [urlsplit(u).query for u in seen.content_urls] == ["", ""]
            assert tried == []
        else:
            assert all("sig=" in urlsplit(u).query for u in seen.content_urls)
        for name, (_, script) in GOOD.items():
            channel_0 = json.loads(pipe.output(f"{name}/channel_0.json"))
            lexical = [p["nBest"][0]["lexical"] for p in channel_0["recognizedPhrases"]]
            assert lexical == script[0]
        if byos:
            # Results were read from the customer's account, never by an anonymous GET,
            # and deleting the jobs deleted them there too.
            assert seen.downloads == []
            wait_for(lambda: not _byos_blobs(azurite), timeout=10, what="the BYOS results to go")
        else:
            assert len(seen.downloads) == len(GOOD)


@contextmanager
def _nothing() -> Iterator[list[str]]:
    yield []


# ------------------------------------------------------------------ configuration problems


def test_a_sas_submission_against_identity_only_storage_is_a_configuration_problem(
    azurite: Azurite, speech_emulator_factory: EmulatorFactory
) -> None:
    """The app in SAS mode, storage that accepts only Speech's identity: the service fails
    the job (InvalidRecordingsUri); after one confirming resubmission the app blames the
    set-up, not the recording, without spending the rest of its attempts."""
    emulator = _emulator(speech_emulator_factory, azurite, identity=True, byos=False)
    env = _env(azurite, emulator, identity=False, results=None)
    with running_pipeline(azurite, emulator, env) as pipe:
        name = "locked/sas refused.wav"
        before = requests_by_route(pipe.stats())
        pipe.submit(pipe.upload(name, mono_call(), [["refused"]]))
        row = _settle(pipe, [name])[name]
        # Submitted once more to tell a storage outage from this set-up, then reported.
        assert (row["State"], row["Attempts"]) == ("failed", 2)
        stats = pipe.stats()
        assert delta(before, requests_by_route(stats))[SUBMIT_ROUTE] == 2  # not 3 (attempts)
        assert stats["jobs"][row["TranscriptionId"]]["status"] == "Failed"  # by the service
        report = pipe.error_report(f"{name}.json")
        assert report["reasonCode"] == "SasRefused"
        assert report["serviceErrorCode"] == "InvalidRecordingsUri"  # as the service says
        assert report["serviceStatus"] == "Failed"
        assert "SPEECH_STORAGE_ACCESS=sas" in report["message"]
        assert "not the recording's fault" in report["message"]
        assert "SPEECH_STORAGE_ACCESS=identity" in report["whatToDo"]
        assert "resource-instance rule" in report["whatToDo"]
        assert _one_outcome_each(pipe, [name]) == {name: "report"}


def test_identity_mode_without_access_for_speech_is_a_configuration_problem(
    azurite: Azurite, speech_emulator_factory: EmulatorFactory
) -> None:
    """The app hands over plain URLs, but the Speech resource has no access to the account
    (here: the local service holds no identity for it and reads by URL alone)."""
    emulator = _emulator(speech_emulator_factory, azurite, identity=False, byos=False)
    env = _env(azurite, emulator, identity=True, results=None)
    with running_pipeline(azurite, emulator, env) as pipe:
        name = "locked/no role.wav"
        pipe.submit(pipe.upload(name, mono_call(), [["denied"]]))
        row = _settle(pipe, [name])[name]
        assert (row["State"], row["Attempts"]) == ("failed", 2)
        report = pipe.error_report(f"{name}.json")
        assert report["reasonCode"] == "SpeechIdentityDenied"
        assert report["serviceErrorCode"] == "InvalidRecordingsUri"
        assert "SPEECH_STORAGE_ACCESS=identity" in report["message"]
        assert "Storage Blob Data Reader" in report["whatToDo"]
        assert _one_outcome_each(pipe, [name]) == {name: "report"}


def test_byos_results_without_a_results_connection_fail_naming_the_setting(
    azurite: Azurite, speech_emulator_factory: EmulatorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = _emulator(speech_emulator_factory, azurite, identity=False, byos=True)
    env = _env(azurite, emulator, identity=False, results=None)
    with running_pipeline(azurite, emulator, env) as pipe:
        seen = Seen(runtime_for(get_settings()), monkeypatch)
        name = "locked/no results connection.wav"
        pipe.submit(pipe.upload(name, mono_call(), [["unread"]]))
        row = _settle(pipe, [name])[name]
        assert row["State"] == "failed"
        report = pipe.error_report(f"{name}.json")
        assert report["reasonCode"] == "ResultsNotReadable"
        assert "SPEECH_RESULTS_CONNECTION is not set" in report["message"]
        assert "SPEECH_RESULTS_CONNECTION" in report["whatToDo"]
        assert seen.downloads == []  # no anonymous GET that could only be refused
        assert pipe.transcription_status(row["TranscriptionId"]) == 404  # cleaned up
        assert _one_outcome_each(pipe, [name]) == {name: "report"}


def test_a_results_account_refusing_the_app_is_retried_then_reported(
    azurite: Azurite, speech_emulator_factory: EmulatorFactory
) -> None:
    """403 from the results account: the job waits (roles take minutes to propagate) and is
    retried; still refused after RESULTS_ACCESS_GRACE, it is reported."""
    wrong_key = DEV_ACCOUNT_KEY[:-8] + "AAAAAAA="
    refused = (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={wrong_key};"
        f"BlobEndpoint={azurite.blob_endpoint};"
    )
    emulator = _emulator(speech_emulator_factory, azurite, identity=False, byos=True)
    env = _env(azurite, emulator, identity=False, results=refused)
    with running_pipeline(azurite, emulator, env) as pipe, set_testing(True, attempts=1):
        rt = runtime_for(get_settings())
        clock = Clock()
        rt.clock = clock
        name = "locked/refused results.wav"
        pipe.submit(pipe.upload(name, mono_call(), [["wait for the role"]]))
        pipe.poll_until(lambda: pipe.record_for(name)["State"] == "completing")
        pipe.drain()
        row = pipe.record_for(name)
        assert row["State"] == "completing"  # held, not failed, not poisoned
        assert row["NextCheckAt"] > clock() + timedelta(minutes=4)
        assert pipe.errors() == []
        clock.offset = RESULTS_ACCESS_GRACE + timedelta(minutes=10)  # the lease ran out too
        row = _settle(pipe, [name])[name]
        assert row["State"] == "failed"
        report = pipe.error_report(f"{name}.json")
        assert report["reasonCode"] == "ResultsNotReadable"
        assert "HTTP 403" in report["message"]
        assert "SPEECH_RESULTS_CONNECTION=SpeechResultsStorage" in report["message"]
        assert wrong_key not in json.dumps(report)
        assert _one_outcome_each(pipe, [name]) == {name: "report"}


def test_a_byos_result_that_is_gone_is_transcribed_again(
    azurite: Azurite, speech_emulator_factory: EmulatorFactory
) -> None:
    """404 for a listed result (a lifecycle rule, an expiry): drop the job, submit again."""
    emulator = _emulator(speech_emulator_factory, azurite, identity=True, byos=True)
    env = _env(azurite, emulator, identity=True, results=azurite.connection_string)
    with running_pipeline(azurite, emulator, env) as pipe:
        name = "locked/result gone.wav"
        pipe.submit(pipe.upload(name, mono_call(), [["second time lucky"]]))
        pipe.poll_until(lambda: pipe.record_for(name)["State"] == "completing")
        first = pipe.record_for(name)["TranscriptionId"]
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        results = [n for n in _byos_blobs(azurite) if first in n and "report" not in n]
        assert len(results) == 1
        service.get_blob_client(BYOS_CONTAINER, results[0]).delete_blob()
        pipe.drain()
        row = pipe.record_for(name)
        assert (row["State"], row["ErrorCode"]) == ("deferred", "Vanished")
        assert pipe.transcription_status(first) == 404  # not left behind on the service
        row = _settle(pipe, [name])[name]
        assert (row["State"], row["Attempts"]) == ("done", 2)
        assert _one_outcome_each(pipe, [name]) == {name: "transcripts"}
