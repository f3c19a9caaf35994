"""`python -m shared.doctor` against real Azurite and the local Speech service.

Healthy settings pass every check; each broken setting (wrong key, unreachable endpoint,
unknown model, unreachable storage) fails exactly its check, naming the setting, with a
non-zero exit; a dependency that accepts connections and never answers still gets an
answer within 30 s; no secret appears in any output; the HTTP function answers the same.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from devhost.services import (
    DEV_ACCOUNT_KEY,
    Azurite,
    SpeechEmulator,
    start_speech_emulator,
    wait_for,
)
from shared import storage
from shared.doctor.__main__ import main
from shared.settings import Settings
from shared.storage import StorageClients, ensure_resources
from tests.conftest import EmulatorFactory
from tests.integration.harness import running_pipeline

pytestmark = pytest.mark.integration

WRONG_KEY = "wrong-key-0123456789"
WRONG_ACCOUNT_KEY = base64.b64encode(b"not the account key, 64 bytes long" * 2).decode()
SECRET = "doctor-webhook-secret"


@pytest.fixture(autouse=True)
def _no_local_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The doctor reads ./local.settings.json when it exists: a developer's must not leak in.
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpeechEmulator]:
    """An emulator of this module's own, with a custom model `callcenter`."""
    base = Path(tmp_path_factory.mktemp("doctor-emulator"))
    phrases = base / "phrases.txt"
    phrases.write_text("thank you for calling\n", encoding="utf-8")
    service = start_speech_emulator(
        "--engine",
        "scripted",
        "--instant",
        "--custom-model",
        f"callcenter={phrases}",
        log_path=base / "emulator.log",
    )
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def env(azurite: Azurite, emulator: SpeechEmulator) -> dict[str, str]:
    """Healthy settings of a test's own, with its containers, table and queue created."""
    uid = uuid.uuid4().hex[:8]
    values = {
        "AzureWebJobsStorage": azurite.connection_string,
        "SPEECH_ENDPOINT": emulator.endpoint,
        "SPEECH_KEY": emulator.key,
        "INPUT_CONTAINER": f"dr-in-{uid}",
        "OUTPUT_CONTAINER": f"dr-out-{uid}",
        "ERROR_CONTAINER": f"dr-err-{uid}",
        "JOBS_TABLE": f"drjobs{uid}",
        "COMPLETION_QUEUE": f"dr-done-{uid}",
    }
    clients = StorageClients.from_setting(values, "AzureWebJobsStorage")
    ensure_resources(clients, Settings.from_env(values))
    return values


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def black_hole() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


def azurite_at(azurite: Azurite, port: int) -> str:
    """Azurite's connection string with every endpoint moved to `port`."""
    text = azurite.connection_string
    for endpoint in (azurite.blob_endpoint, azurite.queue_endpoint, azurite.table_endpoint):
        parts = urlsplit(endpoint)
        text = text.replace(parts.netloc, f"127.0.0.1:{port}")
    return text


def doctor(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any], str]:
    """Run the CLI twice (JSON, then text); exit code, parsed JSON, the text output."""
    code = main(["--json", *args], env=env)
    report = json.loads(capsys.readouterr().out)
    assert main(list(args), env=env) == code
    text = capsys.readouterr().out
    for secret in (env.get("SPEECH_KEY", ""), DEV_ACCOUNT_KEY, SECRET):
        if secret:
            assert secret not in json.dumps(report)
            assert secret not in text
    return code, report, text


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def failed(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["setting"] for c in report["checks"] if c["status"] == "fail"}


# --------------------------------------------------------------------------- healthy


