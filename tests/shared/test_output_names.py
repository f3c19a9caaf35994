"""Output and error-report names: under the input's name, never outside it, within 1,024 chars."""

from __future__ import annotations

import posixpath

import pytest

from shared.output_names import MAX_BLOB_NAME, error_report_name, output_name, output_prefix


@pytest.mark.parametrize(
    "name",
    ["call.wav", "deep/a/b/c/call.mp3", "spaces and ü 漢字.wav", "odd #%?&=+;.wav"],
)
def test_ordinary_names_are_kept_verbatim(name: str) -> None:
    assert output_prefix(name) == name
    assert output_name(name, "channel_0.json") == f"{name}/channel_0.json"
    assert error_report_name(name) == f"{name}.json"


@pytest.mark.parametrize(
    "name", ["../escape.wav", "a/../../b.wav", "./x.wav", "a//b.wav", "/lead.wav", "trail/", ".."]
)
def test_dot_and_empty_segments_cannot_escape_the_prefix(name: str) -> None:
    prefix = output_prefix(name)
    segments = prefix.split("/")
    assert not {"", ".", ".."} & set(segments)
    # URL normalisation (what a server may apply) leaves the name where it was.
    assert posixpath.normpath("/" + prefix) == "/" + prefix
    assert output_name(name, "result.json").startswith(prefix + "/")


def test_distinct_inputs_get_distinct_prefixes() -> None:
    names = ["a/../b.wav", "a/%2E%2E/b.wav", "a/b.wav", "b.wav"]
    assert len({output_prefix(n) for n in names}) >= 3


def test_long_names_are_shortened_with_a_hash_and_stay_unique() -> None:
    long_a = "folder/" + "x" * 1017
    long_b = "folder/" + "x" * 1016 + "y"
    for name in (long_a, long_b):
        assert len(output_name(name, "transcript.json")) <= MAX_BLOB_NAME
        assert len(error_report_name(name)) <= MAX_BLOB_NAME
    assert output_prefix(long_a) != output_prefix(long_b)


@pytest.mark.parametrize("relative", ["", "/abs.json", "../up.json", "a/../../b"])
def test_product_names_must_be_relative(relative: str) -> None:
    with pytest.raises(ValueError, match="relative"):
        output_name("call.wav", relative)


def test_empty_input_name_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        output_prefix("")
