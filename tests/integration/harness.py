"""Drive the app's functions the way the Functions host does, against Azurite and the emulator.

`Pipeline` imports `function_app` fresh under a test's settings, indexes it once
(`app.get_functions()`), and calls the indexed user functions with real trigger inputs: an
`azure.storage.blob.BlobClient` for an uploaded blob, a `TimerRequest`, and
`QueueMessage`s built from messages actually received from the Azurite queue.

For whole batches (`submit_all`, `run_to_the_end`, `accounted_once`) the app's clock may run
`SPEEDUP` times faster than real time (`FastClock`), so one-minute deferrals and ten-minute
leases pass in seconds; the emulator's rate-limit window stays real time. Completion messages
are delivered like the host does it: a failed run puts the message back, visible again a few
seconds later, and a fifth failed run of one message (the host's poison threshold) fails the
test.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import io
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import azure.functions as func
import httpx
import numpy as np
import soundfile
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobClient, BlobServiceClient
from azure.storage.queue import QueueClient, TextBase64DecodePolicy

from devhost.invoker import OutputValue
from devhost.services import Azurite, SpeechEmulator, wait_for
from shared.runtime import runtime_for, utc_now
from shared.settings import get_settings
from shared.speech_client import description_filter

RATE = 16000


class Clock:
    """The app's clock, `offset` ahead of real time (tests move it to make work due)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utc_now() + self.offset

    def advance(self, **kwargs: float) -> None:
        self.offset += timedelta(**kwargs)


def tone_channel(spans: Sequence[tuple[float, float]], total_s: float, freq: float) -> np.ndarray:
    """A channel that is a tone during each (start_s, end_s) span and silent elsewhere."""
    t = np.arange(round(total_s * RATE)) / RATE
    out = np.zeros_like(t)
    for start, end in spans:
        mask = (t >= start) & (t < end)
        out[mask] = 0.5 * np.sin(2 * np.pi * freq * t[mask])
    return out.astype(np.float32)


def wav_bytes(channels: Sequence[np.ndarray]) -> bytes:
    """PCM-16 WAV of one (mono) or two (stereo) equal-length channels."""
    data = np.stack(channels, axis=1) if len(channels) > 1 else channels[0]
    buffer = io.BytesIO()
    soundfile.write(buffer, data, RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def mono_call() -> bytes:
    """1.6 s mono: two phrases."""
    return wav_bytes([tone_channel([(0.1, 0.6), (0.9, 1.4)], 1.6, 440.0)])


def stereo_call() -> bytes:
    """2 s stereo: agent speaks on channel 0 first, then the customer on channel 1."""
    left = tone_channel([(0.1, 0.6), (1.3, 1.8)], 2.0, 440.0)
    right = tone_channel([(0.7, 1.2)], 2.0, 660.0)
    return wav_bytes([left, right])


def env_for(azurite: Azurite, emulator: SpeechEmulator, tag: str) -> dict[str, str]:
    """App settings isolating one test module: its own containers, table and queue."""
    uid = uuid.uuid4().hex[:8]
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "SPEECH_ENDPOINT": emulator.endpoint,
        "SPEECH_KEY": emulator.key,
        "INPUT_CONTAINER": f"{tag}-in-{uid}",
        "OUTPUT_CONTAINER": f"{tag}-out-{uid}",
        "ERROR_CONTAINER": f"{tag}-err-{uid}",
        "JOBS_TABLE": f"{tag}jobs{uid}",
        "COMPLETION_QUEUE": f"{tag}-done-{uid}",
        "POLL_MIN_INTERVAL_SECONDS": "0",
        "SPEECH_MAX_ATTEMPTS": "2",
        # The emulator has no rate limit unless a test sets one; the app's own limiter
        # (90 calls / 10 s) would only slow bulk tests down. Tests of it set their own.
        "SPEECH_RATE_LIMIT": "off",
        # One Speech job per recording, as these tests were written for; the batching tests
        # (test_batching.py) turn it on.
        "BATCH_MAX_FILES": "1",
    }


