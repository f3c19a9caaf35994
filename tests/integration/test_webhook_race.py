"""A web hook callback racing another run for its job record (issue 10), deterministically.

The handler reads the job record, then moves it with a conditional write. Here another
run's real write lands between the two: `RaceAfterRead` is the app's own job store over the
real Azurite table that runs a competitor right after the handler's read. Each test then
checks that the callback's fact (this transcription finished) was applied to the state the
competitor left: handed over once when the job still waited for it, nothing otherwise.

The emulator holds every job NotStarted for an hour of emulator time, so the poller sees a
job unfinished until a test moves the emulator clock (`_finish_on_service`).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableClient

from devhost.services import SpeechEmulator, start_speech_emulator, wait_for
from shared import jobs
from shared.job_store import JobStore
from shared.jobs import JobRecord
from shared.outcomes import fail_job
from shared.runtime import Runtime, runtime_for
from shared.secret import Secret
from shared.settings import get_settings
from shared.webhook import EVENT_HEADER, SIGNATURE_HEADER, Reply, sign
from shared.webhook_handler import handle_callback
from tests.integration.harness import Pipeline, mono_call

pytestmark = pytest.mark.integration

SECRET = "race-webhook-secret"
PIPELINE_EMULATOR = "held_emulator"
PIPELINE_ENV = {"WEBHOOK_SECRET": SECRET}
HOLD_S = 3600  # emulator seconds a job stays NotStarted
ENQUEUED = Reply(202, "completion enqueued")
NOT_CURRENT = Reply(202, "not the job's current transcription; ignored")


@pytest.fixture(scope="module")
def held_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpeechEmulator]:
    """An emulator of this module's own: its jobs wait until a test moves its clock."""
    log = Path(tmp_path_factory.mktemp("race-emulator")) / "emulator.log"
    service = start_speech_emulator(
        "--engine",
        "scripted",
        "--start-delay",
        str(HOLD_S),
        "--processing-time",
        "0",
        log_path=log,
    )
    try:
        yield service
    finally:
        service.stop()


class RaceAfterRead(JobStore):
    """The app's job store, with `competitor` run right after each of the first `races` reads."""

    def __init__(
        self, table: TableClient, competitor: Callable[[], object], *, races: int = 1
    ) -> None:
        super().__init__(table)
        self._competitor = competitor
        self._races_left = races
        self.raced = 0

    def get(self, key: str) -> JobRecord | None:
        record = super().get(key)
        if self._races_left:
            self._races_left -= 1
            self.raced += 1
            self._competitor()
        return record


@dataclass(frozen=True)
class Job:
    name: str
    key: str
    transcription_id: str


def _racing_runtime(
    competitor: Callable[[], object], *, races: int = 1, signed: bool = True
) -> tuple[Runtime, RaceAfterRead]:
    """A runtime like the app's whose job store lets `competitor` write after the read."""
    app = runtime_for(get_settings())
    settings = app.settings
    if not signed:
        settings = dataclasses.replace(settings, webhook_secret=Secret(""))
    rt = Runtime(settings, app.storage)
    store = RaceAfterRead(app.storage.table_client(settings.jobs_table), competitor, races=races)
    rt.store = store
    return rt, store


def _submit(pipeline: Pipeline, name: str) -> Job:
    pipeline.submit(pipeline.upload(name, mono_call(), [[name.rsplit("/", 1)[-1]]]))
    row = pipeline.record_for(name)
    assert row["State"] == "submitted"
    return Job(name, row["RowKey"], row["TranscriptionId"])


def _callback_body(pipeline: Pipeline, job: Job) -> bytes:
    """The completion callback the service sends for `job`: its entity, status Succeeded."""
    entity = pipeline.api.get(f"/transcriptions/{job.transcription_id}").json()
    assert entity["status"] == "NotStarted"  # held: only the callback says it finished
    return json.dumps({**entity, "status": "Succeeded"}).encode()


def _deliver(rt: Runtime, body: bytes, *, signed: bool = True) -> Reply:
    headers = {EVENT_HEADER: "TranscriptionCompletion"}
    if signed:
        headers[SIGNATURE_HEADER] = sign(SECRET, body)
    return handle_callback(rt, method="POST", headers=headers, params={}, body=body)


def _finish_on_service(pipeline: Pipeline, job: Job) -> None:
    """Let the held job run: move the emulator clock past the hold, wait for its end."""
    pipeline.admin.post("/_emulator/clock", json={"advance_seconds": HOLD_S}).raise_for_status()

    def finished() -> bool:
        entity = pipeline.api.get(f"/transcriptions/{job.transcription_id}").json()
        return bool(entity["status"] == "Succeeded")

    wait_for(finished, timeout=15, what="the emulator to finish the job")


