"""Blob leases in `azure-webjobs-hosts`: how several host instances agree who does what.

The Functions host coordinates the instances of one app (same host id) through blob leases
in its storage account, and devhost does the same so that several devhost processes can
share one storage account:

- a timer trigger's listener is a singleton: only the instance holding the lease on
  ``locks/<hostId>/Host.Functions.<name>.Listener`` fires it (`ListenerLock`); the others
  retry now and then, so a stopped or killed holder's timer is taken over once its lease
  ends (at most `period` seconds after a kill; at once after a clean stop, which releases);
- a blob receipt (``blobreceipts/...``) is leased while its blob version is processed, so
  two instances that both saw a new blob do not both run the function (`blob_trigger`).

`HeldLease` keeps a lease renewed from a thread of its own while its holder works (a
timer run or a blob invocation may outlast the lease period).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from typing import Final

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobClient, BlobLeaseClient, ContainerClient

log = logging.getLogger("devhost")

# The host's listener lock period in development (15 s; 60 s in production). Blob leases
# last 15 to 60 s.
LISTENER_LOCK_PERIOD: Final = 15.0
# How often an instance without the lock tries to take it (the host: once a minute; shorter
# here, so a local takeover is quick to watch).
LISTENER_LOCK_RETRY: Final = 2.0
RECEIPT_LEASE_PERIOD: Final = 60.0


def listener_lock_name(host_id: str, function: str) -> str:
    """The lock blob of a function's singleton listener, as the host names it."""
    return f"locks/{host_id}/Host.Functions.{function}.Listener"


def ensure_blob(
    container: ContainerClient, name: str, metadata: dict[str, str] | None = None
) -> BlobClient:
    """The blob `name`, created empty (with `metadata`) unless it exists (and its container
    with it)."""
    blob = container.get_blob_client(name)
    for _ in range(2):
        try:
            blob.upload_blob(b"", overwrite=False, metadata=metadata)
        except ResourceExistsError:
            return blob
        except ResourceNotFoundError:  # no container yet
            with contextlib.suppress(ResourceExistsError):
                container.create_container()
            continue
        except HttpResponseError as exc:
            # A leased blob refuses even a conditional create (412/409): it exists.
            if exc.status_code not in (409, 412):
                raise
        return blob
    return blob


def try_lease(
    blob: BlobClient, period: float, lease_id: str | None = None
) -> BlobLeaseClient | None:
    """A lease on `blob` for `period` s, or None when another holder has one.

    Acquiring with the lease id of the current lease succeeds: a restarted instance that
    proposes its old id gets its lock back at once instead of waiting for it to expire.
    """
    lease = BlobLeaseClient(blob, lease_id=lease_id or str(uuid.uuid4()))
    try:
        lease.acquire(lease_duration=int(period))
    except HttpResponseError as exc:
        if exc.status_code == 409:  # LeaseAlreadyPresent
            return None
        raise
    return lease


class HeldLease:
    """Renews `lease` every third of `period` until `release()`; `lost` when a renewal failed."""

    def __init__(self, lease: BlobLeaseClient, period: float, what: str) -> None:
        self.lease = lease
        self.lost = threading.Event()
        self._period = period
        self._what = what
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{what}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self._period / 3):
            try:
                self.lease.renew()
            except AzureError:
                log.warning("Lost the lease on %s; another instance may take it.", self._what)
                self.lost.set()
                return

    def release(self) -> None:
        """Stop renewing and give the lease back (best effort: it ends by itself anyway)."""
        self._stop.set()
        self._thread.join(5)
        if not self.lost.is_set():
            with contextlib.suppress(AzureError):
                self.lease.release()


class ListenerLock:
    """The singleton lock of one function's listener (a blob lease, renewed while held).

    `instance` names this instance among those sharing the host id (devhost's
    ``--instance-index``).
    """

    def __init__(
        self,
        container: ContainerClient,
        host_id: str,
        function: str,
        *,
        period: float = LISTENER_LOCK_PERIOD,
        retry: float = LISTENER_LOCK_RETRY,
        instance: str = "0",
    ) -> None:
        self.name = listener_lock_name(host_id, function)
        self.retry = retry
        self._container = container
        # One lease id per instance: a restarted instance retakes its own lock at once, two
        # instances never share one.
        self._lease_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.name}#{instance}"))
        self._period = period
        self._held: HeldLease | None = None

    @property
    def holding(self) -> bool:
        """True while this instance holds the lock (and its renewals succeed)."""
        return self._held is not None and not self._held.lost.is_set()

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this instance holds it now."""
        if self.holding:
            return True
        lease = try_lease(ensure_blob(self._container, self.name), self._period, self._lease_id)
        if lease is None:
            return False
        self._held = HeldLease(lease, self._period, self.name)
        return True

    def release(self) -> None:
        """Give the lock back (a clean stop: another instance can take over at once)."""
        if self._held is not None:
            self._held.release()
            self._held = None