@contextmanager
def patched_env(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for a block (module-scoped fixtures cannot use monkeypatch)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def import_function_app() -> Any:
    """`function_app` imported afresh under the current environment."""
    get_settings.cache_clear()
    sys.modules.pop("function_app", None)
    return importlib.import_module("function_app")


@contextmanager
def running_pipeline(
    azurite: Azurite, emulator: SpeechEmulator, env: dict[str, str]
) -> Iterator[Pipeline]:
    """`function_app` imported afresh under `env`, for the block; closed afterwards."""
    with patched_env(env):
        pipe = Pipeline(env=env, azurite=azurite, emulator=emulator, module=import_function_app())
        try:
            yield pipe
        finally:
            pipe.close()


@dataclass
class Pipeline:
    """The app under test plus handles on its storage and the emulator."""

    env: dict[str, str]
    azurite: Azurite
    emulator: SpeechEmulator
    module: Any
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # get_functions() may be called once per app object: index once, keep the callables.
        for fn in self.module.app.get_functions():
            self.functions[fn.get_function_name()] = fn.get_user_function()
        self.blob_service = BlobServiceClient.from_connection_string(self.azurite.connection_string)
        self.table = TableClient.from_connection_string(
            self.azurite.connection_string, self.env["JOBS_TABLE"]
        )
        self.queue = QueueClient.from_connection_string(
            self.azurite.connection_string,
            self.env["COMPLETION_QUEUE"],
            message_decode_policy=TextBase64DecodePolicy(),
        )
        self.raw_queue = QueueClient.from_connection_string(
            self.azurite.connection_string, self.env["COMPLETION_QUEUE"]
        )
        self.api = httpx.Client(
            base_url=f"{self.emulator.endpoint}/speechtotext",
            headers={"Ocp-Apim-Subscription-Key": self.emulator.key},
            params={"api-version": "2024-11-15"},
            timeout=30.0,
        )
        self.admin = httpx.Client(base_url=self.emulator.endpoint, timeout=30.0)

    # ---------------------------------------------------------------- inputs

    def upload(
        self, name: str, data: bytes, transcript: Sequence[Sequence[str]] | None = None
    ) -> BlobClient:
        """Upload an input recording (with the scripted engine's phrases) and return its client."""
        with contextlib.suppress(ResourceExistsError):
            self.blob_service.create_container(self.env["INPUT_CONTAINER"])
        blob = self.blob_service.get_blob_client(self.env["INPUT_CONTAINER"], name)
        metadata = {"transcript": json.dumps(transcript)} if transcript is not None else None
        blob.upload_blob(data, overwrite=True, metadata=metadata)
        return BlobClient.from_connection_string(
            self.azurite.connection_string, self.env["INPUT_CONTAINER"], name
        )

    # ---------------------------------------------------------------- triggers

    def submit(self, blob: BlobClient) -> None:
        """Fire the blob trigger for `blob` (an SDK BlobClient, as the SDK-type binding passes)."""
        self.functions["submit"](client=blob)

    def poll(self, past_due: bool = False) -> None:
        """Fire the timer trigger once."""
        self.functions["poll"](timer=TimerRequest(past_due=past_due))

    def receive(self) -> list[QueueMessage]:
        """Completion messages taken from the Azurite queue, as the host would pass them."""
        out = []
        for msg in self.queue.receive_messages(max_messages=32, visibility_timeout=60):
            out.append(
                QueueMessage(
                    id=msg.id,
                    body=msg.content.encode("utf-8"),
                    dequeue_count=msg.dequeue_count,
                    pop_receipt=msg.pop_receipt,
                )
            )
            self.queue.delete_message(msg.id, msg.pop_receipt)
        return out

    def message_for(self, job_key: str) -> QueueMessage:
        """Take the completion message of one job; other jobs' messages are completed."""
        mine: list[QueueMessage] = []
        for message in self.receive():
            if json.loads(message.get_body()).get("job_key") == job_key:
                mine.append(message)
            else:
                self.complete(message)
        assert len(mine) == 1, f"expected one message for {job_key}, got {len(mine)}"
        return mine[0]

    def complete(self, message: QueueMessage) -> None:
        """Fire the queue trigger with one message."""
        self.functions["complete"](msg=message)

    def webhook(self, req: func.HttpRequest) -> func.HttpResponse:
        """Fire the web hook's HTTP trigger; what it sets on its queue output is then written
        to the completion queue as the host writes it (base64, after the function returns)."""
        completions = OutputValue()
        response: func.HttpResponse = self.functions["speech_webhook"](
            req=req, completions=completions
        )
        for body in completions.get() or []:
            self.raw_queue.send_message(base64.b64encode(body.encode("utf-8")).decode("ascii"))
        return response

    def drain(self, workers: int = 1) -> list[QueueMessage]:
        """Receive and complete every queued completion message (like the host: `workers`
        at a time); returns them."""
        handled: list[QueueMessage] = []
        with ThreadPoolExecutor(max_workers=workers) as pool:
            while True:
                batch = self.receive()
                if not batch:
                    return handled
                list(pool.map(self.complete, batch))
                handled.extend(batch)

    def poll_until(self, predicate: Callable[[], bool], timeout: float = 90.0) -> None:
        """Fire the poller until `predicate` holds (the emulator works asynchronously)."""

        def step() -> bool:
            self.poll()
            return predicate()

        wait_for(step, timeout=timeout, interval=0.1, what="the poller to reach the condition")

    # ---------------------------------------------------------------- state

    def records(self) -> list[Any]:
        """Every job row in the table (batch rows live in their own partition)."""
        return list(self.table.query_entities("PartitionKey eq 'job'"))

    def batch_rows(self) -> list[Any]:
        """Every batch row in the table."""
        return list(self.table.query_entities("PartitionKey eq 'batch'"))

    def record_for(self, name: str) -> Any:
        """The single job row of input `name`."""
        rows = [r for r in self.records() if r["BlobName"] == name]
        assert len(rows) == 1, rows
        return rows[0]

    def output(self, name: str) -> bytes:
        """An output blob's bytes."""
        blob = self.blob_service.get_blob_client(self.env["OUTPUT_CONTAINER"], name)
        return blob.download_blob().readall()

    def outputs(self) -> list[str]:
        """Names in the output container."""
        container = self.blob_service.get_container_client(self.env["OUTPUT_CONTAINER"])
        return sorted(b.name for b in container.list_blobs())

    def errors(self) -> list[str]:
        """Names in the error container."""
        container = self.blob_service.get_container_client(self.env["ERROR_CONTAINER"])
        return sorted(b.name for b in container.list_blobs())

    def error_report(self, name: str) -> dict[str, Any]:
        """A parsed error report."""
        blob = self.blob_service.get_blob_client(self.env["ERROR_CONTAINER"], name)
        return json.loads(blob.download_blob().readall())

    def stats(self) -> dict[str, Any]:
        """The emulator's counters."""
        response = self.admin.get("/_emulator/stats")
        response.raise_for_status()
        return response.json()

    def live_transcriptions(self) -> list[dict[str, Any]]:
        """This pipeline's transcriptions still on the service (its deployment's description).

        The session's emulator is shared with the other test modules of a worker, so its
        global `live` count may hold their leftovers.
        """
        tag = runtime_for(get_settings()).deployment_tag
        response = self.api.get("/transcriptions", params={"filter": description_filter(tag)})
        response.raise_for_status()
        values: list[dict[str, Any]] = response.json()["values"]
        return values

    def configure(self, **changes: Any) -> None:
        """Change the emulator's behaviour (faults)."""
        self.admin.patch("/_emulator/config", json=changes).raise_for_status()

    def transcription_status(self, transcription_id: str) -> int:
        """HTTP status of GET on the transcription (404 once deleted)."""
        return self.api.get(f"/transcriptions/{transcription_id}").status_code

    def result_file_bytes(self, transcription_id: str) -> bytes:
        """The emulator's result file (kind Transcription) of a finished job, as served."""
        files = self.api.get(f"/transcriptions/{transcription_id}/files").json()["values"]
        (result,) = [f for f in files if f["kind"] == "Transcription"]
        return httpx.get(result["links"]["contentUrl"], timeout=30.0).content

    def close(self) -> None:
        self.api.close()
        self.admin.close()


def requests_by_route(stats: dict[str, Any]) -> dict[str, int]:
    """Emulator request counts per route, summed over statuses."""
    return {route: sum(codes.values()) for route, codes in stats["requests"].items()}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Requests made between two snapshots, per route (routes with none left out)."""
    return {
        route: after[route] - before.get(route, 0)
        for route in after
        if after[route] - before.get(route, 0)
    }


# ------------------------------------------------------------------- whole batches

TERMINAL = ("done", "failed", "rejected")
SPEEDUP = 60.0
RETRY_DELAY_S = 3

PipelineFactory = Callable[..., Pipeline]


class FastClock:
    """App time that runs `SPEEDUP` times faster than real time."""

    def __init__(self) -> None:
        self._start_real = time.monotonic()
        self._start = utc_now()

    def __call__(self) -> datetime:
        elapsed = time.monotonic() - self._start_real
        return self._start + timedelta(seconds=elapsed * SPEEDUP)


def deliver(pipeline: Pipeline, tries: Counter[str]) -> None:
    """Run every queued completion as the host would; a failure puts the message back."""
    for message in pipeline.receive():
        body = json.loads(message.get_body())
        key = str(body.get("job_key") or body.get("batch_key") or message.id)
        try:
            pipeline.complete(message)
        except Exception:  # the host logs it and retries the message
            tries[key] += 1
            assert tries[key] < 5, f"{key}: would have gone to the poison queue"
            # Visible again a little later, as after the host's visibilityTimeout (30 s there).
            body = base64.b64encode(message.get_body()).decode()
            pipeline.queue.send_message(body, visibility_timeout=RETRY_DELAY_S)


def submit_all(pipeline: Pipeline, blobs: list[Any]) -> None:
    """The blob trigger, 8 at a time (host.json maxDegreeOfParallelism)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(pipeline.submit, blobs))  # a trigger run that raises fails the test


