"""The HTTP transport of the app's Storage clients: a connection pool as wide as its work.

azure-core's default transport keeps at most 10 connections per host (requests' default).
The app runs far more Storage calls side by side: a batch completion settles 16 recordings
at once and each writes its products 8 at a time, and the blob trigger, the queue trigger
and the poller run beside it. Past 10, every finished call closed its connection ("Connection
pool is full, discarding connection", ~1,700 log lines per 1,000 batched recordings) and the
next call opened a new one: a TCP handshake each time locally, a TLS handshake against
Azure Storage. A wider pool keeps those connections alive.

Everything else is as azure-core sets it up: urllib3 retries off (the SDK's own retry
policy retries), 32 KB socket blocks, and the environment's proxy settings honoured.
"""

from __future__ import annotations

from typing import Any, Final

import requests
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

__all__ = ["POOL_CONNECTIONS", "TRANSPORT_OPTIONS", "pooled_transport"]

# Connections kept alive per host (per client): above the app's widest fan-out (16 x 8
# product writes go through one blob client) would only keep idle sockets open.
POOL_CONNECTIONS: Final = 64
_BLOCK_SIZE: Final = 32 * 1024  # azure-core's own adapter uses this socket block size


class _PooledAdapter(HTTPAdapter):
    """requests' adapter with the socket block size azure-core's own adapter sets."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("blocksize", _BLOCK_SIZE)
        super().init_poolmanager(*args, **kwargs)


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
    session = requests.Session()
    adapter = _PooledAdapter(
        pool_connections=4,  # hosts kept (one account's endpoint, a proxy)
        pool_maxsize=connections,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    for prefix in ("http://", "https://"):
        session.mount(prefix, adapter)
    # The transport owns (and closes) the session, as with the one it would make itself.
    return RequestsTransport(session=session, session_owner=True, **connection_options)
