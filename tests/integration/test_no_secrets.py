"""No secret anywhere: a full run's logs (every logger at DEBUG), job records, error reports,
outputs and exception messages hold no key, SAS signature, shared-key signature or token.

The run covers submit, poll and completion of a good recording, a job the service fails, a
rejected input, a throttled submission, the sweep, and failing Speech calls (wrong key,
bearer token refused). Secrets are collected as they are issued: the Speech key (random per
run), the storage account key and fragments of it, every SAS the app signed (a spy around
its content URLs) and every result-file URL it downloaded, and the bearer token it sent.

A second run covers locked-down storage: Speech reading with its identity and results in the
customer's account (BYOS) read with a connection string that holds the account key, and
the set-ups that fail there (a SAS refused by identity-only storage, a results account
refusing a wrong key, no results connection).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import azure.functions as func
import pytest
from azure.core.credentials import AccessToken

from devhost.services import (
    DEV_ACCOUNT,
    DEV_ACCOUNT_KEY,
    Azurite,
    SpeechEmulator,
    start_speech_emulator,
    wait_for,
)
from shared.complete import RESULTS_ACCESS_GRACE
from shared.errors import SpeechServiceError
from shared.retry import set_testing
from shared.runtime import Runtime, runtime_for
from shared.settings import get_settings
from shared.speech_client import SpeechClient
from shared.sweep import SweepLimits, run_sweep
from tests.conftest import EmulatorFactory
from tests.integration.harness import (
    Pipeline,
    env_for,
    mono_call,
    running_pipeline,
    stereo_call,
)

pytestmark = pytest.mark.integration

SPEECH_KEY = "sk-" + secrets.token_urlsafe(24)
BEARER = "eyJ" + secrets.token_urlsafe(40)
WRONG_KEY = "wrong-" + secrets.token_urlsafe(18)
_LOUD_LOGGERS = ("azure", "httpx", "httpcore", "urllib3", "shared", "function_app", "devhost")


class _Collect(logging.Handler):
    """Every record, fully formatted (message, arguments, traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def all_logs() -> Iterator[_Collect]:
    """Root and every library logger at DEBUG, into one handler."""
    handler = _Collect()
    root = logging.getLogger()
    saved = {name: logging.getLogger(name).level for name in _LOUD_LOGGERS}
    saved_policy = logging.getLogger("azure.core.pipeline.policies.http_logging_policy").level
    saved_root = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in _LOUD_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    # function_app quiets the SDK's request logging; open it up to check it too.
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_root)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(saved_policy)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpeechEmulator]:
    log = tmp_path_factory.mktemp("secrets") / "emulator.log"
    service = start_speech_emulator(
        "--engine", "scripted", "--instant", "--accept-bearer", key=SPEECH_KEY, log_path=log
    )
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def pipeline(azurite: Azurite, emulator: SpeechEmulator) -> Iterator[Pipeline]:
    env = env_for(azurite, emulator, "sec")
    with running_pipeline(azurite, emulator, env) as pipe:
        yield pipe


