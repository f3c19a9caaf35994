"""The job life cycle: NotStarted → Running → Succeeded | Failed, on a worker pool.

A job waits ``start_delay`` seconds, then a worker downloads and decodes each input,
runs the engine on each requested channel and builds the result files. The job is marked
done ``processing_time`` (or ``processing_factor`` x audio duration) after it started, so
timing does not depend on how fast this machine recognises. Fault injection decides at
creation whether a job fails or vanishes.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from speech_emulator.access import StorageAccess
from speech_emulator.audio import UndecodableAudioError, decode
from speech_emulator.clock import Clock
from speech_emulator.config import BehaviourBox
from speech_emulator.engines.base import CustomModel, Engine, Phrase, RecognitionRequest
from speech_emulator.fetch import Download, FetchError, strip_query
from speech_emulator.jobs import Fate, Job, JobFile, JobSpec, Status
from speech_emulator.outputs import Outputs
from speech_emulator.results import InputOutcome, ResultOptions, build_report, build_result
from speech_emulator.scheduler import Scheduler
from speech_emulator.stats import Stats
from speech_emulator.store import Store

log = logging.getLogger(__name__)

# (event name, job) -> notify web hooks; event names as in WebHookEvents.
EventSink = Callable[[str, Job], None]


class InputError(Exception):
    """One input failed; ``code`` is its detailed error code (the report's errorKind)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Processed:
    """What a worker produced for a job, applied when the job's processing time is up."""

    files: tuple[JobFile, ...]
    outcomes: tuple[InputOutcome, ...]
    audio_seconds: float
    job_error: tuple[str, str] | None


def _options(spec: JobSpec) -> ResultOptions:
    return ResultOptions(
        word_level_timestamps=spec.word_level_timestamps,
        display_word_timestamps=spec.display_word_timestamps,
        punctuation_mode=spec.punctuation_mode,
        profanity_mode=spec.profanity_mode,
        diarization=spec.diarization_enabled,
        locale=spec.locale if spec.language_identification else None,
    )


def _script_for(dl: Download, channel: int) -> Sequence[str] | None:
    if dl.script is None or channel >= len(dl.script):
        return None
    return dl.script[channel]


class JobRunner:
    """Schedules and runs jobs."""

    def __init__(
        self,
        *,
        store: Store,
        stats: Stats,
        clock: Clock,
        behaviour: BehaviourBox,
        engine: Engine,
        custom_models: Mapping[str, CustomModel],
        workers: int,
        on_event: EventSink,
        access: StorageAccess,
        outputs: Outputs,
    ) -> None:
        self._store = store
        self._stats = stats
        self._clock = clock
        self._behaviour = behaviour
        self._engine = engine
        self._models = custom_models
        self._on_event = on_event
        self._scheduler = Scheduler(clock)
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="job")
        self._access = access
        self._outputs = outputs

    def start(self) -> None:
        """Start the timer thread."""
        self._scheduler.start()

    def close(self) -> None:
        """Stop timers and workers (running jobs are abandoned)."""
        self._scheduler.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def reset(self) -> None:
        """Drop pending work (admin reset); jobs already gone from the store are ignored."""
        self._scheduler.clear()

    def submit(self, job: Job) -> None:
        """Queue a new job: it starts after the configured delay."""
        due = job.created.timestamp() + self._behaviour.get().start_delay

        def start() -> None:
            self._pool.submit(self._run, job.id)

        self._scheduler.at(due, start)

    # --- worker side --------------------------------------------------------------------

    def _run(self, job_id: str) -> None:
        now = self._clock.now()

        def begin(job: Job) -> Job | None:
            if job.status != Status.NOT_STARTED:
                return None
            job.status, job.started, job.last_action = Status.RUNNING, now, now
            return job

        job = self._store.update_job(job_id, begin)
        if job is None:
            return
        self._stats.job(job.id, job.spec.display_name, started=now, status=Status.RUNNING.value)
        self._on_event("transcriptionProcessing", job)
        if job.fate == Fate.VANISH:
            self._store.delete_job(job.id)
            self._stats.event("vanished")
            self._stats.job(job.id, job.spec.display_name, status="Vanished")
            return
        try:
            processed = self._process(job)
        except Exception as exc:  # an engine bug must fail the job, not kill the worker
            log.exception("job %s failed unexpectedly", job.id)
            processed = Processed((), (), 0.0, ("InternalServerError", f"Unexpected error: {exc}"))
        behaviour = self._behaviour.get()
        if behaviour.processing_time is not None:
            busy = behaviour.processing_time
        else:
            busy = behaviour.processing_factor * processed.audio_seconds
        due = now.timestamp() + busy
        if due <= self._clock.timestamp():
            self._finish(job.id, processed)
        else:
            self._scheduler.at(due, lambda: self._finish(job.id, processed))

    def _finish(self, job_id: str, processed: Processed) -> None:
        now = self._clock.now()

        def complete(job: Job) -> Job:
            job.files = list(processed.files)
            job.duration_ms = round(processed.audio_seconds * 1000)
            if job.fate == Fate.FAIL:
                behaviour = self._behaviour.get()
                job.error = (
                    behaviour.fail_code,
                    f"Emulated failure ({behaviour.fail_code}) injected by the fail-share fault.",
                )
            else:
                job.error = processed.job_error
            job.status = Status.FAILED if job.error else Status.SUCCEEDED
            job.finished = job.last_action = now
            return job

        job = self._store.update_job(job_id, complete)
        if job is None:  # deleted while it ran: what was stored goes too
            self._outputs.discard(processed.files)
            return
        self._stats.event(job.status.value.lower())
        self._stats.job(job.id, job.spec.display_name, finished=now, status=job.status.value)
        self._on_event("transcriptionCompletion", job)

    def _inputs(self, spec: JobSpec) -> Sequence[str]:
        if spec.content_container_url:
            return self._access.list_container(spec.content_container_url)
        return spec.content_urls

    def _process(self, job: Job) -> Processed:
        spec = job.spec
        try:
            urls = self._inputs(spec)
        except FetchError as exc:
            return Processed((), (), 0.0, (exc.code, exc.message))
        if not urls:
            return Processed((), (), 0.0, ("InvalidRecordingsUri", "The container has no blobs."))
        model = self._models.get(spec.model_id) if spec.model_id else None
        options = _options(spec)
        files: list[JobFile] = []
        outcomes: list[InputOutcome] = []
        seconds = 0.0
        for index, url in enumerate(urls):
            source = strip_query(url)
            try:
                duration, result = self._transcribe(url, spec, model, options)
            except InputError as exc:
                outcomes.append(InputOutcome(source, exc.code, exc.message))
                continue
            seconds += duration
            outcomes.append(InputOutcome(source))
            content = json.dumps(result, indent=2).encode()
            files.append(self._file(f"contenturl_{index}.json", "Transcription", content, index))
        report = json.dumps(build_report(outcomes), indent=2).encode()
        files.append(self._file("report.json", "TranscriptionReport", report, None))
        error = None
        if not any(o.succeeded for o in outcomes):
            first = outcomes[0]
            error = (first.error_kind or "InvalidData", first.error_message or "")
        stored = self._outputs.store(job.id, spec, files)
        return Processed(tuple(files), tuple(outcomes), seconds, error or stored)

    def _file(self, name: str, kind: str, content: bytes, index: int | None) -> JobFile:
        return JobFile(
            str(uuid.uuid4()), name, kind, self._clock.now(), content, len(content), index
        )

    def _transcribe(
        self, url: str, spec: JobSpec, model: CustomModel | None, options: ResultOptions
    ) -> tuple[float, dict[str, object]]:
        try:
            dl = self._access.download(url)
        except FetchError as exc:
            raise InputError(exc.code, exc.message) from exc
        source = strip_query(url)
        try:
            samples, rate = decode(dl.data)
        except UndecodableAudioError as exc:
            raise InputError("InvalidAudioFormat", f"{source}: {exc}.") from exc
        frames, count = samples.shape
        if frames == 0:
            raise InputError("EmptyAudioFile", f"{source} contains no audio samples.")
        channels = [c for c in spec.channels if c < count]
        if not channels:
            raise InputError(
                "InvalidChannels",
                f"{source} has {count} channel(s) but the job asked for channels "
                f"{list(spec.channels)}.",
            )
        if spec.diarization_enabled and count > 1:
            raise InputError(
                "BadChannelConfiguration",
                f"{source} is stereo; diarization is only supported for mono audio. Turn "
                "diarization off or send a mono recording.",
            )
        phrases: dict[int, list[Phrase]] = {}
        for channel in channels:
            request = RecognitionRequest(
                samples=np.ascontiguousarray(samples[:, channel]),
                sample_rate=rate,
                channel=channel,
                locale=spec.locale,
                model=model,
                script=_script_for(dl, channel),
                diarization_max_speakers=spec.max_speakers,
            )
            try:
                phrases[channel] = self._engine.recognize(request)
            except Exception as exc:  # an engine bug fails this input, not the worker
                log.exception("engine %s failed on %s", self._engine.name, source)
                raise InputError(
                    "UnexpectedError", f"Recognition failed on channel {channel}: {exc}."
                ) from exc
        duration = frames / rate
        return duration, build_result(source, self._clock.now(), duration, phrases, options)
