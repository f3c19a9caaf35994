"""Unit tests of the benchmark's pure parts: statistics, request attribution, recordings."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import soundfile

from bench import metrics
from bench.recordings import WAV_HEADER_BYTES, silent_wav_chunks, synthetic_call, wav_header
from bench.storage_counter import StorageCounter, is_app_frame, resource_of, service_ports
from devhost.services import PROJECT_ROOT

CONN = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=x;"
    "BlobEndpoint=http://127.0.0.1:1001/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:1002/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:1003/devstoreaccount1;"
)


def test_percentiles_interpolate_and_summarise() -> None:
    values = [float(v) for v in range(1, 101)]
    assert metrics.percentile(values, 0.5) == pytest.approx(50.5)
    assert metrics.percentile(values, 0.95) == pytest.approx(95.05)
    assert metrics.summary([3.0, 1.0, 2.0]) == {"p50": 2.0, "p95": 2.9, "max": 3.0}
    assert metrics.summary([]) == {"p50": 0.0, "p95": 0.0, "max": 0.0}


def test_overheads_match_jobs_by_display_name_and_take_the_last_finish() -> None:
    stats = {
        "jobs": {
            "a1": {"displayName": "k1", "finished": "2026-01-01T00:00:10.000Z"},
            "a2": {"displayName": "k1", "finished": "2026-01-01T00:00:20.500Z"},  # resubmitted
            "b": {"displayName": "k2", "finished": None},
            "c": {"displayName": "other", "finished": "2026-01-01T00:00:05Z"},
        }
    }
    finished = metrics.finished_times(stats, ["k1", "k2"])
    assert finished == {"k1": metrics.parse_time("2026-01-01T00:00:20.500Z")}
    written = {"k1": finished["k1"] + 1.25, "k2": 0.0}
    assert metrics.overheads(finished, written) == [pytest.approx(1.25)]


def test_speech_counts_are_differences_per_route_and_status() -> None:
    before = {"requests": {"POST /x": {"201": 2}}}
    after = {"requests": {"POST /x": {"201": 5, "429": 1}, "GET /y": {"200": 4}}}
    assert metrics.minus(metrics.route_counts(after), metrics.route_counts(before)) == {
        "POST /x": 4,
        "GET /y": 4,
    }
    assert metrics.status_counts(after) == {"201": 5, "429": 1, "200": 4}
    assert metrics.per_file({"GET /y": 4}, 8) == {"GET /y": 0.5}


def test_storage_breakdown_splits_app_and_host() -> None:
    counts = {"app blob PUT out": 14, "app table PUT jobs": 6, "host queue GET done": 4}
    result = metrics.storage_breakdown(counts, 2)
    assert result["total"] == 12.0
    assert result["app"] == 10.0
    assert result["host"] == 2.0
    assert result["app_by_request"] == {"blob PUT out": 7.0, "table PUT jobs": 3.0}


def test_function_runs_parse_devhost_execution_lines() -> None:
    lines = [
        "[t] Executed 'Functions.complete' (Succeeded, Id=1, Duration=1500ms)",
        "[t] Executed 'Functions.complete' (Failed, Id=2, Duration=500ms)",
        "[t] Executing 'Functions.submit' (Reason='x', Id=3)",
    ]
    runs = metrics.function_runs(lines)
    assert list(runs) == ["complete"]
    assert runs["complete"]["runs"] == 2
    assert runs["complete"]["failed"] == 1
    assert runs["complete"]["duration_s"]["max"] == 1.5


def test_requests_are_attributed_by_service_port_resource_and_caller(tmp_path: Path) -> None:
    assert service_ports(CONN) == {1001: "blob", 1002: "queue", 1003: "table"}
    assert resource_of("/devstoreaccount1/jobs(PartitionKey='a',RowKey='b')") == "jobs"
    assert resource_of("/devstoreaccount1") == ""
    assert is_app_frame(str(PROJECT_ROOT / "shared" / "complete.py"), str(PROJECT_ROOT))
    assert not is_app_frame(str(PROJECT_ROOT / "devhost" / "host.py"), str(PROJECT_ROOT))

    counter = StorageCounter(str(PROJECT_ROOT), service_ports(CONN))
    base = "http://127.0.0.1:1001/devstoreaccount1/out"
    frame = sys._getframe()  # this test's frame: not app code, so "host"
    counter.record("PUT", f"{base}/calls/a%20b.wav/channel_0.json", 201, frame)
    counter.record("PUT", f"{base}/calls/x.wav/channel_0.json?comp=block&blockid=1", 201, frame)
    counter.record("PUT", f"{base}/calls/y.wav/channel_0.json", 412, frame)
    counter.record("GET", "http://127.0.0.1:1002/devstoreaccount1/done/messages", 200, frame)
    snapshot = counter.snapshot()
    assert snapshot["requests"] == {"host blob PUT out": 3, "host queue GET done": 1}
    assert list(snapshot["channel_0_written"]) == ["calls/a b.wav/channel_0.json"]
    counter.dump(tmp_path / "counts.json")
    assert json.loads((tmp_path / "counts.json").read_text())["requests"] == snapshot["requests"]


def test_synthetic_calls_are_stereo_wavs_with_a_script_per_channel() -> None:
    first, second = synthetic_call(0), synthetic_call(1)
    info = soundfile.info(io.BytesIO(first.data))
    assert (info.channels, info.samplerate) == (2, 8000)
    assert first.data != second.data
    script = json.loads(first.metadata["transcript"])
    assert len(script) == 2
    assert all(isinstance(p, str) for channel in script for p in channel)


def test_streamed_silent_wav_has_the_announced_size() -> None:
    chunks = list(silent_wav_chunks(100_000, chunk=16_384))
    data = b"".join(chunks)
    assert len(data) == 100_000
    assert max(len(c) for c in chunks) == 16_384
    assert data[:WAV_HEADER_BYTES] == wav_header(100_000 - WAV_HEADER_BYTES)
    info = soundfile.info(io.BytesIO(data))
    assert info.channels == 2
    assert info.frames == (100_000 - WAV_HEADER_BYTES) // 4
