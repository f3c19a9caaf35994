"""The HTTP transport of the app's Storage clients: a connection pool as wide as its work.

azure-core's default transport keeps at most 10 connections per host (requests' default).
The app runs far more Storage calls side by side: a batch completion settles 16 recordings
at once and each writes its products 8 at a time, and the blob trigger, the queue trigger
and the poller run beside it. Past 10, every finished call closed its connection ("Connection
pool is full, discarding connection", ~1,700 log lines per 1,000 batched recordings) and the
next call opened a new one: a TCP handshake each time locally, a TLS handshake against
Azure Storage. A wider pool keeps those connections alive.

The environment's proxy settings (``HTTPS_PROXY``, ``NO_PROXY``...) and CA bundle
(``REQUESTS_CA_BUNDLE``) are honoured as requests honours them, but read once per endpoint
instead of on every call: requests walks all of ``os.environ`` twice per request to find
them, and a Functions worker's environment holds every app setting. With ~115 variables
(and a CA bundle set) a small blob write cost the app 2.47 ms of CPU before and 2.03 after. App
settings cannot change under a running worker (changing one restarts it), so nothing is
missed. ``~/.netrc`` is not consulted: Storage calls carry their own authorization.

Everything else is as azure-core sets it up: urllib3 retries off (the SDK's own retry
policy retries) and 32 KB socket blocks.
"""

from __future__ import annotations

import os
from typing import Any, Final
from urllib.parse import urlsplit

import requests
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3.util.retry import Retry

__all__ = ["POOL_CONNECTIONS", "TRANSPORT_OPTIONS", "pooled_transport"]

# Connections kept alive per host (per client): above the app's widest fan-out (16 x 8
# product writes go through one blob client) would only keep idle sockets open.
POOL_CONNECTIONS: Final = 64
_BLOCK_SIZE: Final = 32 * 1024  # azure-core's own adapter uses this socket block size


class _PooledAdapter(HTTPAdapter):
    """requests' adapter with the socket block size azure-core's own adapter sets, and the
    kind of a CA bundle path (file or directory) looked up once instead of on every call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._ca_kinds: dict[str, str] = {}
        super().__init__(*args, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("blocksize", _BLOCK_SIZE)
        super().init_poolmanager(*args, **kwargs)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        # requests (the documented hook since 2.32) stats a CA bundle path on each request to
        # tell a file from a directory; with many threads every such syscall also gives up
        # and waits for the GIL. The answer cannot change under a running worker.
        if not isinstance(verify, str):
            return super().build_connection_pool_key_attributes(request, verify, cert)
        kind = self._ca_kinds.get(verify)
        if kind is None:
            is_dir = os.path.isdir(verify)  # noqa: PTH112 - the very test requests makes
            kind = self._ca_kinds[verify] = "ca_cert_dir" if is_dir else "ca_certs"
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, True, cert)
        pool_kwargs[kind] = verify
        return host_params, pool_kwargs


class _SettledEnvironmentSession(requests.Session):
    """A session that reads the environment's proxies and CA bundle once per endpoint.

    ``trust_env`` is off, so requests neither scans ``os.environ`` nor looks for a netrc file
    on each call; this session puts back what the environment says, looked up on the first
    call to each scheme and host (a Storage client talks to one or two) and kept.
    """

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self._environment: dict[tuple[str, str, str | None], tuple[dict[str, str], str]] = {}

    def merge_environment_settings(
        self,
        url: str,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> dict[str, Any]:
        explicit: dict[str, str] = dict(proxies or {})
        no_proxy = explicit.get("no_proxy")
        scheme, host = urlsplit(url)[:2]
        settled = self._environment.get((scheme, host, no_proxy))
        if settled is None:
            ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            settled = (get_environ_proxies(url, no_proxy=no_proxy), ca_bundle or "")
            self._environment[(scheme, host, no_proxy)] = settled  # a race computes it twice
        env_proxies, ca_bundle = settled
        # As requests does with trust_env: explicit proxies win, the CA bundle replaces only
        # the default verification.
        merged = dict(explicit)
        for name, proxy in env_proxies.items():
            merged.setdefault(name, proxy)
        if ca_bundle and verify in (True, None):
            verify = ca_bundle
        return super().merge_environment_settings(url, merged, stream, verify, cert)


# Client options that configure the transport: a client given a transport ignores them, so
# they must go into the transport itself (the doctor's short timeouts, for one).
TRANSPORT_OPTIONS: Final = (
    "connection_timeout",
    "read_timeout",
    "connection_verify",
    "connection_cert",
    "connection_data_block_size",
)


def pooled_transport(
    connections: int = POOL_CONNECTIONS, **connection_options: Any
) -> RequestsTransport:
    """A transport for one Storage client whose pool keeps `connections` alive per host;
    `connection_options` are azure-core's (``connection_timeout``, ``read_timeout``...)."""
    session = _SettledEnvironmentSession()
    adapter = _PooledAdapter(
        pool_connections=4,  # hosts kept (one account's endpoint, a proxy)
        pool_maxsize=connections,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    for prefix in ("http://", "https://"):
        session.mount(prefix, adapter)
    # The transport owns (and closes) the session, as with the one it would make itself.
    return RequestsTransport(session=session, session_owner=True, **connection_options)
