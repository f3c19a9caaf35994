"""Poison message parsing and the redrive counters (pure)."""

from __future__ import annotations

import base64
import json

import pytest

from shared.input_versions import header_etag
from shared.poison_messages import (
    PoisonMessageError,
    completion_body,
    decode_body,
    parse_blob_trigger_poison,
    parse_completion_poison,
)

KEY = "tj-" + "a" * 40


def b64(data: object) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


def test_completion_poison_base64_or_plain_json() -> None:
    assert parse_completion_poison(b64({"job_key": KEY})).redrives == 0
    assert parse_completion_poison(json.dumps({"job_key": KEY, "redrives": 2})).redrives == 2


@pytest.mark.parametrize("bad", [-1, True, "3", None])
def test_a_bad_counter_counts_as_zero(bad: object) -> None:
    assert parse_completion_poison(b64({"job_key": KEY, "redrives": bad})).redrives == 0


@pytest.mark.parametrize("raw", ["", "%%%", b64([1, 2]), b64({"job_key": "x"}), b64("text")])
def test_malformed_completion_poison_raises(raw: str) -> None:
    with pytest.raises(PoisonMessageError):
        parse_completion_poison(raw)


def test_completion_body_round_trips() -> None:
    again = parse_completion_poison(b64(json.loads(completion_body(KEY, 3))))
    assert (again.job_key, again.redrives) == (KEY, 3)


def test_blob_trigger_poison_keeps_the_hosts_fields_and_counts() -> None:
    host = {
        "Type": "BlobTrigger",
        "FunctionId": "Host.Functions.submit",
        "BlobType": "BlockBlob",
        "ContainerName": "audio-input",
        "BlobName": "a/b #1 ü?.wav",
        "ETag": '"0x8D1"',
    }
    parsed = parse_blob_trigger_poison(b64(host))
    assert (parsed.container, parsed.name, parsed.etag, parsed.redrives) == (
        "audio-input",
        "a/b #1 ü?.wav",
        '"0x8D1"',
        0,
    )
    bumped = decode_body(parsed.with_redrives(2))
    assert bumped == {**host, "AppRedrives": 2}
    assert parse_blob_trigger_poison(parsed.with_redrives(2)).redrives == 2


def test_blob_trigger_poison_without_a_blob_raises() -> None:
    with pytest.raises(PoisonMessageError):
        parse_blob_trigger_poison(b64({"Type": "BlobTrigger", "ContainerName": "x"}))


def test_header_etag_quotes_listing_etags_once() -> None:
    assert header_etag("0x8D1") == '"0x8D1"'
    assert header_etag('"0x8D1"') == '"0x8D1"'