def run_to_the_end(pipeline: Pipeline, count: int, timeout: float) -> list[Any]:
    """Poll and deliver completions until `count` jobs have all ended; their rows."""
    tries: Counter[str] = Counter()

    def settled() -> list[Any] | None:
        pipeline.poll()
        deliver(pipeline, tries)
        rows = pipeline.records()
        return rows if len(rows) == count and all(r["State"] in TERMINAL for r in rows) else None

    return wait_for(settled, timeout=timeout, interval=0.05, what=f"{count} jobs to end")


def accounted_once(pipeline: Pipeline, names: list[str], rows: list[Any]) -> dict[str, str]:
    """Each input: one job, and exactly one outcome (outputs xor error report); the states."""
    assert sorted(r["BlobName"] for r in rows) == sorted(names)
    outputs = {o.rsplit("/", 1)[0] for o in pipeline.outputs() if o.endswith("/channel_0.json")}
    reports = {e.removesuffix(".json") for e in pipeline.errors()}
    states = {}
    for row in rows:
        name = row["BlobName"]
        states[name] = row["State"]
        assert (name in outputs) != (name in reports), name
        assert (name in outputs) == (row["State"] == "done"), (name, row["State"])
    stats = pipeline.stats()
    assert stats["transcriptions"]["live"] == 0  # no orphan left on the service
    per_key = Counter(j["displayName"] for j in stats["jobs"].values())
    max_attempts = int(pipeline.env.get("MAX_JOB_ATTEMPTS", "3"))
    for row in rows:
        assert per_key[row["RowKey"]] <= max(row.get("Attempts", 0), 1) <= max_attempts, row
    return states
