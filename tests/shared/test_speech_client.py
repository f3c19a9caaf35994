"""SpeechClient against httpx.MockTransport: wire shapes, paging, error mapping, retries, secrets.

Retries run instantly: stamina's test mode is on for the whole module (`cap=True` keeps each
client's own `max_attempts`). Waits are asserted as computed values, never as wall time.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from devhost.services import Azurite, SpeechEmulator, wait_for
from shared.errors import (
    SpeechAuthError,
    SpeechNotFoundError,
    SpeechRequestError,
    SpeechServiceError,
    SpeechThrottledError,
    SpeechTransientError,
)
from shared.retry import RetryPolicy, parse_retry_after, set_testing
from shared.secret import Secret
from shared.settings import Settings
from shared.speech_client import (
    COGNITIVE_SERVICES_SCOPE,
    SpeechClient,
    description_filter,
    display_name_filter,
)
from shared.speech_models import TranscriptionStatus, build_submit_body
from tests.emulator.audio_fixtures import bursts, encode
from tests.emulator.speech import upload

ENDPOINT = "https://myspeech.cognitiveservices.azure.com"
KEY = "k3y-SUPER-secret-0123456789"
TOKEN = "eyJ-token-SECRET-abcdef"
SAS_SIG = "SASsignatureSECRET%3D"
CONTENT_URL = f"https://acct.blob.core.windows.net/artifacts/a.json?sv=2023&sp=r&sig={SAS_SIG}"
JOB_ID = "ba7ea6f5-3065-40b7-b49a-a90f48584683"
SECRETS = (KEY, TOKEN, SAS_SIG, "SASsignatureSECRET")


@pytest.fixture(autouse=True)
def instant_retries() -> Iterator[None]:
    with set_testing(True, attempts=50, cap=True):
        yield


def job(
    job_id: str = JOB_ID,
    *,
    status: str = "Running",
    display_name: str = "job-key",
    created: str = "2024-01-07T11:34:12Z",
) -> dict[str, Any]:
    return {
        "self": f"{ENDPOINT}/speechtotext/transcriptions/{job_id}?api-version=2024-11-15",
        "displayName": display_name,
        "status": status,
        "createdDateTime": created,
        "properties": {"channels": [0]},
    }


Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


@dataclass
class Script:
    """A MockTransport handler that answers from a list and records every request."""

    replies: list[Reply]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.replies:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        return reply(request)


def make_client(replies: list[Reply], **kwargs: Any) -> tuple[SpeechClient, Script]:
    script = Script(list(replies))
    kwargs.setdefault("key", KEY)
    kwargs.setdefault("max_attempts", 3)
    client = SpeechClient(ENDPOINT, transport=httpx.MockTransport(script), **kwargs)
    return client, script


def error(status: int, code: str = "", inner: str = "", message: str = "", **headers: str):
    body: dict[str, Any] = {"code": code, "message": message}
    if inner:
        body["innerError"] = {"code": inner, "message": "detail"}
    return httpx.Response(status, json=body, headers=headers)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"secret {secret!r} leaked into: {text}"


# --------------------------------------------------------------------------- happy paths


def test_submit_posts_the_body_and_decodes_the_job() -> None:
    body = {"displayName": "job-key", "locale": "en-US", "contentUrls": [CONTENT_URL]}
    client, script = make_client([httpx.Response(201, json=job(status="NotStarted"))])
    transcription = client.submit(body)
    assert transcription.id == JOB_ID
    assert transcription.status is TranscriptionStatus.NOT_STARTED
    (request,) = script.requests
    assert request.method == "POST"
    assert request.url.path == "/speechtotext/transcriptions:submit"
    assert request.url.params["api-version"] == "2024-11-15"
    assert request.headers["Ocp-Apim-Subscription-Key"] == KEY
    assert "Authorization" not in request.headers
    assert json.loads(request.content) == body
    assert client.request_count == 1


def test_every_request_carries_a_timeout() -> None:
    client, script = make_client([httpx.Response(200, json=job())], timeout=12.5)
    client.get(JOB_ID)
    timeouts = script.requests[0].extensions["timeout"]
    assert timeouts == {"connect": 12.5, "read": 12.5, "write": 12.5, "pool": 12.5}


def test_api_version_is_configurable() -> None:
    script = Script([httpx.Response(200, json=job())])
    client = SpeechClient(
        ENDPOINT + "/", "2025-10-15", key=KEY, transport=httpx.MockTransport(script)
    )
    client.get(JOB_ID)
    assert script.requests[0].url == httpx.URL(
        f"{ENDPOINT}/speechtotext/transcriptions/{JOB_ID}?api-version=2025-10-15"
    )


def test_get_returns_retry_after_when_sent() -> None:
    client, _ = make_client(
        [
            httpx.Response(200, json=job(status="Running"), headers={"Retry-After": "60"}),
            httpx.Response(200, json=job(status="Succeeded")),
        ]
    )
    running, retry_after = client.get(JOB_ID)
    assert running.status is TranscriptionStatus.RUNNING
    assert retry_after == 60.0
    done, retry_after = client.get(JOB_ID)
    assert done.status is TranscriptionStatus.SUCCEEDED
    assert retry_after is None


def test_iter_transcriptions_follows_next_link_on_our_own_host() -> None:
    # The service's nextLink names another host and no api-version: the client keeps its
    # endpoint (the key must never go elsewhere) and adds the api-version back.
    next_link = (
        "https://westus.api.cognitive.microsoft.com/speechtotext/transcriptions"
        "?skip=2&top=2&filter=status%20eq%20'Running'"
    )
    client, script = make_client(
        [
            httpx.Response(200, json={"values": [job("a"), job("b")], "@nextLink": next_link}),
            httpx.Response(200, json={"values": [job("c")], "@nextLink": None}),
        ]
    )
    ids = [t.id for t in client.iter_transcriptions(page_size=2, filter="status eq 'Running'")]
    assert ids == ["a", "b", "c"]
    first, second = script.requests
    assert first.url.params["top"] == "2"
    assert first.url.params["filter"] == "status eq 'Running'"
    assert second.url.host == "myspeech.cognitiveservices.azure.com"
    assert second.url.params["skip"] == "2"
    assert second.url.params["filter"] == "status eq 'Running'"
    assert second.url.params["api-version"] == "2024-11-15"
    assert second.headers["Ocp-Apim-Subscription-Key"] == KEY
    assert client.request_count == 2


def test_iter_transcriptions_skips_undecodable_entries(caplog: pytest.LogCaptureFixture) -> None:
    page = {"values": [job("a"), {"status": "Running"}, job("c")]}
    client, _ = make_client([httpx.Response(200, json=page)])
    with caplog.at_level(logging.WARNING):
        assert [t.id for t in client.iter_transcriptions()] == ["a", "c"]
    assert "skipping entry 1" in caplog.text


def test_iter_transcriptions_rejects_bad_page_size() -> None:
    client, _ = make_client([])
    with pytest.raises(ValueError, match="page_size"):
        list(client.iter_transcriptions(page_size=101))


def test_find_by_display_name_escapes_quotes_and_matches_exactly() -> None:
    name = "audio-input|O'Brien #1 ?%.wav|0x8DC"
    page = {
        "values": [
            job("new", display_name=name, created="2024-01-08T00:00:00Z"),
            job("other", display_name="something else"),
            job("old", display_name=name, created="2024-01-07T00:00:00Z"),
        ]
    }
    client, script = make_client([httpx.Response(200, json=page)])
    found = client.find_by_display_name(name)
    assert [t.id for t in found] == ["old", "new"]
    assert script.requests[0].url.params["filter"] == (
        "displayName eq 'audio-input|O''Brien #1 ?%.wav|0x8DC'"
    )


def test_list_files_reads_all_pages_with_sas_lifetime() -> None:
    def file(name: str, kind: str = "Transcription") -> dict[str, Any]:
        return {
            "self": f"{ENDPOINT}/speechtotext/transcriptions/{JOB_ID}/files/{name}",
            "name": name,
            "kind": kind,
            "links": {"contentUrl": f"{CONTENT_URL}&n={name}"},
            "properties": {"size": 10},
        }

    next_link = (
        f"{ENDPOINT}/speechtotext/transcriptions/{JOB_ID}/files?skip=1&api-version=2024-11-15"
    )
    client, script = make_client(
        [
            httpx.Response(200, json={"values": [file("a.json")], "@nextLink": next_link}),
            httpx.Response(200, json={"values": [file("report.json", "TranscriptionReport")]}),
        ]
    )
    files = client.list_files(JOB_ID, sas_lifetime_minutes=30)
    assert [(f.name, f.kind) for f in files] == [
        ("a.json", "Transcription"),
        ("report.json", "TranscriptionReport"),
    ]
    assert files[0].content_url.endswith("&n=a.json")
    assert script.requests[0].url.path == f"/speechtotext/transcriptions/{JOB_ID}/files"
    assert script.requests[0].url.params["sasLifetimeMinutes"] == "30"
    assert script.requests[1].url.params["skip"] == "1"
    assert script.requests[1].url.params.get_list("api-version") == ["2024-11-15"]


def test_list_files_of_one_kind_asks_the_service_to_filter() -> None:
    client, script = make_client([httpx.Response(200, json={"values": []})])
    assert client.list_files(JOB_ID, kind="TranscriptionReport") == []
    assert script.requests[0].url.params["filter"] == "kind eq 'TranscriptionReport'"
    with pytest.raises(ValueError, match="not a file kind"):
        client.list_files(JOB_ID, kind="x' or name ne '")


def test_download_sends_no_credential_and_is_not_counted() -> None:
    client, script = make_client([httpx.Response(200, content=b'{"x": 1}')])
    assert client.download(CONTENT_URL) == b'{"x": 1}'
    (request,) = script.requests
    assert str(request.url) == CONTENT_URL  # the SAS query is sent untouched
    assert "Ocp-Apim-Subscription-Key" not in request.headers
    assert "Authorization" not in request.headers
    assert client.request_count == 0


def test_download_is_retried_and_maps_an_expired_sas() -> None:
    client, script = make_client(
        [httpx.Response(503), httpx.Response(403, text="<Error>AuthenticationFailed</Error>")]
    )
    with pytest.raises(SpeechAuthError) as info:
        client.download(CONTENT_URL)
    assert len(script.requests) == 2
    assert info.value.operation == "download"
    assert_no_secret(str(info.value))


@pytest.mark.parametrize("status", [204, 404])
def test_delete_succeeds_when_gone(status: int) -> None:
    client, script = make_client([httpx.Response(status)])
    client.delete(JOB_ID)
    assert script.requests[0].method == "DELETE"
    assert script.requests[0].url.path == f"/speechtotext/transcriptions/{JOB_ID}"


def test_delete_raises_other_errors() -> None:
    client, _ = make_client([error(409, "Conflict", message="busy")])
    with pytest.raises(SpeechRequestError):
        client.delete(JOB_ID)


@pytest.mark.parametrize("bad_id", ["", "a/b", "x?y"])
def test_transcription_ids_are_validated(bad_id: str) -> None:
    client, script = make_client([])
    with pytest.raises(ValueError, match="transcription id"):
        client.get(bad_id)
    assert script.requests == []


def test_context_manager_closes_the_pool() -> None:
    client, script = make_client([httpx.Response(200, json=job())])
    with client as entered:
        assert entered is client
    with pytest.raises(RuntimeError, match="closed"):
        client.get(JOB_ID)
    assert script.requests == []


def test_client_needs_a_credential_and_a_plain_endpoint() -> None:
    with pytest.raises(ValueError, match="key or a token credential"):
        SpeechClient(ENDPOINT)
    with pytest.raises(ValueError, match="endpoint"):
        SpeechClient("ftp://x", key=KEY)
    with pytest.raises(ValueError, match="endpoint"):
        SpeechClient(f"{ENDPOINT}?a=b", key=KEY)
    assert KEY not in repr(SpeechClient(ENDPOINT, key=KEY))


# --------------------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    ("status", "expected", "calls"),
    [
        (400, SpeechRequestError, 1),
        (401, SpeechAuthError, 1),
        (403, SpeechAuthError, 1),
        (404, SpeechNotFoundError, 1),
        (409, SpeechRequestError, 1),
        (415, SpeechRequestError, 1),
        (429, SpeechThrottledError, 3),
        (500, SpeechTransientError, 3),
        (502, SpeechTransientError, 3),
        (503, SpeechTransientError, 3),
        (504, SpeechTransientError, 3),
    ],
)
def test_status_mapping(status: int, expected: type[SpeechServiceError], calls: int) -> None:
    replies: list[Reply] = [
        error(status, "InvalidRequest", "InvalidChannels", "Channels are wrong.")
        for _ in range(calls)
    ]
    client, script = make_client(replies)
    with pytest.raises(expected) as info:
        client.get(JOB_ID)
    exc = info.value
    assert type(exc) is expected
    assert (exc.status, exc.code, exc.inner_code) == (status, "InvalidRequest", "InvalidChannels")
    assert exc.detail_code == "InvalidChannels"
    assert exc.message == "Channels are wrong."
    assert exc.operation == "get"
    assert str(exc).startswith(f"get: HTTP {status} InvalidRequest/InvalidChannels")
    assert len(script.requests) == calls  # bounded: max_attempts=3, permanent errors once


def test_non_json_error_body_uses_the_status_text() -> None:
    client, _ = make_client([httpx.Response(400, text="<html>bad gateway page</html>")])
    with pytest.raises(SpeechRequestError) as info:
        client.get(JOB_ID)
    assert info.value.message == "Bad Request"
    assert info.value.code is None


def test_gateway_wrapped_error_body_is_understood() -> None:
    body = {"error": {"code": "401", "message": "Access denied due to invalid subscription key."}}
    client, _ = make_client([httpx.Response(401, json=body)])
    with pytest.raises(SpeechAuthError) as info:
        client.get(JOB_ID)
    assert info.value.code == "401"
    assert "invalid subscription key" in info.value.message


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (httpx.ConnectError("Connection refused"), "failed"),
        (httpx.ReadTimeout("timed out"), "timed out"),
        (httpx.RemoteProtocolError("Server disconnected"), "failed"),
    ],
)
def test_transport_errors_are_transient_and_bounded(failure: Exception, kind: str) -> None:
    client, script = make_client([failure, failure, failure])
    with pytest.raises(SpeechTransientError) as info:
        client.get(JOB_ID)
    assert info.value.status is None
    assert info.value.operation == "get"
    assert kind in str(info.value)
    assert type(failure).__name__ in str(info.value)
    assert len(script.requests) == 3
    assert client.request_count == 3  # every try counts against the quota


def test_transient_errors_are_retried_until_success() -> None:
    client, script = make_client(
        [httpx.ConnectError("refused"), error(503), httpx.Response(200, json=job())]
    )
    transcription, _ = client.get(JOB_ID)
    assert transcription.id == JOB_ID
    assert len(script.requests) == 3


def test_garbled_success_body_is_transient() -> None:
    client, script = make_client([httpx.Response(200, text="<html>") for _ in range(3)])
    with pytest.raises(SpeechTransientError, match="unexpected response body"):
        client.get(JOB_ID)
    assert len(script.requests) == 3


def test_max_attempts_one_means_no_retry() -> None:
    client, script = make_client([error(500), httpx.Response(200, json=job())], max_attempts=1)
    with pytest.raises(SpeechTransientError):
        client.get(JOB_ID)
    assert len(script.requests) == 1


# --------------------------------------------------------------------------- Retry-After


def test_retry_after_seconds_is_kept_and_is_the_computed_wait() -> None:
    client, _ = make_client([error(429, "TooManyRequests", **{"Retry-After": "7"})], max_attempts=1)
    with pytest.raises(SpeechThrottledError) as info:
        client.get(JOB_ID)
    assert info.value.retry_after == 7.0
    wait = RetryPolicy(max_retry_wait=30).backoff(info.value)
    assert isinstance(wait, float)
    assert 7.0 <= wait <= 7.7  # the header's wait plus at most 10 % jitter


def test_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=20)
    client, _ = make_client(
        [error(503, **{"Retry-After": format_datetime(when, usegmt=True)})], max_attempts=1
    )
    with pytest.raises(SpeechTransientError) as info:
        client.get(JOB_ID)
    assert info.value.retry_after is not None
    assert 17.0 <= info.value.retry_after <= 20.0


def test_throttled_then_success_is_retried() -> None:
    client, script = make_client(
        [error(429, **{"Retry-After": "1"}), httpx.Response(200, json=job())]
    )
    assert client.get(JOB_ID)[0].id == JOB_ID
    assert len(script.requests) == 2


@pytest.mark.parametrize("status", [429, 503])
def test_long_retry_after_raises_throttled_at_once(status: int) -> None:
    client, script = make_client(
        [error(status, **{"Retry-After": "120"}) for _ in range(5)],
        max_attempts=5,
        max_retry_wait=30,
    )
    with pytest.raises(SpeechThrottledError) as info:
        client.submit({"displayName": "job-key"})
    assert len(script.requests) == 1  # no sleeping inside the Function: the caller defers
    assert info.value.retry_after == 120.0
    assert info.value.status == status


class TestRetryPolicy:
    def test_backoff_decisions(self) -> None:
        policy = RetryPolicy(max_retry_wait=10)
        assert policy.backoff(SpeechTransientError("x")) is True
        assert policy.backoff(SpeechRequestError("x", status=400)) is False
        assert policy.backoff(ValueError("x")) is False
        assert policy.backoff(SpeechThrottledError("x", retry_after=11)) is False
        assert policy.backoff(SpeechThrottledError("x", retry_after=0)) == 0.0
        wait = policy.backoff(SpeechThrottledError("x", retry_after=10))
        assert isinstance(wait, float)
        assert 10.0 <= wait <= 11.0

    def test_attempts_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="attempts"):
            RetryPolicy(attempts=0)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (None, None),
            ("", None),
            ("soon", None),
            ("nan", None),
            ("5", 5.0),
            (" 2.5 ", 2.5),
            ("-3", 0.0),
            ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0),
            ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),  # in the past
        ],
    )
    def test_parse_retry_after(self, value: str | None, expected: float | None) -> None:
        now = datetime(2026, 10, 21, 7, 28, 0, tzinfo=UTC)
        assert parse_retry_after(value, now=now) == expected


# --------------------------------------------------------------------------- submit safety


def test_submit_after_connect_error_posts_again_without_lookup() -> None:
    client, script = make_client([httpx.ConnectError("refused"), httpx.Response(201, json=job())])
    assert client.submit({"displayName": "job-key"}).id == JOB_ID
    assert [r.method for r in script.requests] == ["POST", "POST"]


def test_submit_after_ambiguous_failure_finds_the_job_instead_of_duplicating() -> None:
    existing = job("already-there", display_name="job-key", status="NotStarted")
    client, script = make_client(
        [httpx.ReadTimeout("timed out"), httpx.Response(200, json={"values": [existing]})]
    )
    assert client.submit({"displayName": "job-key"}).id == "already-there"
    assert [r.method for r in script.requests] == ["POST", "GET"]
    assert script.requests[1].url.params["filter"] == "displayName eq 'job-key'"


def test_submit_after_500_with_no_job_created_posts_again() -> None:
    client, script = make_client(
        [
            error(500, "InternalServerError"),
            httpx.Response(200, json={"values": [job("x", display_name="other")]}),
            httpx.Response(201, json=job()),
        ]
    )
    assert client.submit({"displayName": "job-key"}).id == JOB_ID
    assert [r.method for r in script.requests] == ["POST", "GET", "POST"]


def test_submit_request_error_is_not_retried() -> None:
    client, script = make_client([error(400, "InvalidRequest", "InvalidTimeToLive", "TTL")])
    with pytest.raises(SpeechRequestError) as info:
        client.submit({"displayName": "job-key"})
    assert info.value.operation == "submit"
    assert info.value.inner_code == "InvalidTimeToLive"
    assert len(script.requests) == 1


# --------------------------------------------------------------------------- secrets


def test_no_secret_in_messages_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    echoed = f"Cannot read {CONTENT_URL}; key {KEY} rejected; sig={SAS_SIG}"
    client, _ = make_client(
        [
            error(400, "InvalidRequest", "InvalidRecordingsUri", echoed),
            error(500, message=echoed),
            error(500, message=echoed),
            error(500, message=echoed),
            httpx.ConnectError(f"cannot connect to {CONTENT_URL}"),
            httpx.ConnectError(f"cannot connect to {CONTENT_URL}"),
            httpx.ConnectError(f"cannot connect to {CONTENT_URL}"),
        ]
    )
    messages: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for call in (
            lambda: client.submit({"displayName": "k"}),
            lambda: client.download(CONTENT_URL),
            lambda: client.download(CONTENT_URL),
        ):
            with pytest.raises(SpeechServiceError) as info:
                call()
            messages += [str(info.value), repr(info.value), info.value.message]
    assert "acct.blob.core.windows.net/artifacts/a.json" in messages[0]  # still useful
    for text in [*messages, caplog.text, *(str(r.__dict__) for r in caplog.records)]:
        assert_no_secret(text)
    assert "GET https://acct.blob.core.windows.net/artifacts/a.json -> 500" in caplog.text


def test_debug_log_line_per_request(caplog: pytest.LogCaptureFixture) -> None:
    client, _ = make_client([httpx.Response(201, json=job())])
    with caplog.at_level(logging.DEBUG, logger="shared.speech_transport"):
        client.submit({"displayName": "job-key"})
    assert f"POST {ENDPOINT}/speechtotext/transcriptions:submit -> 201 in" in caplog.text


# --------------------------------------------------------------------------- bearer tokens


@dataclass
class StubCredential:
    """Our own TokenCredential seam: hands out numbered tokens and records the scopes."""

    lifetime_s: int = 3600
    scopes: list[tuple[str, ...]] = field(default_factory=list)
    fail: bool = False

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        if self.fail:
            raise RuntimeError(f"no identity available; token {TOKEN}")
        self.scopes.append(scopes)
        return AccessToken(f"{TOKEN}-{len(self.scopes)}", int(time.time()) + self.lifetime_s)


def token_client(replies: list[Reply], credential: StubCredential) -> tuple[SpeechClient, Script]:
    return make_client(replies, key=None, credential=credential)


def test_bearer_token_is_used_and_cached() -> None:
    credential = StubCredential()
    client, script = token_client([httpx.Response(200, json=job())] * 2, credential)
    client.get(JOB_ID)
    client.get(JOB_ID)
    assert credential.scopes == [(COGNITIVE_SERVICES_SCOPE,)]
    for request in script.requests:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}-1"
        assert "Ocp-Apim-Subscription-Key" not in request.headers


def test_token_near_expiry_is_refreshed() -> None:
    credential = StubCredential(lifetime_s=60)  # inside the 5-minute refresh margin
    client, script = token_client([httpx.Response(200, json=job())] * 2, credential)
    client.get(JOB_ID)
    client.get(JOB_ID)
    assert [r.headers["Authorization"] for r in script.requests] == [
        f"Bearer {TOKEN}-1",
        f"Bearer {TOKEN}-2",
    ]


def test_401_drops_the_cached_token_and_hides_it() -> None:
    credential = StubCredential()
    client, script = token_client(
        [
            error(401, "Unauthorized", message=f"token {TOKEN}-1 expired"),
            httpx.Response(200, json=job()),
        ],
        credential,
    )
    with pytest.raises(SpeechAuthError) as info:
        client.get(JOB_ID)
    assert_no_secret(str(info.value))
    client.get(JOB_ID)
    assert script.requests[1].headers["Authorization"] == f"Bearer {TOKEN}-2"


def test_credential_failure_is_an_auth_error_without_details() -> None:
    client, script = token_client([], StubCredential(fail=True))
    with pytest.raises(SpeechAuthError, match="SPEECH_KEY") as info:
        client.get(JOB_ID)
    assert_no_secret(str(info.value))
    assert script.requests == []


def test_key_wins_over_a_credential() -> None:
    credential = StubCredential()
    client, script = make_client([httpx.Response(200, json=job())], credential=credential)
    client.get(JOB_ID)
    assert script.requests[0].headers["Ocp-Apim-Subscription-Key"] == KEY
    assert credential.scopes == []


# --------------------------------------------------------------------------- settings


def test_from_settings_with_a_key() -> None:
    settings = Settings(
        speech_endpoint=ENDPOINT,
        speech_key=Secret(KEY),
        speech_api_version="2025-10-15",
        speech_timeout_seconds=7.0,
        speech_max_attempts=2,
        speech_rate_limit=None,
    )
    script = Script([error(503), error(503), error(503)])
    client = SpeechClient.from_settings(settings, transport=httpx.MockTransport(script))
    with pytest.raises(SpeechTransientError):
        client.get(JOB_ID)
    assert len(script.requests) == 2  # SPEECH_MAX_ATTEMPTS
    request = script.requests[0]
    assert request.headers["Ocp-Apim-Subscription-Key"] == KEY
    assert request.url.params["api-version"] == "2025-10-15"
    assert request.extensions["timeout"]["read"] == 7.0
    assert "auth=key" in repr(client)
    assert KEY not in repr(client)


def test_from_settings_without_a_key_uses_default_azure_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import azure.identity  # noqa: PLC0415 - patched where from_settings looks it up

    credential = StubCredential()
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda: credential)
    script = Script([httpx.Response(200, json=job())])
    settings = Settings(speech_endpoint=ENDPOINT, speech_rate_limit=None)
    client = SpeechClient.from_settings(settings, transport=httpx.MockTransport(script))
    client.get(JOB_ID)
    assert script.requests[0].headers["Authorization"] == f"Bearer {TOKEN}-1"
    assert credential.scopes == [(COGNITIVE_SERVICES_SCOPE,)]
    assert "auth=token" in repr(client)


def test_azure_identity_is_not_imported_with_a_key() -> None:
    # Cold start: the heavy azure.identity import happens only when a token is needed.
    code = (
        "import sys; from shared.settings import Settings, Secret; "
        "from shared.speech_client import SpeechClient; "
        f"SpeechClient.from_settings(Settings(speech_endpoint={ENDPOINT!r}, "
        "speech_key=Secret('k'))); "
        "assert 'azure.identity' not in sys.modules, 'azure.identity imported'"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60)


# --------------------------------------------------------------------------- real HTTP


@pytest.mark.integration
def test_full_lifecycle_against_the_emulator(
    speech_emulator_factory: Callable[..., SpeechEmulator], azurite: Azurite
) -> None:
    emulator = speech_emulator_factory("--engine", "scripted", "--instant")
    audio_url = upload(azurite, encode([bursts([(0.2, 0.8)], 1.0)]), transcript=[["hello"]])
    name = f"audio-input|O'Brien #{uuid.uuid4().hex[:6]}.wav|0x8DC"
    body = build_submit_body(
        display_name=name,
        content_url=audio_url,
        locale="en-US",
        channels=[0],
        time_to_live_hours=48,
    )
    with SpeechClient(emulator.url, key=emulator.key, max_attempts=2) as client:
        created = client.submit(body)
        assert created.display_name == name
        others = [client.submit({**body, "displayName": f"other-{i}"}) for i in range(2)]

        def finished() -> bool:
            return client.get(created.id)[0].status.is_terminal

        wait_for(finished, timeout=30, interval=0.05)
        assert client.get(created.id)[0].status is TranscriptionStatus.SUCCEEDED
        assert [t.id for t in client.find_by_display_name(name)] == [created.id]
        listed = {t.id for t in client.iter_transcriptions(page_size=1)}
        assert {created.id, *(o.id for o in others)} <= listed

        files = client.list_files(created.id, sas_lifetime_minutes=10)
        assert sorted(f.kind for f in files) == ["Transcription", "TranscriptionReport"]
        result = next(f for f in files if f.kind == "Transcription")
        count_before = client.request_count
        content = json.loads(client.download(result.content_url))
        assert client.request_count == count_before  # downloads are not Speech calls
        assert content["source"] == audio_url.split("?", maxsplit=1)[0]

        client.delete(created.id)
        with pytest.raises(SpeechNotFoundError):
            client.get(created.id)
        client.delete(created.id)  # already gone: fine

    with (
        SpeechClient(emulator.url, key="wrong-key-123456") as bad,
        pytest.raises(SpeechAuthError) as info,
    ):
        bad.get(created.id)
    assert "wrong-key-123456" not in str(info.value)


@pytest.mark.integration
def test_token_auth_and_rate_limit_against_the_emulator(
    speech_emulator_factory: Callable[..., SpeechEmulator],
) -> None:
    emulator = speech_emulator_factory("--engine", "scripted", "--instant", "--accept-bearer")
    with httpx.Client(base_url=f"{emulator.url}/_emulator") as admin_api:
        response = admin_api.patch("/config", json={"rate_limit": "2/120"})
        assert response.status_code == 200, response.text
    credential = StubCredential()
    with SpeechClient(emulator.url, credential=credential, max_retry_wait=5) as client:
        assert list(client.iter_transcriptions()) == []  # accepted with a bearer token
        list(client.iter_transcriptions())
        with pytest.raises(SpeechThrottledError) as info:
            list(client.iter_transcriptions())
    assert len(credential.scopes) == 1  # one token for all calls
    assert info.value.status == 429
    assert info.value.inner_code == "QuotaViolation"
    assert info.value.retry_after is not None
    assert info.value.retry_after > 5
    assert client.request_count == 3  # the long Retry-After was not retried in-process


def test_submit_throttled_after_an_ambiguous_failure_is_not_reported_as_throttled() -> None:
    # The caller treats SpeechThrottledError as "nothing was created"; after a read timeout
    # that is no longer known, so the client reports a plain transient error instead.
    client, script = make_client(
        [httpx.ReadTimeout("timed out"), error(429, "TooManyRequests", **{"Retry-After": "90"})],
        max_retry_wait=30,
    )
    with pytest.raises(SpeechTransientError) as info:
        client.submit({"displayName": "job-key"})
    assert type(info.value) is SpeechTransientError
    assert info.value.retry_after == 90.0
    assert info.value.status == 429
    assert "may have created" in info.value.message
    assert [r.method for r in script.requests] == ["POST", "GET"]


def test_set_testing_controls_attempts_and_restores_the_previous_mode() -> None:
    client, script = make_client([error(500) for _ in range(7)], max_attempts=5)
    with set_testing(True, attempts=2), pytest.raises(SpeechTransientError):
        client.get(JOB_ID)
    assert len(script.requests) == 2
    with pytest.raises(SpeechTransientError):
        client.get(JOB_ID)  # back to the module's mode: capped at the client's own limit
    assert len(script.requests) == 2 + 5


# --------------------------------------------------------------------------- filters


def test_equality_filters_quote_their_value() -> None:
    assert description_filter("speech-batch-functions: acct/audio-input") == (
        "description eq 'speech-batch-functions: acct/audio-input'"
    )
    assert display_name_filter("it's") == "displayName eq 'it''s'"


# --------------------------------------------------------------------------- models, locales


def test_transcription_locales() -> None:
    client, script = make_client(
        [httpx.Response(200, json={"Submit": ["en-US", "de-DE"], "Transcribe": []})]
    )
    assert client.transcription_locales() == {"Submit": ["en-US", "de-DE"], "Transcribe": []}
    assert script.requests[0].url.path == "/speechtotext/transcriptions/locales"


def test_get_model_reads_a_model_of_this_resource() -> None:
    model = f"{ENDPOINT}/speechtotext/models/{JOB_ID}?api-version=2024-11-15"
    client, script = make_client([httpx.Response(200, json={"locale": "en-US"})])
    assert client.get_model(model) == {"locale": "en-US"}
    assert script.requests[0].url.path == f"/speechtotext/models/{JOB_ID}"
    client, script = make_client([error(404, "NotFound")])
    with pytest.raises(SpeechNotFoundError):
        client.get_model(model)


@pytest.mark.parametrize(
    "model",
    [
        f"https://other.cognitiveservices.azure.com/speechtotext/models/{JOB_ID}",
        f"{ENDPOINT}/speechtotext/transcriptions/{JOB_ID}",
    ],
)
def test_get_model_never_sends_the_key_elsewhere(model: str) -> None:
    client, script = make_client([])
    with pytest.raises(ValueError, match="model"):
        client.get_model(model)
    assert script.requests == []