def test_healthy_settings_pass_every_check(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, text = doctor(env, capsys)
    assert code == 0
    assert report["ok"] is True
    checks = by_name(report)
    for name in (
        "settings",
        "speech.endpoint",
        "speech.auth",
        "speech.model",
        "speech.webhook",
        "storage.connection",
        "storage.containers",
        "storage.sas",
        "storage.table",
        "storage.queue",
        "platform.trigger",
        "platform.binding",
        "speech.storage",
        "speech.results",
    ):
        assert checks[name]["status"] == "ok", checks[name]
    assert "account-key SAS issued and accepted" in checks["storage.sas"]["message"]
    assert "through a read-only SAS" in checks["speech.storage"]["message"]
    assert checks["speech.results"]["message"] == "result read with its SAS"
    lines = text.splitlines()
    assert lines[0] == "Settings from the environment."
    assert lines[-1].startswith("all checks passed")
    assert len(lines) == len(report["checks"]) + 2  # one line per check


def test_a_custom_model_and_an_active_web_hook_pass(
    env: dict[str, str], emulator: SpeechEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        **env,
        "SPEECH_MODEL": emulator.custom_model_url("callcenter"),
        "WEBHOOK_SECRET": SECRET,
    }
    with challenge_receiver() as url:
        register_hook(emulator, url)
        code, report, _ = doctor(env, capsys, "--webhook-url", url)
    assert code == 0, failed(report)
    checks = by_name(report)
    assert "custom model callcenter (en-US) is ready" in checks["speech.model"]["message"]
    assert checks["speech.webhook"]["status"] == "ok"


def test_web_hook_secret_without_a_hook_fails(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    env = {**env, "WEBHOOK_SECRET": SECRET}
    code, report, _ = doctor(
        env, capsys, "--webhook-url", "https://nowhere.example/api/speech-webhook"
    )
    assert code == 1
    assert failed(report) == {"speech.webhook": "WEBHOOK_SECRET"}
    assert "webhook_admin register" in by_name(report)["speech.webhook"]["fix"]


# --------------------------------------------------------------------------- broken


@pytest.mark.parametrize(
    ("broken", "check", "setting", "found"),
    [
        ("wrong key", "speech.auth", "SPEECH_KEY", "refused the key"),
        ("unreachable endpoint", "speech.endpoint", "SPEECH_ENDPOINT", "does not answer"),
        ("unknown model", "speech.model", "SPEECH_MODEL", "has no model"),
        ("unreachable storage", "storage.blob", "AzureWebJobsStorage", "does not answer"),
    ],
)
def test_each_broken_setting_fails_its_check_and_names_it(
    env: dict[str, str],
    azurite: Azurite,
    emulator: SpeechEmulator,
    capsys: pytest.CaptureFixture[str],
    broken: str,
    check: str,
    setting: str,
    found: str,
) -> None:
    changes = {
        "wrong key": {"SPEECH_KEY": WRONG_KEY},
        "unreachable endpoint": {"SPEECH_ENDPOINT": f"http://127.0.0.1:{closed_port()}"},
        "unknown model": {
            "SPEECH_MODEL": f"{emulator.endpoint}/speechtotext/models/{uuid.uuid4()}"
        },
        "unreachable storage": {"AzureWebJobsStorage": azurite_at(azurite, closed_port())},
    }[broken]
    code, report, text = doctor({**env, **changes}, capsys)
    assert code == 1
    assert report["ok"] is False
    assert failed(report) == {check: setting}  # that check, and only that one
    assert found in by_name(report)[check]["message"]
    assert by_name(report)[check]["fix"]  # says what to do
    assert any(
        line.startswith(f"FAIL {check}:") and f"[{setting}]" in line for line in text.splitlines()
    )


def test_dependencies_that_never_answer_still_get_an_answer_in_time(
    env: dict[str, str], azurite: Azurite, capsys: pytest.CaptureFixture[str]
) -> None:
    with black_hole() as port:
        broken = {
            **env,
            "SPEECH_ENDPOINT": f"http://127.0.0.1:{port}",
            "AzureWebJobsStorage": azurite_at(azurite, port),
        }
        start = time.monotonic()
        code = main(["--json"], env=broken)
        elapsed = time.monotonic() - start
    report = json.loads(capsys.readouterr().out)
    assert elapsed < 30.0
    assert code == 1
    assert failed(report) == {
        "speech.endpoint": "SPEECH_ENDPOINT",
        "storage.blob": "AzureWebJobsStorage",
    }
    checks = by_name(report)
    assert "does not answer" in checks["speech.endpoint"]["message"]
    assert "does not answer" in checks["storage.blob"]["message"]


# --------------------------------------------------------------------------- locked-down storage


def _locked_emulator(
    factory: EmulatorFactory, azurite: Azurite, *, identity: bool, byos: bool
) -> SpeechEmulator:
    args = ["--engine", "scripted", "--instant"]
    if identity:
        args += ["--storage-access", "identity"]
        args += ["--storage-connection-string", azurite.connection_string]
    if byos:
        args += ["--byos", azurite.connection_string]
    return factory(*args)


def test_identity_and_byos_pass_without_signing_any_sas(
    env: dict[str, str],
    azurite: Azurite,
    speech_emulator_factory: EmulatorFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator = _locked_emulator(speech_emulator_factory, azurite, identity=True, byos=True)
    env = {
        **env,
        "SPEECH_ENDPOINT": emulator.endpoint,
        "SPEECH_STORAGE_ACCESS": "identity",
        "SPEECH_RESULTS_CONNECTION": "SpeechResultsStorage",
        "SpeechResultsStorage": azurite.connection_string,
    }
    signed: list[str] = []
    monkeypatch.setattr(storage, "generate_blob_sas", lambda *a, **k: signed.append("sas"))
    monkeypatch.setattr(
        BlobServiceClient, "get_user_delegation_key", lambda *a, **k: signed.append("key")
    )
    code, report, _ = doctor(env, capsys)
    assert code == 0, failed(report)
    assert signed == []  # identity mode: no SAS, not even for the doctor's own checks
    checks = by_name(report)
    assert checks["storage.sas"]["status"] == "skip"
    assert "not needed: SPEECH_STORAGE_ACCESS=identity" in checks["storage.sas"]["message"]
    assert checks["speech.storage"]["status"] == "ok"
    assert "through its own identity (a plain URL)" in checks["speech.storage"]["message"]
    assert checks["speech.results"]["status"] == "ok"
    assert "bring-your-own-storage" in checks["speech.results"]["message"]


@pytest.mark.parametrize(
    ("case", "check", "setting", "found"),
    [
        ("sas against identity-only storage", "speech.storage", "SPEECH_STORAGE_ACCESS", "valid"),
        ("identity without access", "speech.storage", "SPEECH_STORAGE_ACCESS", "own identity"),
        (
            "byos without a results connection",
            "speech.results",
            "SPEECH_RESULTS_CONNECTION",
            "is not set",
        ),
        ("byos refused", "speech.results", "SPEECH_RESULTS_CONNECTION", "HTTP 403"),
    ],
)
def test_a_storage_access_that_cannot_work_fails_naming_the_setting(
    env: dict[str, str],
    azurite: Azurite,
    speech_emulator_factory: EmulatorFactory,
    capsys: pytest.CaptureFixture[str],
    case: str,
    check: str,
    setting: str,
    found: str,
) -> None:
    identity_emulator = case == "sas against identity-only storage"
    byos = case.startswith("byos")
    emulator = _locked_emulator(
        speech_emulator_factory, azurite, identity=identity_emulator, byos=byos
    )
    env = {**env, "SPEECH_ENDPOINT": emulator.endpoint}
    if case == "identity without access":
        env["SPEECH_STORAGE_ACCESS"] = "identity"
    if case == "byos refused":
        env["SPEECH_RESULTS_CONNECTION"] = "SpeechResultsStorage"
        env["SpeechResultsStorage"] = azurite.connection_string.replace(
            DEV_ACCOUNT_KEY, WRONG_ACCOUNT_KEY
        )
    code, report, text = doctor(env, capsys)
    assert code == 1
    assert failed(report) == {check: setting}  # that check, and only that one
    assert found in by_name(report)[check]["message"]
    assert by_name(report)[check]["fix"]  # says what to do
    assert WRONG_ACCOUNT_KEY not in text


# --------------------------------------------------------------------------- HTTP function


def test_the_http_function_returns_the_same_report(
    env: dict[str, str], azurite: Azurite, emulator: SpeechEmulator
) -> None:
    request = func.HttpRequest(method="GET", url="/api/doctor", body=b"")
    with running_pipeline(azurite, emulator, env) as pipe:
        response = pipe.functions["doctor"](req=request)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    report = json.loads(response.get_body())
    assert report["ok"] is True
    assert by_name(report)["storage.sas"]["status"] == "ok"

    with running_pipeline(azurite, emulator, {**env, "SPEECH_KEY": WRONG_KEY}) as pipe:
        response = pipe.functions["doctor"](req=request)
    assert response.status_code == 503
    body = response.get_body().decode()
    assert failed(json.loads(body)) == {"speech.auth": "SPEECH_KEY"}
    assert WRONG_KEY not in body


# --------------------------------------------------------------------------- helpers


@contextmanager
def challenge_receiver() -> Iterator[str]:
    """A web hook URL that answers the Speech service's registration challenge."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            token = parse_qs(urlsplit(self.path).query).get("validationToken", [""])[0]
            body = token.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/speech-webhook"
    finally:
        server.shutdown()
        server.server_close()


def register_hook(emulator: SpeechEmulator, url: str) -> None:
    """Register a signed completion hook to `url`; wait until its challenge succeeded."""
    with httpx.Client(
        base_url=f"{emulator.endpoint}/speechtotext",
        headers={"Ocp-Apim-Subscription-Key": emulator.key},
        params={"api-version": "2024-11-15"},
        timeout=30.0,
    ) as api:
        body = {
            "displayName": "doctor test",
            "webUrl": url,
            "events": {"transcriptionCompletion": True},
            "properties": {"secret": SECRET},
        }
        created = api.post("/webhooks", json=body)
        created.raise_for_status()
        hook = created.json()["self"].split("?")[0].rsplit("/", 1)[-1]

        def succeeded() -> bool:
            return api.get(f"/webhooks/{hook}").json().get("status") == "Succeeded"

        wait_for(succeeded, timeout=30.0, interval=0.1, what="the web hook challenge")
