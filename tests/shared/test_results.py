"""Reading the service's result file: per-channel split, channels, tolerant times."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from shared.errors import TranscriptionAppError
from shared.results import (
    ResultFormatError,
    iso_duration_ms,
    result_channels,
    result_duration_ms,
    result_timestamp,
    split_by_channel,
    time_span_ms,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "results"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_split_by_channel_filters_phrases_and_combined_to_each_channel() -> None:
    result = load("stereo.json")
    parts = split_by_channel(result, [0, 1])

    assert set(parts) == {0, 1}
    for channel, part in parts.items():
        assert part["recognizedPhrases"]
        assert all(p["channel"] == channel for p in part["recognizedPhrases"])
        assert [c["channel"] for c in part["combinedRecognizedPhrases"]] == [channel]
    # Nothing lost, nothing duplicated, the service's order kept within a channel.
    merged = parts[0]["recognizedPhrases"] + parts[1]["recognizedPhrases"]
    assert merged == result["recognizedPhrases"]


def test_split_by_channel_keeps_every_top_level_field_as_written() -> None:
    result = load("stereo.json")
    result["someFutureField"] = {"nested": [1, 2]}
    result["timeStamp"] = "2026-11-21T08:12:44Z"
    parts = split_by_channel(result)

    assert set(parts) == {0, 1}  # both channels seen, so the loop below checks both
    for part in parts.values():
        assert list(part) == list(result)  # same fields, same order
        for key in result.keys() - {"recognizedPhrases", "combinedRecognizedPhrases"}:
            assert part[key] == result[key]
        # The original SAS-bearing source is left to the caller (render_products redacts it).
        assert part["source"] == result["source"]


def test_split_by_channel_gives_a_requested_silent_channel_empty_lists() -> None:
    result = load("empty_channel.json")
    parts = split_by_channel(result, [0, 1])

    assert parts[1]["recognizedPhrases"] == []
    assert parts[1]["combinedRecognizedPhrases"] == []
    assert parts[1]["durationMilliseconds"] == result["durationMilliseconds"]
    assert len(parts[0]["recognizedPhrases"]) == len(result["recognizedPhrases"])


def test_split_by_channel_without_request_uses_the_channels_present() -> None:
    assert set(split_by_channel(load("empty_channel.json"))) == {0}
    assert set(split_by_channel(load("stereo.json"))) == {0, 1}


def test_split_by_channel_leaves_out_channels_that_were_not_requested() -> None:
    parts = split_by_channel(load("stereo.json"), [1])
    assert set(parts) == {1}
    assert all(p["channel"] == 1 for p in parts[1]["recognizedPhrases"])


def test_split_by_channel_adds_absent_lists_and_reads_a_missing_channel_as_zero() -> None:
    result = load("tolerant.json")
    del result["combinedRecognizedPhrases"]
    parts = split_by_channel(result, [0])
    assert parts[0]["combinedRecognizedPhrases"] == []
    assert len(parts[0]["recognizedPhrases"]) == 4
    assert parts[0]["someFutureField"] == {"kept": True}


def test_split_by_channel_does_not_modify_the_result() -> None:
    result = load("stereo.json")
    before = copy.deepcopy(result)
    split_by_channel(result, [0, 1, 2])
    assert result == before


@pytest.mark.parametrize("channels", [[-1], ["0"], [True], [0.5]])
def test_split_by_channel_rejects_channels_that_are_not_numbers(channels: list[Any]) -> None:
    with pytest.raises(ValueError, match="not channel numbers"):
        split_by_channel(load("stereo.json"), channels)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("stereo.json", [0, 1]),
        ("empty_channel.json", [0]),
        ("tolerant.json", [0]),
        ("mono.json", [0]),
    ],
)
def test_result_channels(name: str, expected: list[int]) -> None:
    assert result_channels(load(name)) == expected


def test_result_channels_of_an_empty_result() -> None:
    assert result_channels({"recognizedPhrases": [], "combinedRecognizedPhrases": []}) == []
    assert result_channels({}) == []


@pytest.mark.parametrize(
    ("iso", "ms"),
    [
        ("PT0S", 0),
        ("PT1.5S", 1500),
        ("PT0.76S", 760),
        ("PT1M2.34S", 62_340),
        ("PT1H", 3_600_000),
        ("PT1H2M3.004S", 3_723_004),
    ],
)
def test_iso_duration_ms(iso: str, ms: int) -> None:
    assert iso_duration_ms(iso) == pytest.approx(ms)


def test_iso_duration_ms_rejects_garbage_with_a_clear_message() -> None:
    with pytest.raises(ResultFormatError, match="not an ISO-8601 duration"):
        iso_duration_ms("soon")


def test_time_span_prefers_ticks_over_the_iso_form() -> None:
    item = {
        "offset": "PT9S",
        "duration": "PT9S",
        "offsetInTicks": 7_600_000.0,
        "durationInTicks": 13_200_000.0,
    }
    assert time_span_ms(item) == (760, 2080)


def test_time_span_reads_iso_only_integer_ticks_and_a_missing_duration() -> None:
    assert time_span_ms({"offset": "PT1M2.34S", "duration": "PT1.5S"}) == (62_340, 63_840)
    assert time_span_ms({"offsetInTicks": 37_255_000_000, "durationInTicks": 17_500_000}) == (
        3_725_500,
        3_727_250,
    )
    assert time_span_ms({"offsetInTicks": 10_000.4}) == (1, 1)


def test_time_span_rounds_the_end_from_exact_ticks() -> None:
    # 0.4 ms + 0.4 ms: rounding each would give 0 + 0; the end is 0.8 ms -> 1.
    assert time_span_ms({"offsetInTicks": 4_000.0, "durationInTicks": 4_000.0}) == (0, 1)


def test_time_span_without_any_offset_names_the_item() -> None:
    with pytest.raises(ResultFormatError, match=r"recognizedPhrases\[3\] has neither"):
        time_span_ms({"duration": "PT1S"}, "recognizedPhrases[3]")


def test_time_span_rejects_a_non_numeric_tick_value() -> None:
    with pytest.raises(ResultFormatError, match="offsetInTicks"):
        time_span_ms({"offsetInTicks": [1]})


def test_result_timestamp_and_duration_read_tolerantly() -> None:
    tolerant = load("tolerant.json")
    assert result_timestamp(tolerant) == "2026-11-21T08:12:44Z"  # written as timeStamp
    assert result_duration_ms(tolerant) == 3_732_000  # only the ISO duration is there
    stereo = load("stereo.json")
    assert result_timestamp(stereo) == "2026-11-21T08:12:44Z"
    assert result_duration_ms(stereo) == 30_200
    assert result_duration_ms({}) is None
    assert result_timestamp({}) is None


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ([], "expected an object"),
        ({"recognizedPhrases": {"channel": 0}}, "must be a list of objects"),
        ({"recognizedPhrases": [1, 2]}, "must be a list of objects"),
        ({"recognizedPhrases": [{"channel": "left"}]}, "channel 'left'"),
        ({"recognizedPhrases": [{"channel": -1}]}, "negative channel"),
        ({"recognizedPhrases": [{"channel": 1.5}]}, "channel 1.5"),
    ],
)
def test_malformed_results_are_rejected_with_a_clear_error(result: Any, message: str) -> None:
    with pytest.raises(ResultFormatError, match=message) as caught:
        result_channels(result)
    assert isinstance(caught.value, TranscriptionAppError)
