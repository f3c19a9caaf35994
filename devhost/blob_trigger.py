"""Blob trigger, polling source (LogsAndContainerScan): scan, invoke once per name + ETag.

Like the Functions host, devhost keeps a *receipt* per function, blob name and ETag in the
`azure-webjobs-hosts` container (`blobreceipts/<hostId>/Host.Functions.<name>/<etag>/
<container>/<blob>`), so a restarted host does not process a blob version again. A failed
invocation is retried on the next scans; after `poisonBlobThreshold` tries a message goes
to the `webjobs-blobtrigger-poison` queue and the receipt is completed.
Delivery is at least once: a crash between the invocation and the receipt repeats it.

Several instances (devhost ``--instances``) may scan the same container: as the host's
receipt manager does, an instance first creates the receipt (incomplete), then takes a
lease on it (`devhost.leases`), re-reads it under the lease and runs the function only if
it is still incomplete; the lease is renewed while the function runs and released after
the receipt is completed. So one blob version runs in one instance at a time, and an
instance that crashed mid-run hands it on when its lease ends.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobProperties, BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devhost.blob_binding import blob_argument
from devhost.host_config import BlobOptions
from devhost.invoker import Invoker, Outcome
from devhost.leases import RECEIPT_LEASE_PERIOD, HeldLease, ensure_blob, try_lease
from devhost.setting_refs import BindingConfigError

log = logging.getLogger("devhost")

HOSTS_CONTAINER = "azure-webjobs-hosts"
POISON_QUEUE = "webjobs-blobtrigger-poison"
_PARAM = re.compile(r"\{([^{}]+)\}")
# Found blobs waiting per worker before scanning pauses (see `BlobTriggerListener.backlog`).
BACKLOG_PER_WORKER = 4
# The pause after a scan, in multiples of what the scan took: after one that found new blobs,
# and after one that found nothing (an idle container is listed again only for a newcomer).
BUSY_SCAN_FACTOR = 2.0
IDLE_SCAN_FACTOR = 10.0
# The host's container scan runs every 10 s (`ScanBlobScanLogHybridPollingStrategy`): an
# idle pause never grows past it on account of the factor alone.
HOST_SCAN_INTERVAL = 10.0


def scan_pause(interval: float, took: float, *, found: bool) -> float:
    """Seconds to wait before the next scan of a container whose last listing took `took`.

    A scan lists every blob, which costs this process's CPU (and Azurite's) in proportion
    to the container's size; a container of 1,000 recordings rescanned every second is half
    the host's time spent on nothing. So the pause is at least twice the listing's time, and
    ten times it (at most `HOST_SCAN_INTERVAL`) once a scan found nothing new. A small
    container is still scanned every `interval`, and a burst keeps the short pause.
    """
    busy = max(interval, BUSY_SCAN_FACTOR * took)
    if found:
        return busy
    return max(busy, min(IDLE_SCAN_FACTOR * took, HOST_SCAN_INTERVAL))


@dataclass(frozen=True)
class BlobPath:
    """A blob trigger path such as `audio-input/{name}`: container plus a name pattern."""

    container: str
    pattern: str

    @classmethod
    def parse(cls, path: str, *, function: str) -> BlobPath:
        """Split and validate a (setting-resolved) trigger path."""
        container, sep, pattern = path.partition("/")
        if not sep or not container or "{" in container:
            raise BindingConfigError(
                f"Function '{function}': blob trigger path {path!r} must be "
                "'<container>/<name pattern>', e.g. 'audio-input/{name}'."
            )
        return cls(container=container, pattern=pattern or "{name}")

    @property
    def prefix(self) -> str:
        """The literal start of every matching blob name (listing is filtered by it)."""
        return self.pattern.split("{", 1)[0]

    def match(self, blob_name: str) -> dict[str, str] | None:
        """Binding values (`{name}` may span folders) or None when the name does not match."""
        parts: list[str] = []
        names: list[str] = []
        last = 0
        for m in _PARAM.finditer(self.pattern):
            parts.append(re.escape(self.pattern[last : m.start()]))
            names.append(m.group(1))
            parts.append(f"(?P<p{len(names) - 1}>.+?)")
            last = m.end()
        parts.append(re.escape(self.pattern[last:]))
        found = re.fullmatch("".join(parts), blob_name, flags=re.DOTALL)
        if found is None:
            return None
        return {name: found.group(f"p{i}") for i, name in enumerate(names)}


def receipt_name(host_id: str, function: str, etag: str, container: str, blob: str) -> str:
    """The receipt blob name the host uses for one blob version and function."""
    return (
        f"blobreceipts/{host_id}/Host.Functions.{function}/{etag.strip(chr(34))}/{container}/{blob}"
    )


def poison_message(function: str, container: str, blob: str, etag: str) -> str:
    """The base64 JSON message the host puts on `webjobs-blobtrigger-poison`.

    The ETag is quoted, as the service returns it in headers (listings omit the quotes).
    """
    body = {
        "Type": "BlobTrigger",
        "FunctionId": f"Host.Functions.{function}",
        "BlobType": "BlockBlob",
        "ContainerName": container,
        "BlobName": blob,
        "ETag": f'"{etag.strip(chr(34))}"',
    }
    return base64.b64encode(json.dumps(body).encode("utf-8")).decode("ascii")


@dataclass
class _Receipt:
    completed: bool
    attempts: int


class BlobTriggerListener:
    """Scans one function's container and invokes it for new blob versions."""

    # Shown in the execution reason; the host says which source detected the blob.
    source_label = "LogsAndContainerScan"

    def __init__(
        self,
        invoker: Invoker,
        *,
        path: BlobPath,
        connection: str,
        service: BlobServiceClient,
        host_service: BlobServiceClient,
        host_queues: QueueServiceClient,
        host_id: str,
        options: BlobOptions,
    ) -> None:
        self.invoker = invoker
        self.path = path
        self._connection = connection
        self._service = service
        self._hosts = host_service.get_container_client(HOSTS_CONTAINER)
        self._poison = host_queues.get_queue_client(POISON_QUEUE)
        self._host_id = host_id
        self._options = options
        self._executor = ThreadPoolExecutor(
            max_workers=options.max_degree_of_parallelism,
            thread_name_prefix=f"blob-{invoker.spec.name}",
        )
        self._lock = threading.Lock()
        self._receipts: dict[tuple[str, str], _Receipt] | None = None
        self._inflight: dict[tuple[str, str], Future[Outcome | None]] = {}
        self._ready = False

    @property
    def name(self) -> str:
        return self.invoker.spec.name

    @property
    def backlog(self) -> int:
        """Blob versions found and not finished yet (running or waiting for a worker)."""
        with self._lock:
            return len(self._inflight)

    @property
    def backlog_limit(self) -> int:
        """Above this many, a scan is skipped: what it would find waits behind the rest."""
        return BACKLOG_PER_WORKER * self._options.max_degree_of_parallelism

    def scan_due(self) -> bool:
        """False while more blobs than `backlog_limit` wait (the host's loop skips a scan)."""
        return self.backlog <= self.backlog_limit

    def _prepare(self) -> None:
        if self._ready:
            return
        for create in (self._hosts.create_container, self._poison.create_queue):
            with contextlib.suppress(ResourceExistsError):
                create()
        self._ready = True

    def _load_receipts(self) -> dict[tuple[str, str], _Receipt]:
        # Read once per start; afterwards kept up to date by this instance's own writes and
        # by what it reads under a receipt's lease (another instance's work).
        if self._receipts is None:
            base = f"blobreceipts/{self._host_id}/Host.Functions.{self.name}/"
            receipts: dict[tuple[str, str], _Receipt] = {}
            for item in self._hosts.list_blobs(name_starts_with=base, include=["metadata"]):
                etag, _, rest = item.name[len(base) :].partition("/")
                container, _, blob = rest.partition("/")
                if container != self.path.container:
                    continue
                meta = item.metadata or {}
                receipts[(blob, etag)] = _Receipt(
                    completed=meta.get("Completed", "true") == "true",
                    attempts=int(meta.get("Attempts", "0")),
                )
            self._receipts = receipts
        return self._receipts

    def scan(self) -> list[Future[Outcome | None]]:
        """List the container once and start an invocation for each unprocessed blob version.

        A future's result is None when another instance had the blob version (its receipt
        was leased, or already completed).
        """
        self._prepare()
        container = self._service.get_container_client(self.path.container)
        receipts = self._load_receipts()
        try:
            blobs = list(container.list_blobs(name_starts_with=self.path.prefix or None))
        except ResourceNotFoundError:  # the container does not exist (yet): nothing to do
            return []
        started: list[Future[Outcome | None]] = []
        for blob in blobs:
            values = self.path.match(blob.name)
            if values is None:
                continue
            key = (blob.name, str(blob.etag).strip('"'))
            with self._lock:
                receipt = receipts.get(key)
                if (receipt is not None and receipt.completed) or key in self._inflight:
                    continue
                future = self._executor.submit(self._process, blob, values)
                self._inflight[key] = future
            future.add_done_callback(partial(self._done, key))
            started.append(future)
        return started

    def _done(self, key: tuple[str, str], _future: Future[Outcome | None]) -> None:
        with self._lock:
            self._inflight.pop(key, None)

    def _claim(self, blob: BlobProperties) -> HeldLease | None:
        """Lease the blob version's receipt; None when another instance has (or had) it."""
        etag = str(blob.etag)
        name = receipt_name(self._host_id, self.name, etag, self.path.container, blob.name)
        receipt = ensure_blob(self._hosts, name, {"Completed": "false", "Attempts": "0"})
        lease = try_lease(receipt, RECEIPT_LEASE_PERIOD)
        if lease is None:
            log.debug(
                "Blob %s/%s is being processed by another instance.", self.path.container, blob.name
            )
            return None
        meta = receipt.get_blob_properties(lease=lease).metadata or {}
        current = _Receipt(
            completed=meta.get("Completed", "true") == "true",
            attempts=int(meta.get("Attempts", "0")),
        )
        with self._lock:
            self._load_receipts()[(blob.name, etag.strip('"'))] = current
        if current.completed:
            lease.release()
            return None
        return HeldLease(lease, RECEIPT_LEASE_PERIOD, name)

    def _process(self, blob: BlobProperties, values: Mapping[str, str]) -> Outcome | None:
        container = self.path.container
        try:
            claim = self._claim(blob)
        except Exception:  # storage trouble: the next scan tries again
            log.exception(
                "Leasing the receipt of %s/%s failed; retrying later.", container, blob.name
            )
            return None
        if claim is None:
            return None
        try:
            return self._invoke(blob, values, claim)
        finally:
            claim.release()

    def _invoke(self, blob: BlobProperties, values: Mapping[str, str], claim: HeldLease) -> Outcome:
        container = self.path.container
        metadata = {
            **values,
            "BlobTrigger": f"{container}/{blob.name}",
            "Uri": self._service.get_blob_client(container, blob.name).url,
        }
        spec = self.invoker.spec
        trigger = spec.trigger["name"]
        reason = f"New blob detected({self.source_label}): {container}/{blob.name}"
        outcome = self.invoker(
            reason,
            None,
            metadata,
            bind=partial(
                blob_argument,
                spec.annotation(trigger),
                service=self._service,
                connection=self._connection,
                container=container,
                blob=blob.name,
            ),
        )
        try:
            self._record(blob, outcome, claim)
        except Exception:  # storage trouble: no receipt, so the next scan tries again
            log.exception(
                "Recording the receipt of %s/%s for %s failed; it will be processed again.",
                container,
                blob.name,
                self.name,
            )
        return outcome

    def _record(self, blob: BlobProperties, outcome: Outcome, claim: HeldLease) -> None:
        etag = str(blob.etag)
        key = (blob.name, etag.strip('"'))
        receipts = self._load_receipts()
        with self._lock:
            previous = receipts.get(key, _Receipt(completed=False, attempts=0))
        attempts = previous.attempts + (0 if outcome.succeeded else 1)
        completed = outcome.succeeded or attempts >= self._options.poison_blob_threshold
        if not outcome.succeeded and completed:
            log.error(
                "Blob '%s/%s' (ETag %s) failed %d times in function %s; moving it to the "
                "poison queue '%s'.",
                self.path.container,
                blob.name,
                etag,
                attempts,
                self.name,
                POISON_QUEUE,
            )
            self._poison.send_message(
                poison_message(self.name, self.path.container, blob.name, etag)
            )
        self._hosts.upload_blob(
            receipt_name(self._host_id, self.name, etag, self.path.container, blob.name),
            b"",
            overwrite=True,
            metadata={"Completed": str(completed).lower(), "Attempts": str(attempts)},
            lease=claim.lease,
        )
        with self._lock:
            receipts[key] = _Receipt(completed=completed, attempts=attempts)

    def shutdown(self, wait: bool) -> None:
        """Stop taking work; wait for running invocations when `wait`."""
        self._executor.shutdown(wait=wait, cancel_futures=True)