class _Spy:
    """Records what the app's own signer and downloads handled (the real calls still run)."""

    def __init__(self, rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
        self.urls: list[str] = []
        url_for, download = rt.content_urls.url_for, rt.speech.download

        def signed(*args: Any, **kwargs: Any) -> str:
            url = url_for(*args, **kwargs)
            self.urls.append(url)
            return url

        def downloaded(content_url: str) -> bytes:
            self.urls.append(content_url)
            return download(content_url)

        monkeypatch.setattr(rt.content_urls, "url_for", signed)
        monkeypatch.setattr(rt.speech, "download", downloaded)

    def signatures(self) -> set[str]:
        found: set[str] = set()
        for url in self.urls:
            for value in parse_qs(urlsplit(url).query).get("sig", []):
                found |= {value, quote(value, safe=""), quote(value)}
        return found


class _Token:
    """A credential handing out one fixed bearer token (the emulator accepts any)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(BEARER, int(time.time()) + 3600)


def _fragments(secret: str, size: int = 12) -> set[str]:
    """Every `size`-character piece of `secret`, as written and URL-encoded."""
    pieces = {secret[i : i + size] for i in range(len(secret) - size + 1)}
    return pieces | {quote(p, safe="") for p in pieces}


def _failure(client: SpeechClient) -> list[str]:
    """The texts of the error a bad submission raises (and logs, with its traceback)."""
    try:
        client.submit({"displayName": "x"})
    except SpeechServiceError as exc:
        logging.getLogger("test").exception("expected failure")
        return [str(exc), repr(exc), exc.message]
    raise AssertionError("the submission should have failed")


def _leaks(text: str, forbidden: set[str]) -> list[str]:
    found = sorted(s for s in forbidden if s and s in text)
    patterns = (
        r"SharedKey\s+\w+:[A-Za-z0-9+/=]{20,}",  # a storage request signature
        r"Bearer\s+[A-Za-z0-9._~+/-]{16,}",
        r"[?&]sig=(?!REDACTED)[A-Za-z0-9%+/=]{16,}",
        r"AccountKey=[A-Za-z0-9+/=]{8,}",
    )
    found += [m.group(0) for p in patterns for m in re.finditer(p, text)]
    return found


def test_a_full_run_leaks_no_secret(
    pipeline: Pipeline, all_logs: _Collect, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = runtime_for(get_settings())
    spy = _Spy(rt, monkeypatch)
    errors: list[str] = []
    with set_testing(True, attempts=2, cap=True):
        # a good stereo call and a rejected input, submitted by the blob trigger
        good = "secret/good call.wav"
        pipeline.submit(pipeline.upload(good, stereo_call(), [["my pin is"], ["one two"]]))
        pipeline.submit(pipeline.upload("secret/notes.txt", b"password=hunter2"))
        # a job the service fails (permanent error: report at once)
        pipeline.configure(fail_share=1.0, fail_code="InvalidAudioFormat")
        pipeline.submit(pipeline.upload("secret/fails.wav", mono_call(), [["x"]]))
        pipeline.configure(fail_share=0.0)
        # a throttled submission: waited out or deferred for the poller
        pipeline.configure(rate_limit="1/3")
        pipeline.api.get("/transcriptions")  # use up the window
        pipeline.submit(pipeline.upload("secret/throttled.wav", mono_call(), [["later"]]))
        pipeline.configure(rate_limit=None)
        throttled = pipeline.record_for("secret/throttled.wav")
        if throttled["State"] == "deferred":  # due now instead of after the Retry-After
            pipeline.table.update_entity(
                {
                    "PartitionKey": "job",
                    "RowKey": throttled["RowKey"],
                    "NextCheckAt": throttled["Created"],
                }
            )
        pipeline.upload("secret/missed.wav", mono_call(), [["swept"]])  # no trigger: the sweep
        run_sweep(rt, SweepLimits(grace=timedelta(0)))

        def settled() -> bool:
            pipeline.poll()
            pipeline.drain()
            return all(r["State"] in ("done", "failed", "rejected") for r in pipeline.records())

        wait_for(
            settled,
            timeout=30,
            interval=0.1,
            what=f"every job to end: {[(r['BlobName'], r['State']) for r in pipeline.records()]}",
        )
        # failing Speech calls: their exceptions must not carry the credentials either
        with SpeechClient(rt.settings.speech_endpoint, "2024-11-15", key=WRONG_KEY) as client:
            errors += _failure(client)  # 401
        with SpeechClient(rt.settings.speech_endpoint, "2024-11-15", credential=_Token()) as client:
            list(client.iter_transcriptions())  # the bearer is accepted: it was really sent
            errors += _failure(client)  # 400: an invalid body

    states = {r["BlobName"]: r["State"] for r in pipeline.records()}
    assert states == {
        good: "done",
        "secret/notes.txt": "rejected",
        "secret/fails.wav": "failed",
        "secret/throttled.wav": "done",
        "secret/missed.wav": "done",
    }
    assert len(errors) == 6
    submit_answers = pipeline.stats()["requests"]["POST /speechtotext/transcriptions:submit"]
    assert submit_answers.get("429", 0) >= 1  # the throttled submission really was throttled
    sas = spy.signatures()
    assert len(sas) >= 6  # what we look for was really issued (4 submissions + downloads)

    forbidden = (
        {SPEECH_KEY, WRONG_KEY, BEARER, DEV_ACCOUNT_KEY}
        | _fragments(DEV_ACCOUNT_KEY)
        | _fragments(SPEECH_KEY)
        | sas
    )
    logs = "\n".join(all_logs.lines)
    assert len(all_logs.lines) > 100  # the SDKs' and httpx's own DEBUG lines are in there
    assert "HTTP Request:" in logs  # httpx's request log is captured (with URLs)
    assert _leaks(logs, forbidden) == []
    assert _leaks("\n".join(errors), forbidden) == []
    records = "\n".join(repr(dict(r)) for r in pipeline.records())
    assert _leaks(records, forbidden) == []
    reports = "\n".join(str(pipeline.error_report(n)) for n in pipeline.errors())
    assert "InvalidAudioFormat" in reports
    assert _leaks(reports, forbidden) == []
    outputs = "\n".join(pipeline.output(n).decode("utf-8") for n in pipeline.outputs())
    assert _leaks(outputs, forbidden) == []
    assert repr(rt.settings).count(SPEECH_KEY) == 0
    operator_view = _operator_view(pipeline)
    assert "secret/fails.wav" in operator_view  # the views really describe this run
    assert _leaks(operator_view, forbidden) == []
    assert "sig=" not in operator_view


def _operator_view(pipeline: Pipeline) -> str:
    """Every answer of the operator view (API, page, CLI-equivalent queries) for this run."""
    call = pipeline.functions
    texts: list[str] = []

    def get(name: str, url: str, **route: str) -> str:
        request = func.HttpRequest(method="GET", url=url, body=b"", route_params=route)
        response = call[name](req=request)
        assert response.status_code == 200, response.get_body()
        return str(response.get_body().decode("utf-8"))

    listed = json.loads(get("ops_jobs", "/api/jobs"))
    texts.append(json.dumps(listed))
    for job in listed["jobs"]:
        texts.append(get("ops_job", f"/api/jobs/{job['key']}", key=job["key"]))
    texts.append(get("ops_stats", "/api/stats"))
    texts.append(get("ops_status", "/api/status"))
    failed = next(j for j in listed["jobs"] if j["state"] == "failed")
    retry = func.HttpRequest(
        method="POST", url="/api/jobs/x/retry", body=b"", route_params={"key": failed["key"]}
    )
    texts.append(call["ops_retry"](req=retry).get_body().decode("utf-8"))
    return "\n".join(texts)


def _settle(pipe: Pipeline, rt: Runtime) -> dict[str, str]:
    """Poll and complete until every job is terminal; the states by blob name.

    The app's clock moves 5 minutes per round that leaves work, so deferred jobs come due.
    """
    base, ahead = rt.clock, [timedelta(0)]
    rt.clock = lambda: base() + ahead[0]

    def settled() -> bool:
        pipe.poll()
        pipe.drain()
        if all(r["State"] in ("done", "failed", "rejected") for r in pipe.records()):
            return True
        ahead[0] += timedelta(minutes=5)
        return False

    wait_for(
        settled,
        timeout=30,
        interval=0.1,
        what=f"every job to end: {[(r['BlobName'], r['State']) for r in pipe.records()]}",
    )
    return {r["BlobName"]: r["State"] for r in pipe.records()}


def _texts(pipe: Pipeline) -> list[str]:
    """Job records, error reports and outputs of a pipeline, as text."""
    return [
        "\n".join(repr(dict(r)) for r in pipe.records()),
        "\n".join(str(pipe.error_report(n)) for n in pipe.errors()),
        "\n".join(pipe.output(n).decode("utf-8") for n in pipe.outputs()),
    ]


def _refused_then_past_the_grace(pipe: Pipeline, rt: Runtime, name: str) -> None:
    """The results account refuses the app: the job is held; then time passes the grace."""
    pipe.poll_until(lambda: pipe.record_for(name)["State"] == "completing")
    pipe.drain()
    assert pipe.record_for(name)["State"] == "completing"  # held for a retry
    late = rt.clock() + RESULTS_ACCESS_GRACE + timedelta(minutes=15)
    rt.clock = lambda: late  # past the grace and the lease: reported next time


def test_locked_down_storage_leaks_no_secret(
    azurite: Azurite,
    speech_emulator_factory: EmulatorFactory,
    all_logs: _Collect,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = azurite.connection_string
    wrong_key = base64.b64encode(secrets.token_bytes(64)).decode("ascii")
    refused = (
        f"AccountName={DEV_ACCOUNT};AccountKey={wrong_key};BlobEndpoint={azurite.blob_endpoint};"
    )
    locked = speech_emulator_factory(
        "--engine",
        "scripted",
        "--instant",
        "--storage-access",
        "identity",
        "--storage-connection-string",
        conn,
        "--byos",
        conn,
        key=SPEECH_KEY,
    )
    runs = {
        # identity + BYOS, as the template sets them: good, rejected and failed recordings
        "ok": {
            "SPEECH_STORAGE_ACCESS": "identity",
            "SPEECH_RESULTS_CONNECTION": "Res",
            "Res": conn,
        },
        # the app in SAS mode against identity-only storage: its SAS is refused
        "sas": {},
        # results read with a key the account refuses (retried, then reported)
        "denied": {
            "SPEECH_STORAGE_ACCESS": "identity",
            "SPEECH_RESULTS_CONNECTION": "Res",
            "Res": refused,
        },
    }
    issued: set[str] = set()
    handed: dict[str, list[str]] = {}
    texts: list[str] = []
    states: dict[str, dict[str, str]] = {}
    with set_testing(True, attempts=2, cap=True):
        for run, extra in runs.items():
            env = {**env_for(azurite, locked, f"sl{run}"), **extra}
            with running_pipeline(azurite, locked, env) as pipe, monkeypatch.context() as patch:
                rt = runtime_for(get_settings())
                spy = _Spy(rt, patch)
                pipe.submit(pipe.upload(f"{run}/good call.wav", stereo_call(), [["pin"], ["1 2"]]))
                if run == "ok":
                    pipe.submit(pipe.upload("ok/notes.txt", b"password=hunter2"))
                    pipe.configure(fail_share=1.0, fail_code="InvalidAudioFormat")
                    pipe.submit(pipe.upload("ok/fails.wav", mono_call(), [["x"]]))
                    pipe.configure(fail_share=0.0)
                if run == "denied":
                    _refused_then_past_the_grace(pipe, rt, "denied/good call.wav")
                states[run] = _settle(pipe, rt)
                handed[run] = list(spy.urls)
                issued |= spy.signatures()
                texts += _texts(pipe)

    assert states == {
        "ok": {"ok/good call.wav": "done", "ok/notes.txt": "rejected", "ok/fails.wav": "failed"},
        "sas": {"sas/good call.wav": "failed"},
        "denied": {"denied/good call.wav": "failed"},
    }
    # identity mode: plain URLs only, and nothing downloaded anonymously (BYOS)
    for run in ("ok", "denied"):
        assert handed[run]
        assert all("?" not in url for url in handed[run])
    assert len(issued) >= 1  # the SAS run really signed one: it is looked for below
    reports = "\n".join(texts)
    assert "SasRefused" in reports
    assert "ResultsNotReadable" in reports
    assert "HTTP 403" in reports  # the refused key was really tried

    forbidden = (
        {SPEECH_KEY, DEV_ACCOUNT_KEY, wrong_key}
        | _fragments(DEV_ACCOUNT_KEY)
        | _fragments(wrong_key)
        | _fragments(SPEECH_KEY)
        | issued
    )
    logs = "\n".join(all_logs.lines)
    assert "HTTP Request:" in logs
    assert _leaks(logs, forbidden) == []
    assert _leaks(reports, forbidden) == []
