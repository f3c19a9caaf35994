"""The Storage transport reads the environment's proxy settings once, with requests' meaning."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from shared import storage_transport
from shared.storage_transport import pooled_transport

BLOB = "https://acct.blob.core.windows.net/outputs/a.json?comp=block"
QUEUE = "https://acct.queue.core.windows.net/q/messages"


def _settings(session: requests.Session, url: str, **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"proxies": {}, "stream": None, "verify": True, "cert": None}
    options.update(kwargs)
    return session.merge_environment_settings(url, **options)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HTTPS_PROXY": "http://proxy.corp:3128"},
        {"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": ".blob.core.windows.net"},
        {"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": "*"},
        {"REQUESTS_CA_BUNDLE": "/etc/ssl/corp.pem"},
        {"CURL_CA_BUNDLE": "/etc/ssl/curl.pem", "ALL_PROXY": "socks5://proxy.corp:1080"},
    ],
)
@pytest.mark.parametrize("url", [BLOB, QUEUE, "http://127.0.0.1:10000/devstoreaccount1/c/b"])
def test_the_environment_means_what_it_means_to_requests(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], url: str
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    ours = pooled_transport().session
    assert _settings(ours, url) == _settings(requests.Session(), url)
    # A caller's own proxies and verification still win, as with requests.
    explicit = {"proxies": {"https": "http://explicit:1"}, "verify": "/explicit.pem"}
    assert _settings(ours, url, **explicit) == _settings(requests.Session(), url, **explicit)


def test_the_environment_is_read_once_per_endpoint(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    reads: list[str] = []
    real = requests.utils.get_environ_proxies

    def counting(url: str, no_proxy: str | None = None) -> dict[str, str]:
        reads.append(url)
        return real(url, no_proxy=no_proxy)

    clean_env.setattr(storage_transport, "get_environ_proxies", counting)
    session = pooled_transport().session
    for index in range(20):
        settings = _settings(session, f"{BLOB}&n={index}")
        assert settings["proxies"]["https"] == "http://proxy.corp:3128"
    _settings(session, QUEUE)
    assert len(reads) == 2  # one per host, not one per call
    assert session.trust_env is False  # requests' own per-call scan (and netrc lookup) is off


@pytest.mark.parametrize("bundle", ["file", "dir"])
def test_a_ca_bundle_is_used_as_requests_uses_it_and_looked_at_once(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, bundle: str
) -> None:
    path = tmp_path / "ca"
    if bundle == "dir":
        path.mkdir()
    else:
        path.write_text("-----BEGIN CERTIFICATE-----\n")
    adapter = pooled_transport().session.get_adapter(BLOB)
    request = requests.Request("PUT", BLOB).prepare()
    looks: list[str] = []
    real_isdir = os.path.isdir

    def isdir(candidate: str) -> bool:
        looks.append(candidate)
        return real_isdir(candidate)

    clean_env.setattr(os.path, "isdir", isdir)
    for _ in range(5):
        ours = adapter.build_connection_pool_key_attributes(request, str(path))
    expected = HTTPAdapter().build_connection_pool_key_attributes(request, str(path))
    assert ours == expected
    assert looks.count(str(path)) == 2  # ours once, requests' own adapter once
    assert adapter.build_connection_pool_key_attributes(request, False) == (
        HTTPAdapter().build_connection_pool_key_attributes(request, False)
    )
