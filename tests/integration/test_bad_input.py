"""Bad input in one batch with good input: each bad file gets a specific error report, each
good file its transcripts, and the app never deletes or modifies an input recording.

Runs through function_app's indexed functions against real Azurite and an emulator of its
own (a start delay gives the test time to delete or overwrite a blob while its job runs).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from azure.core.exceptions import ResourceNotFoundError

from devhost.services import Azurite, SpeechEmulator, start_speech_emulator, wait_for
from shared.error_reports import advice_for
from shared.output_names import error_report_name, output_name
from tests.integration.harness import (
    Pipeline,
    env_for,
    mono_call,
    running_pipeline,
    stereo_call,
    wav_bytes,
)

pytestmark = pytest.mark.integration

TERMINAL = ("done", "failed", "rejected")
LONG_NAME = "deep/" + "x" * (1024 - len("deep/") - len(".wav")) + ".wav"


def _big_wav() -> bytes:
    """A valid mono WAV of about 1.5 MB (larger than MAX_AUDIO_MB=1)."""
    samples = np.zeros(24 * 32000, dtype=np.float32)
    samples[:1600] = 0.3
    return wav_bytes([samples])


def _with_metadata(wav: bytes, chunks: int, size: int) -> bytes:
    """`wav` with `chunks` bext/iXML/JUNK chunks of `size` bytes each before its fmt chunk,
    as broadcast-WAV exports from call recorders carry them."""
    ids = (b"bext", b"iXML", b"JUNK")
    extra = b"".join(ids[i % 3] + struct.pack("<I", size) + b"\x00" * size for i in range(chunks))
    at = wav.index(b"fmt ")
    return wav[:at] + extra + wav[at:]


BAD: dict[str, tuple[bytes, str]] = {
    "bad/empty.wav": (b"", "EmptyFile"),
    "bad/not audio.wav": (b"this is a text file, not a recording\n" * 40, "NotAudio"),
    "bad/not audio.mp3": (random.Random(7).randbytes(4096), "NotAudio"),
    "bad/truncated header.wav": (mono_call()[:30], "TruncatedHeader"),
    "bad/minutes.txt": (b"meeting minutes", "UnsupportedExtension"),
    "bad/too large.wav": (_big_wav(), "TooLarge"),
    # Each chunk just too big to share a ranged read with the next: too many reads.
    "bad/too much metadata.wav": (_with_metadata(mono_call(), 100, 5000), "HeaderTooLarge"),
}
GOOD: dict[str, bytes] = {
    "good/name with spaces.wav": mono_call(),
    "good/ünïcødé 通话 📞.wav": stereo_call(),
    "good/hash#1.wav": mono_call(),
    "good/100% sure.wav": mono_call(),
    "good/really?.wav": stereo_call(),
    "good/a/b/c/d/e/f/g/h/deep folder.wav": mono_call(),
    LONG_NAME: mono_call(),
    "good/broadcast wav.wav": _with_metadata(stereo_call(), 20, 40_000),  # 800 kB of metadata
}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpeechEmulator]:
    log = tmp_path_factory.mktemp("bad-input") / "emulator.log"
    service = start_speech_emulator(
        "--engine", "scripted", "--start-delay", "1.5", "--processing-factor", "0", log_path=log
    )
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def pipeline(azurite: Azurite, emulator: SpeechEmulator) -> Iterator[Pipeline]:
    env = env_for(azurite, emulator, "bad")
    env["MAX_AUDIO_MB"] = "1"
    with running_pipeline(azurite, emulator, env) as pipe:
        yield pipe


def _fingerprints(pipeline: Pipeline) -> dict[str, tuple[str, Any, int]]:
    container = pipeline.blob_service.get_container_client(pipeline.env["INPUT_CONTAINER"])
    return {
        b.name: (str(b.etag).strip('"'), bytes(b.content_settings.content_md5 or b""), int(b.size))
        for b in container.list_blobs()
    }


def _rows(pipeline: Pipeline) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {}
    for row in pipeline.records():
        rows.setdefault(row["BlobName"], []).append(row)
    return rows


DELETED = "race/deleted while running.wav"
OVERWRITTEN = "race/overwritten while running.wav"


def _settle(pipeline: Pipeline, expected_rows: int) -> dict[str, list[Any]]:
    def settled() -> dict[str, list[Any]] | None:
        pipeline.poll()
        pipeline.drain()
        rows = _rows(pipeline)
        done = sum(len(rs) for rs in rows.values()) == expected_rows and all(
            r["State"] in TERMINAL for rs in rows.values() for r in rs
        )
        return rows if done else None

    return wait_for(settled, timeout=60, interval=0.2, what="every job to end")


def test_bad_and_good_input_in_one_batch(pipeline: Pipeline) -> None:
    blobs = {n: pipeline.upload(n, d, [["good input"], ["indeed"]]) for n, d in GOOD.items()}
    blobs.update({n: pipeline.upload(n, d) for n, (d, _) in BAD.items()})
    deleted = pipeline.upload(f"batch/{DELETED}", mono_call(), [["gone"]])
    before = _fingerprints(pipeline)

    for blob in [*blobs.values(), deleted]:
        pipeline.submit(blob)  # never raises: bad input must not go to the poison queue
    deleted.delete_blob()  # the service has not fetched it yet (start delay)
    rows = _settle(pipeline, len(GOOD) + len(BAD) + 1)
    outputs, errors = set(pipeline.outputs()), set(pipeline.errors())

    for name, (_, code) in BAD.items():
        (row,) = rows[name]
        assert (row["State"], row["ErrorCode"]) == ("rejected", code), name
        report = pipeline.error_report(error_report_name(name))
        assert report["reasonCode"] == code
        assert report["input"]["name"] == name
        assert report["whatToDo"] == advice_for(code)
        assert report["whatToDo"] != advice_for("NoSuchReasonCode")  # specific advice
        assert report["message"]
        assert not any(o.startswith(f"{name}/") for o in outputs)

    for name in GOOD:
        (row,) = rows[name]
        assert row["State"] == "done", (name, row["State"], row.get("ErrorCode"))
        assert output_name(name, "channel_0.json") in outputs, name
        assert (output_name(name, "channel_1.json") in outputs) == (row["Channels"] == 2)
        assert error_report_name(name) not in errors

    (gone,) = rows[f"batch/{DELETED}"]
    assert gone["State"] == "failed"
    assert error_report_name(f"batch/{DELETED}") in errors
    assert not any(o.startswith(f"batch/{DELETED}/") for o in outputs)

    # The app never deletes or modifies an input recording.
    before.pop(f"batch/{DELETED}")
    assert _fingerprints(pipeline) == before
    assert pipeline.stats()["transcriptions"]["live"] == 0  # nothing left on the service


def test_blob_deleted_or_overwritten_while_its_job_runs(pipeline: Pipeline) -> None:
    deleted = pipeline.upload(DELETED, mono_call(), [["gone"]])
    first = pipeline.upload(OVERWRITTEN, mono_call(), [["first version"]])
    pipeline.submit(deleted)
    pipeline.submit(first)
    deleted.delete_blob()  # the service has not fetched it yet (start delay)
    pipeline.poll_until(lambda: _rows(pipeline)[OVERWRITTEN][0]["State"] == "completing")
    # The first version's completion is slow (held back here) while a second version is
    # uploaded and transcribed; the late completion must not overwrite the newer outputs.
    late = pipeline.message_for(_rows(pipeline)[OVERWRITTEN][0]["RowKey"])
    second = pipeline.upload(OVERWRITTEN, stereo_call(), [["second version"], ["v2"]])
    newest = str(second.get_blob_properties().etag)
    pipeline.submit(second)
    pipeline.poll_until(
        lambda: any(
            r["BlobETag"] == newest and r["State"] == "completing"
            for r in _rows(pipeline)[OVERWRITTEN]
        )
    )
    pipeline.drain()
    pipeline.complete(late)
    rows = _settle(pipeline, len(pipeline.records()))

    (gone,) = rows[DELETED]
    assert gone["State"] == "failed"
    report = pipeline.error_report(error_report_name(DELETED))
    assert report["reasonCode"] == "InputDeleted", report
    with pytest.raises(ResourceNotFoundError):
        deleted.get_blob_properties()

    versions = {r["BlobETag"]: r for r in rows[OVERWRITTEN]}
    assert len(versions) == 2
    assert versions[newest]["State"] == "done"
    (older,) = [r for etag, r in versions.items() if etag != newest]
    assert (older["State"], older["ErrorCode"]) == ("rejected", "Superseded")
    text = pipeline.output(output_name(OVERWRITTEN, "transcript.txt")).decode()
    assert "second version" in text.lower()  # the older version's late completion did not win
    assert "first version" not in text.lower()
    assert error_report_name(OVERWRITTEN) not in pipeline.errors()
    assert str(second.get_blob_properties().etag) == newest  # input untouched
    assert pipeline.stats()["transcriptions"]["live"] == 0