def _queued(pipeline: Pipeline, job: Job) -> int:
    """Completion messages waiting for `job`."""
    bodies = [
        json.loads(base64.b64decode(m.content))
        for m in pipeline.raw_queue.peek_messages(max_messages=32)
    ]
    return sum(1 for body in bodies if body["job_key"] == job.key)


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_callback_that_loses_to_the_pollers_stale_status_still_hands_the_job_over(
    pipeline: Pipeline, signed: bool
) -> None:
    """Issue 10's trace: the handler reads `submitted`; the poller writes `running` from a
    status it read before the end; the handler's write loses the ETag race."""
    job = _submit(pipeline, f"race/poller wrote running ({'signed' if signed else 'unsigned'}).wav")
    body = _callback_body(pipeline, job)

    def poller_saw_it_unfinished() -> None:
        pipeline.poll()  # the service still says NotStarted: submitted -> running
        assert pipeline.record_for(job.name)["State"] == "running"
        _finish_on_service(pipeline, job)  # ...and then the job ends

    rt, store = _racing_runtime(poller_saw_it_unfinished, signed=signed)
    reply = _deliver(rt, body, signed=signed)

    assert store.raced == 1
    assert reply == ENQUEUED
    assert _queued(pipeline, job) == 1
    row = pipeline.record_for(job.name)
    assert (row["State"], row["ServiceStatus"]) == ("completing", "Succeeded")
    pipeline.drain()
    assert pipeline.record_for(job.name)["State"] == "done"
    assert f"{job.name}/channel_0.json" in pipeline.outputs()


def _repeated_callback(pipeline: Pipeline, job: Job, body: bytes) -> None:
    assert _deliver(runtime_for(get_settings()), body) == ENQUEUED


def _poller_and_completion(pipeline: Pipeline, job: Job, body: bytes) -> None:
    _finish_on_service(pipeline, job)
    pipeline.poll()
    pipeline.drain()


def _timed_out(pipeline: Pipeline, job: Job, body: bytes) -> None:
    rt = runtime_for(get_settings())
    record = rt.store.get(job.key)
    assert record is not None
    fail_job(rt, record, reason_code="TimedOut", message="the job did not finish in time")


def _vanished(pipeline: Pipeline, job: Job, body: bytes) -> None:
    pipeline.api.delete(f"/transcriptions/{job.transcription_id}").raise_for_status()
    pipeline.poll()  # 404: deferred, the transcription forgotten


def _vanished_and_resubmitted(pipeline: Pipeline, job: Job, body: bytes) -> None:
    _vanished(pipeline, job, body)
    pipeline.poll()  # due at once: submitted again, as another transcription
    assert pipeline.record_for(job.name)["TranscriptionId"] not in ("", job.transcription_id)


@pytest.mark.parametrize(
    ("competitor", "state", "reply", "messages"),
    [
        (_repeated_callback, "completing", Reply(202, "job already completing"), 1),
        (_poller_and_completion, "done", Reply(202, "job already done"), 0),
        (_timed_out, "failed", Reply(202, "job already failed"), 0),
        (_vanished, "deferred", NOT_CURRENT, 0),
        (_vanished_and_resubmitted, "submitted", NOT_CURRENT, 0),
    ],
    ids=["repeated-callback", "completed", "timed-out", "vanished", "resubmitted"],
)
def test_callback_that_loses_to_a_run_that_moved_the_job_on_changes_nothing(
    pipeline: Pipeline,
    competitor: Callable[[Pipeline, Job, bytes], None],
    state: str,
    reply: Reply,
    messages: int,
) -> None:
    """The job is no longer waiting for this transcription's end: nothing more is enqueued
    and the record stays as the other run left it."""
    job = _submit(pipeline, f"race/lost to a run that left it {state}.wav")
    body = _callback_body(pipeline, job)
    left: dict[str, Any] = {}

    def other_run() -> None:
        competitor(pipeline, job, body)
        left.update(pipeline.table.get_entity("job", job.key).metadata)

    rt, store = _racing_runtime(other_run)
    assert _deliver(rt, body) == reply

    assert store.raced == 1
    assert _queued(pipeline, job) == messages
    row = pipeline.table.get_entity("job", job.key)
    assert row["State"] == state
    assert row.metadata["etag"] == left["etag"]  # the handler wrote nothing after the race
    pipeline.drain()


def test_callback_for_a_job_that_keeps_changing_answers_503_so_the_service_retries(
    pipeline: Pipeline,
) -> None:
    """Every read is overtaken: the handler gives up after a few tries instead of looping."""
    job = _submit(pipeline, "race/keeps changing.wav")
    body = _callback_body(pipeline, job)
    app = runtime_for(get_settings())

    def poller_status_update() -> None:
        record = app.store.get(job.key)
        assert record is not None
        app.store.save(
            record,
            jobs.observe(record, now=app.clock(), service_status="Running", next_check_at=None),
        )

    rt, store = _racing_runtime(poller_status_update, races=100)
    reply = _deliver(rt, body)

    assert reply.status == 503
    assert "retry later" in reply.text
    assert 1 < store.raced < 100
    assert _queued(pipeline, job) == 0
    assert pipeline.record_for(job.name)["State"] == "running"
