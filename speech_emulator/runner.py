"""The job life cycle, file by file: NotStarted → Running → Succeeded | Failed.

A job waits ``start_delay`` seconds after creation; then its inputs (the ``contentUrls``,
or the blobs listed from ``contentContainerUrl``) queue for the resource's
``concurrent_files`` slots, FIFO by job submission (see ``capacity``). The job is Running
from the moment its first file takes a slot and finishes when its last file leaves one.

A file holds its slot for ``processing_time`` seconds (or ``processing_factor`` x its audio
duration) from the moment it got it, or until a worker has really downloaded, decoded and
recognised it, whichever is later. So timing does not depend on how fast this machine
recognises, and one file costs the same whether it is alone in its job or one of 1,000.

Outcomes follow the real service: a job with at least one transcribed input Succeeds, its
failed inputs listed in the report (``details[].status = "Failed"``, ``errorKind``,
``errorMessage``) and given no result file; only a job whose every input failed is Failed,
with ``properties.error``. Fault injection decides at creation whether a whole job fails
or vanishes, and as each file takes its slot whether that file fails.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from speech_emulator.access import StorageAccess
from speech_emulator.audio import UndecodableAudioError, decode
from speech_emulator.capacity import FileSlots
from speech_emulator.clock import Clock
from speech_emulator.config import BehaviourBox
from speech_emulator.engines.base import CustomModel, Engine, Phrase, RecognitionRequest
from speech_emulator.faults import Dice
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


@dataclass
class _Work:
    """A job from admission to its last file: its inputs and what each one produced.

    Mutable fields change only under the runner's lock.
    """

    job_id: str
    spec: JobSpec
    model: CustomModel | None
    options: ResultOptions
    inputs: tuple[str, ...]
    generation: int  # the runner's reset count when admitted; stale work is ignored
    outcomes: list[InputOutcome | None]
    remaining: int
    results: dict[int, bytes] = field(default_factory=dict)
    audio_seconds: float = 0.0
    started: bool = False
    dropped: bool = False  # deleted or vanished: its files no longer count


class JobRunner:
    """Admits jobs, hands their files the resource's slots and finishes them."""

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
        dice: Dice,
    ) -> None:
        self._store = store
        self._stats = stats
        self._clock = clock
        self._behaviour = behaviour
        self._engine = engine
        self._models = custom_models
        self._on_event = on_event
        self._access = access
        self._outputs = outputs
        self._dice = dice
        self._scheduler = Scheduler(clock)
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="job")
        self._lock = threading.Lock()
        self._slots = FileSlots()
        self._work: dict[str, _Work] = {}
        self._seq = itertools.count()
        self._generation = 0

    def start(self) -> None:
        """Start the timer thread."""
        self._scheduler.start()

    def close(self) -> None:
        """Stop timers and workers (running jobs are abandoned)."""
        self._scheduler.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def reset(self) -> None:
        """Drop all pending and running work (admin reset); results still due are ignored."""
        with self._lock:
            self._generation += 1
            self._scheduler.clear()
            self._slots.clear()
            self._work.clear()

    def capacity(self) -> dict[str, int]:
        """Slots: the limit, files holding one, files waiting for one."""
        limit = self._behaviour.get().concurrent_files
        with self._lock:
            return {
                "concurrent_files": limit,
                "running": self._slots.running,
                "waiting": self._slots.waiting,
            }

    def wake(self) -> None:
        """Hand out free slots now (after ``concurrent_files`` was raised)."""
        self._dispatch()

    def submit(self, job: Job) -> None:
        """Queue a new job: its files may take slots after the configured delay."""
        due = job.created.timestamp() + self._behaviour.get().start_delay
        with self._lock:
            seq, generation = next(self._seq), self._generation
        self._scheduler.at(due, lambda: self._admit(job.id, seq, generation))

    # --- admission and slots ------------------------------------------------------------

    def _admit(self, job_id: str, seq: int, generation: int) -> None:
        job = self._store.get_job(job_id)
        if job is None:
            return
        if job.spec.content_container_url:
            self._pool.submit(self._admit_listed, job, seq, generation)
        else:
            # On the timer thread, in due order: jobs queue in the order they were submitted.
            self._queue(job, seq, generation, job.spec.content_urls)

    def _admit_listed(self, job: Job, seq: int, generation: int) -> None:
        assert job.spec.content_container_url is not None
        try:
            urls = self._access.list_container(job.spec.content_container_url)
        except FetchError as exc:
            self._complete(job.id, [], 0.0, (exc.code, exc.message), unstarted=True)
            return
        if not urls:
            error = ("InvalidRecordingsUri", "The container has no blobs.")
            self._complete(job.id, [], 0.0, error, unstarted=True)
            return
        self._queue(job, seq, generation, urls)

    def _queue(self, job: Job, seq: int, generation: int, inputs: Sequence[str]) -> None:
        spec = job.spec
        work = _Work(
            job_id=job.id,
            spec=spec,
            model=self._models.get(spec.model_id) if spec.model_id else None,
            options=_options(spec),
            inputs=tuple(inputs),
            generation=generation,
            outcomes=[None] * len(inputs),
            remaining=len(inputs),
        )
        with self._lock:
            if generation != self._generation:
                return
            self._work[job.id] = work
            self._slots.add(seq, job.id, len(inputs))
        self._dispatch()

    def _dispatch(self) -> None:
        behaviour = self._behaviour.get()
        with self._lock:
            while (taken := self._slots.take(behaviour.concurrent_files)) is not None:
                job_id, index = taken
                work = self._work[job_id]
                if self._store.get_job(job_id) is None or (
                    not work.started and not self._begin(work)
                ):
                    self._slots.release()
                    self._drop(work)
                    continue
                start = self._clock.timestamp()
                fails = self._dice.file_fails(behaviour)
                self._pool.submit(self._run_file, work, index, start, fails)

    def _drop(self, work: _Work) -> None:
        work.dropped = True
        self._work.pop(work.job_id, None)
        self._slots.drop(work.job_id)

    def _begin(self, work: _Work) -> bool:
        """The job's first file got a slot: Running (or gone, when fated to vanish)."""
        now = self._clock.now()

        def begin(job: Job) -> Job | None:
            if job.status != Status.NOT_STARTED:
                return None
            job.status, job.started, job.last_action = Status.RUNNING, now, now
            return job

        job = self._store.update_job(work.job_id, begin)
        if job is None:
            return False
        work.started = True
        self._stats.job(job.id, job.spec.display_name, started=now, status=Status.RUNNING.value)
        self._on_event("transcriptionProcessing", job)
        if job.fate == Fate.VANISH:
            self._store.delete_job(job.id)
            self._stats.event("vanished")
            self._stats.job(job.id, job.spec.display_name, status="Vanished")
            return False
        return True

    # --- one file -----------------------------------------------------------------------

    def _run_file(self, work: _Work, index: int, start: float, fails: bool) -> None:
        url = work.inputs[index]
        source = strip_query(url)
        content: bytes | None = None
        seconds = 0.0
        try:
            seconds, result = self._transcribe(url, work.spec, work.model, work.options)
            content = json.dumps(result, indent=2).encode()
            outcome = InputOutcome(source)
        except InputError as exc:
            outcome = InputOutcome(source, exc.code, exc.message)
        except Exception as exc:  # a bug must fail this input, not kill the worker
            log.exception("input %s of job %s failed unexpectedly", source, work.job_id)
            outcome = InputOutcome(source, "UnexpectedError", f"Unexpected error: {exc}.")
        behaviour = self._behaviour.get()
        if fails:
            code = behaviour.file_fail_code
            message = f"Emulated failure ({code}) injected by the file-fail-share fault."
            outcome, content = InputOutcome(source, code, message), None
        if behaviour.processing_time is not None:
            busy = behaviour.processing_time
        else:
            busy = behaviour.processing_factor * seconds

        def done() -> None:
            self._file_done(work, index, outcome, content, seconds)

        due = start + busy
        if due <= self._clock.timestamp():
            done()
        else:
            self._scheduler.at(due, done)

    def _file_done(
        self,
        work: _Work,
        index: int,
        outcome: InputOutcome,
        content: bytes | None,
        seconds: float,
    ) -> None:
        with self._lock:
            if work.generation != self._generation:
                return
            self._slots.release()
            finished = False
            if not work.dropped:
                work.outcomes[index] = outcome
                if content is not None:
                    work.results[index] = content
                    work.audio_seconds += seconds
                work.remaining -= 1
                finished = work.remaining == 0
                if finished:
                    self._work.pop(work.job_id, None)
        if not work.dropped:
            self._stats.file("succeeded" if outcome.succeeded else "failed")
        if finished:
            self._pool.submit(self._finish, work)
        self._dispatch()

    # --- the whole job ------------------------------------------------------------------

    def _finish(self, work: _Work) -> None:
        files = [
            self._file(f"contenturl_{i}.json", "Transcription", work.results[i], i)
            for i in sorted(work.results)
        ]
        outcomes = [o for o in work.outcomes if o is not None]
        report = json.dumps(build_report(outcomes), indent=2).encode()
        files.append(self._file("report.json", "TranscriptionReport", report, None))
        error = None
        if not any(o.succeeded for o in outcomes):
            first = outcomes[0]
            error = (first.error_kind or "InvalidData", first.error_message or "")
        stored = self._outputs.store(work.job_id, work.spec, files)
        self._complete(work.job_id, files, work.audio_seconds, error or stored)

    def _complete(
        self,
        job_id: str,
        files: list[JobFile],
        audio_seconds: float,
        error: tuple[str, str] | None,
        *,
        unstarted: bool = False,
    ) -> None:
        now = self._clock.now()

        def complete(job: Job) -> Job:
            if unstarted:  # failed before any file could start (its container, say)
                job.started = now
            job.files = files
            job.duration_ms = round(audio_seconds * 1000)
            if job.fate == Fate.FAIL:
                code = self._behaviour.get().fail_code
                job.error = (code, f"Emulated failure ({code}) injected by the fail-share fault.")
            else:
                job.error = error
            job.status = Status.FAILED if job.error else Status.SUCCEEDED
            job.finished = job.last_action = now
            return job

        job = self._store.update_job(job_id, complete)
        if job is None:  # deleted while its files ran: what was stored goes too
            self._outputs.discard(files)
            return
        self._stats.event(job.status.value.lower())
        moments = {"started": now} if unstarted else {}
        self._stats.job(
            job.id, job.spec.display_name, finished=now, status=job.status.value, **moments
        )
        self._on_event("transcriptionCompletion", job)

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
