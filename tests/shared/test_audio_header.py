"""Header sniffing on real files written by libsndfile (soundfile) and on hand-made bad inputs.

Recordings are generated in memory per test (no binary fixtures in the repo); hand-built
bytes cover what encoders do not write (VBRI headers, ID3 tags, streaming WAVs, junk).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

import numpy as np
import pytest
import soundfile as sf

from shared.audio_header import HEADER_READ_BYTES, AudioInfo, sniff_audio
from shared.errors import InputRejectedError

GiB = 1024**3
MAX = 1024 * 1024 * 1024  # MAX_AUDIO_MB=1024


def encode(
    fmt: str,
    subtype: str | None,
    channels: int,
    rate: int = 16000,
    seconds: float = 2.0,
    **kwargs: str,
) -> bytes:
    rng = np.random.default_rng(1)
    data = (rng.standard_normal((int(rate * seconds), channels)) * 0.1).astype("float32")
    buf = io.BytesIO()
    sf.write(buf, data, rate, format=fmt, subtype=subtype, **kwargs)
    return buf.getvalue()


@dataclass
class Blob:
    """In-memory blob whose ranged reads are recorded, like a ranged blob download."""

    data: bytes
    reads: list[tuple[int, int]] = field(default_factory=list)

    def read_range(self, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        return self.data[offset : offset + length]

    @property
    def bytes_requested(self) -> int:
        return sum(length for _, length in self.reads)


def sniff(data: bytes, name: str = "call.wav", size: int | None = None) -> AudioInfo:
    blob = Blob(data)
    return sniff_audio(
        blob.read_range, name=name, size=len(data) if size is None else size, max_bytes=MAX
    )


def rejected(data: bytes, name: str, *, size: int | None = None) -> InputRejectedError:
    with pytest.raises(InputRejectedError) as info:
        sniff(data, name, size)
    return info.value


# --------------------------------------------------------------------------- good files


@pytest.mark.parametrize(
    ("fmt", "subtype", "channels", "rate", "name", "expected"),
    [
        ("WAV", "PCM_16", 1, 8000, "mono.wav", ("wav", "pcm", 16)),
        ("WAV", "PCM_16", 2, 16000, "stereo.wav", ("wav", "pcm", 16)),
        ("WAV", "PCM_24", 2, 44100, "pcm24.wav", ("wav", "pcm", 24)),
        ("WAV", "FLOAT", 1, 16000, "float.wav", ("wav", "ieee_float", 32)),
        ("WAV", "ULAW", 1, 8000, "ulaw.wav", ("wav", "mulaw", 8)),
        ("WAV", "ALAW", 2, 8000, "alaw.wav", ("wav", "alaw", 8)),
        ("WAVEX", "PCM_16", 2, 16000, "extensible.wav", ("wav", "pcm", 16)),
        ("RF64", "PCM_16", 1, 16000, "rf64.wav", ("wav", "pcm", 16)),
        ("FLAC", "PCM_16", 2, 16000, "stereo.flac", ("flac", "flac", 16)),
        ("FLAC", "PCM_24", 1, 48000, "mono.flac", ("flac", "flac", 24)),
    ],
)
def test_lossless_files(
    fmt: str,
    subtype: str,
    channels: int,
    rate: int,
    name: str,
    expected: tuple[str, str, int],
) -> None:
    info = sniff(encode(fmt, subtype, channels, rate), name)
    assert (info.format, info.codec, info.bits_per_sample) == expected
    assert (info.channels, info.sample_rate) == (channels, rate)
    assert info.duration_s == pytest.approx(2.0)


def test_big_endian_rifx_wav() -> None:
    info = sniff(encode("WAV", "PCM_16", 2, endian="BIG"), "rifx.wav")
    assert (info.codec, info.channels, info.sample_rate) == ("pcm", 2, 16000)
    assert info.duration_s == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("channels", "rate"), [(1, 16000), (2, 16000), (1, 44100), (2, 48000), (1, 8000)]
)
def test_mp3_files(channels: int, rate: int) -> None:
    info = sniff(encode("MP3", "MPEG_LAYER_III", channels, rate), "call.mp3")
    assert (info.format, info.codec, info.channels, info.sample_rate) == (
        "mp3",
        "mp3",
        channels,
        rate,
    )
    assert info.bits_per_sample is None
    # From the encoder's Xing/Info frame count; MP3 pads with encoder delay frames.
    assert info.duration_s == pytest.approx(2.0, abs=0.2)


@pytest.mark.parametrize(
    ("subtype", "channels", "rate", "name", "codec"),
    [
        ("VORBIS", 2, 16000, "call.ogg", "vorbis"),
        ("VORBIS", 1, 44100, "call.OGG", "vorbis"),
        ("OPUS", 1, 48000, "call.opus", "opus"),
        ("OPUS", 2, 16000, "call.ogg", "opus"),
    ],
)
def test_ogg_files(subtype: str, channels: int, rate: int, name: str, codec: str) -> None:
    info = sniff(encode("OGG", subtype, channels, rate), name)
    assert (info.format, info.codec, info.channels, info.sample_rate) == (
        "ogg",
        codec,
        channels,
        rate,
    )
    assert info.duration_s is None


@pytest.mark.parametrize(
    "name",
    [
        "CALL.WAV",
        "Mixed.Wav",
        "folder/sub folder/2024/01/07/agent 42 – customer #7 ?%.wav",
        "音声/通話 録音 ü ñ 😀.wav",
        "a%20b%3F.wav",
        "weird.name.with.dots.mp3.wav",
        "deep/" * 150 + ("x" * (1024 - 5 * 150 - 4)) + ".wav",
    ],
)
def test_names_do_not_matter_beyond_the_extension(name: str) -> None:
    info = sniff(encode("WAV", "PCM_16", 1), name)
    assert info.channels == 1


# --------------------------------------------------------------------------- MP3 details


MPEG1_L3_128K_44K_MONO = bytes([0xFF, 0xFB, 0x90, 0xC4])  # 417-byte frames, 1152 samples
MPEG1_FRAME = 417


def mpeg_frames(count: int, first_frame_payload: bytes = b"") -> bytes:
    frames = []
    for i in range(count):
        payload = first_frame_payload if i == 0 else b""
        body = payload + b"\x00" * (MPEG1_FRAME - 4 - len(payload))
        frames.append(MPEG1_L3_128K_44K_MONO + body)
    return b"".join(frames)


def id3v2(size: int) -> bytes:
    """An ID3v2.4 tag of `size` bytes of (padding) payload; size is syncsafe-encoded."""
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x04\x00\x00" + syncsafe + b"\x00" * size


def test_mp3_cbr_duration_is_estimated_from_the_size() -> None:
    info = sniff(mpeg_frames(100), "cbr.mp3")  # no Xing/VBRI header
    assert (info.sample_rate, info.channels) == (44100, 1)
    assert info.duration_s == pytest.approx(100 * MPEG1_FRAME * 8 / 128000)


def test_mp3_vbri_frame_count_gives_the_duration() -> None:
    vbri = b"\x00" * 32 + b"VBRI" + struct.pack(">HHHII", 1, 0, 75, 999999, 441)
    info = sniff(mpeg_frames(10, vbri), "vbri.mp3")
    assert info.duration_s == pytest.approx(441 * 1152 / 44100)


def test_mp3_xing_frame_count_gives_the_duration() -> None:
    xing = b"\x00" * 17 + b"Xing" + struct.pack(">II", 0x1, 1000)  # MPEG-1 mono side info
    info = sniff(mpeg_frames(10, xing), "xing.mp3")
    assert info.duration_s == pytest.approx(1000 * 1152 / 44100)


def test_mp3_after_a_large_id3_tag_reads_only_a_small_window_after_it() -> None:
    tag = id3v2(300_000)  # cover art: the audio starts far beyond the first read
    blob = Blob(tag + mpeg_frames(50))
    info = sniff_audio(blob.read_range, name="tagged.mp3", size=len(blob.data), max_bytes=MAX)
    assert (info.codec, info.sample_rate) == ("mp3", 44100)
    assert info.duration_s == pytest.approx(50 * MPEG1_FRAME * 8 / 128000)
    assert blob.reads[0] == (0, HEADER_READ_BYTES)
    assert len(blob.reads) == 2
    assert blob.reads[1][0] == len(tag)
    assert blob.bytes_requested <= HEADER_READ_BYTES + 32 * 1024


def test_mp3_with_small_id3_tag_and_real_encoder_output() -> None:
    data = id3v2(1000) + encode("MP3", "MPEG_LAYER_III", 2)
    blob = Blob(data)
    info = sniff_audio(blob.read_range, name="tagged.mp3", size=len(data), max_bytes=MAX)
    assert info.channels == 2
    assert len(blob.reads) == 1  # the tag and the first frames fit in the first read


def test_mp3_needs_a_consistent_next_frame() -> None:
    # A lone valid-looking frame header followed by junk is not MP3.
    data = MPEG1_L3_128K_44K_MONO + b"\x00" * 413 + b"not another frame" * 100
    error = rejected(data, "lonely.mp3")
    assert error.reason_code == "NotAudio"


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_are_not_mp3(seed: int) -> None:
    data = np.random.default_rng(seed).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    assert rejected(data, "noise.mp3").reason_code == "NotAudio"


def test_mp3_id3_tag_longer_than_the_file_is_truncated() -> None:
    data = id3v2(5000)[:2000]
    error = rejected(data, "cut.mp3")
    assert error.reason_code == "TruncatedHeader"
    assert "cut.mp3" in error.message


def test_mp3_cut_inside_its_first_frame_is_truncated() -> None:
    assert rejected(mpeg_frames(1)[:200], "cut.mp3").reason_code == "TruncatedHeader"


def test_single_complete_mp3_frame_is_accepted() -> None:
    info = sniff(mpeg_frames(1), "one.mp3")
    assert info.duration_s == pytest.approx(MPEG1_FRAME * 8 / 128000)


# --------------------------------------------------------------------------- WAV details


def wav_header(
    *,
    channels: int = 1,
    rate: int = 8000,
    bits: int = 16,
    data_size: int = 16000,
    extra_chunks: bytes = b"",
) -> bytes:
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * align, align, bits)
    body = b"WAVE" + extra_chunks + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", data_size)
    return b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + body


def test_streaming_wav_with_unknown_data_size_uses_the_file_size() -> None:
    data = wav_header(data_size=0xFFFFFFFF) + b"\x00" * 16000  # 1 s at 8 kHz 16-bit mono
    assert sniff(data).duration_s == pytest.approx(1.0)


def test_wav_declaring_more_data_than_present_uses_what_is_there() -> None:
    data = wav_header(data_size=10_000_000) + b"\x00" * 8000
    assert sniff(data).duration_s == pytest.approx(0.5)


def test_wav_with_metadata_chunks_before_fmt() -> None:
    odd_chunk = b"LIST" + struct.pack("<I", 5) + b"INFO!" + b"\x00"  # odd size: padded
    data = wav_header(extra_chunks=odd_chunk) + b"\x00" * 16000
    assert sniff(data).duration_s == pytest.approx(1.0)


def test_wav_with_a_huge_chunk_before_data_costs_one_small_extra_read() -> None:
    junk = b"junk" + struct.pack("<I", 500_000) + b"\x00" * 500_000
    header = wav_header(channels=2, data_size=32000)
    fmt_end = header.index(b"data")
    data = header[:fmt_end] + junk + header[fmt_end:] + b"\x00" * 32000
    blob = Blob(data)
    info = sniff_audio(blob.read_range, name="a.wav", size=len(data), max_bytes=MAX)
    assert info.channels == 2
    assert info.duration_s == pytest.approx(1.0)
    assert len(blob.reads) == 2
    assert blob.bytes_requested <= HEADER_READ_BYTES + 4096


def test_header_only_wav_is_empty() -> None:
    error = rejected(wav_header(data_size=0), "silent.wav")
    assert error.reason_code == "EmptyFile"
    assert "no audio samples" in error.message


def test_wav_without_fmt_before_data_is_not_audio() -> None:
    data = b"RIFF\x00\x00\x00\x00WAVEdata\x10\x00\x00\x00" + b"\x00" * 16
    assert rejected(data, "x.wav").reason_code == "NotAudio"


@pytest.mark.parametrize("cut", [3, 6, 11, 20, 30, 40])
def test_wav_cut_inside_its_header_is_truncated(cut: int) -> None:
    data = encode("WAV", "PCM_16", 1)[:cut]
    error = rejected(data, "cut.wav")
    assert error.reason_code == "TruncatedHeader"
    assert "upload the complete recording" in error.message.lower()


def test_wav_with_zero_channels_is_not_audio() -> None:
    assert rejected(wav_header(channels=0) + b"\x00" * 100, "z.wav").reason_code == "NotAudio"


# --------------------------------------------------------------------------- metadata


def riff_chunk(chunk_id: bytes, payload: bytes) -> bytes:
    """One RIFF chunk: id, little-endian size, payload, and the pad byte after an odd size."""
    return chunk_id + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)


def bwf_metadata(count: int, size: int) -> bytes:
    """`count` chunks of about `size` bytes each, as broadcast-WAV exports from call recorders
    write them: bext (description, originator, coding history), iXML, LIST/INFO and JUNK."""
    chunks = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            history = b"A=PCM,F=16000,W=16,M=stereo,T=CallRecorder\r\n" * (size // 44)
            payload = b"Call 4711 agent 42".ljust(256, b"\x00") + b"\x00" * 346 + history
            chunks.append(riff_chunk(b"bext", payload[:size]))
        elif kind == 1:
            xml = b"<BWFXML><NOTE>" + b"x" * size + b"</NOTE></BWFXML>"
            chunks.append(riff_chunk(b"iXML", xml[: size - 1]))  # odd: a pad byte follows
        elif kind == 2:
            chunks.append(riff_chunk(b"LIST", b"INFO" + riff_chunk(b"ICMT", b"c" * (size - 12))))
        else:
            chunks.append(riff_chunk(b"JUNK", b"\x00" * size))
    return b"".join(chunks)


def insert_before(data: bytes, chunk_id: bytes, extra: bytes) -> bytes:
    """`data` (a WAV) with `extra` chunks inserted right before its `chunk_id` chunk."""
    at = data.index(chunk_id, 12)
    return data[:at] + extra + data[at:]


@pytest.mark.parametrize("before", [b"fmt ", b"data"])
def test_broadcast_wav_with_many_large_metadata_chunks_is_accepted(before: bytes) -> None:
    metadata = bwf_metadata(24, 100_000)  # 2.4 MB of bext/iXML/LIST/JUNK, 24 chunks
    data = insert_before(encode("WAV", "PCM_16", 2), before, metadata)
    blob = Blob(data)
    info = sniff_audio(blob.read_range, name="bwf.wav", size=len(data), max_bytes=MAX)
    assert (info.format, info.codec, info.channels, info.sample_rate) == ("wav", "pcm", 2, 16000)
    assert info.duration_s == pytest.approx(2.0)
    # Chunks are skipped by their size, not downloaded: one small read per chunk boundary.
    assert len(blob.reads) <= 1 + 24
    assert blob.bytes_requested <= HEADER_READ_BYTES + 24 * 4096


@dataclass
class SparseBlob:
    """A blob of `size` bytes that is zero except at `pieces` ({offset: bytes}); nothing is
    allocated for the zeros, so a test can describe a file of hundreds of megabytes."""

    size: int
    pieces: dict[int, bytes]
    reads: list[tuple[int, int]] = field(default_factory=list)

    def read_range(self, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        out = bytearray(max(min(length, self.size - offset), 0))
        for start, piece in self.pieces.items():
            lo, hi = max(start, offset), min(start + len(piece), offset + len(out))
            if lo < hi:
                out[lo - offset : hi - offset] = piece[lo - start : hi - start]
        return bytes(out)


def test_wav_whose_audio_starts_hundreds_of_megabytes_in_is_accepted() -> None:
    # 30 metadata chunks of 30 MB each (recorders pad with JUNK/FLLR to reserve space):
    # the data chunk starts about 900 MB into the file.
    pieces: dict[int, bytes] = {}
    header = wav_header(channels=2, rate=16000, data_size=32000)
    fmt_end = header.index(b"data")
    pieces[0] = header[:fmt_end]
    offset = fmt_end
    for i in range(30):
        pieces[offset] = (b"JUNK" if i % 2 else b"FLLR") + struct.pack("<I", 30 * 1024**2)
        offset += 8 + 30 * 1024**2
    pieces[offset] = header[fmt_end:]
    blob = SparseBlob(offset + len(header) - fmt_end + 32000, pieces)
    info = sniff_audio(blob.read_range, name="late.wav", size=blob.size, max_bytes=MAX)
    assert (info.channels, info.sample_rate) == (2, 16000)
    assert info.duration_s == pytest.approx(0.5)
    assert offset > 900 * 1024**2
    assert len(blob.reads) == 1 + 30
    assert sum(length for _, length in blob.reads) <= HEADER_READ_BYTES + 30 * 4096


def test_wav_needing_too_many_reads_is_header_too_large_not_truncated() -> None:
    # Hundreds of chunks, each just too big to share a read with the next: pathological.
    data = insert_before(encode("WAV", "PCM_16", 1), b"fmt ", bwf_metadata(200, 5000))
    blob = Blob(data)
    with pytest.raises(InputRejectedError) as info:
        sniff_audio(blob.read_range, name="bloated.wav", size=len(data), max_bytes=MAX)
    error = info.value
    assert error.reason_code == "HeaderTooLarge"
    assert "bloated.wav" in error.message
    assert "metadata" in error.message
    assert "cut short" not in error.message  # the upload is fine; do not blame it
    assert "upload it again" in error.message
    assert len(blob.reads) <= 1 + 64  # the work stays bounded


def test_wav_with_hundreds_of_chunks_and_no_audio_is_header_too_large() -> None:
    chunks = b"".join(riff_chunk(b"cue ", b"\x00" * 24) for _ in range(300))  # all in 64 KiB
    data = insert_before(encode("WAV", "PCM_16", 1), b"fmt ", chunks)
    error = rejected(data, "chatty.wav")
    assert error.reason_code == "HeaderTooLarge"
    assert "256 chunks" in error.message


def test_wav_cut_inside_its_metadata_is_still_truncated() -> None:
    data = insert_before(encode("WAV", "PCM_16", 1), b"fmt ", bwf_metadata(24, 100_000))
    error = rejected(data[: 10 * 100_000 + 50], "cut.wav")
    assert error.reason_code == "TruncatedHeader"


def test_mp3_after_many_id3_tags_is_accepted() -> None:
    tags = b"".join(id3v2(size) for size in (200_000, 10, 80_000, 500, 300_000, 20))
    info = sniff(tags + mpeg_frames(50), "retagged.mp3")
    assert (info.codec, info.sample_rate, info.channels) == ("mp3", 44100, 1)


def test_mp3_with_too_many_id3_tags_is_header_too_large() -> None:
    error = rejected(id3v2(100) * 9 + mpeg_frames(50), "overtagged.mp3")
    assert error.reason_code == "HeaderTooLarge"
    assert "ID3 tags" in error.message


def flac_with_picture(picture_size: int) -> bytes:
    """A FLAC file with a PICTURE metadata block (cover art) right after STREAMINFO."""
    data = encode("FLAC", "PCM_16", 2)
    streaminfo_end = 4 + 4 + 34
    last_flag = data[4] & 0x80
    picture = bytes([6 | last_flag]) + picture_size.to_bytes(3, "big") + b"\x00" * picture_size
    return (
        b"fLaC" + bytes([data[4] & 0x7F]) + data[5:streaminfo_end] + picture + data[streaminfo_end:]
    )


def test_flac_with_large_cover_art_costs_one_read() -> None:
    data = flac_with_picture(2_000_000)
    blob = Blob(data)
    info = sniff_audio(blob.read_range, name="art.flac", size=len(data), max_bytes=MAX)
    assert (info.codec, info.channels, info.sample_rate) == ("flac", 2, 16000)
    assert info.duration_s == pytest.approx(2.0)
    assert blob.reads == [(0, HEADER_READ_BYTES)]


def test_flac_after_large_id3_tags_is_accepted() -> None:
    data = id3v2(300_000) + id3v2(100_000) + encode("FLAC", "PCM_16", 1)
    blob = Blob(data)
    info = sniff_audio(blob.read_range, name="tagged.flac", size=len(data), max_bytes=MAX)
    assert (info.codec, info.channels) == ("flac", 1)
    assert len(blob.reads) == 3


def test_ogg_with_a_large_comment_header_costs_one_read() -> None:
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", 16000, 1, format="OGG", subtype="VORBIS") as file:
        file.comment = "c" * 300_000  # lives in the second packet, after the first page
        file.write(np.zeros(16000, dtype="float32"))
    data = buffer.getvalue()
    blob = Blob(data)
    info = sniff_audio(blob.read_range, name="noted.ogg", size=len(data), max_bytes=MAX)
    assert (info.codec, info.channels, info.sample_rate) == ("vorbis", 1, 16000)
    assert blob.reads == [(0, HEADER_READ_BYTES)]


# --------------------------------------------------------------------------- rejections


def test_empty_file() -> None:
    blob = Blob(b"")
    with pytest.raises(InputRejectedError) as info:
        sniff_audio(blob.read_range, name="empty.wav", size=0, max_bytes=MAX)
    assert info.value.reason_code == "EmptyFile"
    assert "empty.wav" in info.value.message
    assert "upload" in info.value.message
    assert blob.reads == []  # nothing to read


def test_too_large_names_the_setting_and_the_service_limit() -> None:
    blob = Blob(b"")
    with pytest.raises(InputRejectedError) as info:
        sniff_audio(blob.read_range, name="long.wav", size=300 * 1024**2, max_bytes=200 * 1024**2)
    message = info.value.message
    assert info.value.reason_code == "TooLarge"
    assert "MAX_AUDIO_MB" in message
    assert "1 GB" in message
    assert "300.0 MB" in message
    assert blob.reads == []


@pytest.mark.parametrize("name", ["notes.txt", "call.m4a", "call.wav.zip", "README", "dir.wav/x"])
def test_unsupported_extension(name: str) -> None:
    error = rejected(encode("WAV", "PCM_16", 1), name)
    assert error.reason_code == "UnsupportedExtension"
    assert ".wav" in error.message
    assert "upload it again" in error.message


@pytest.mark.parametrize("name", ["text.wav", "text.mp3", "text.flac", "text.ogg", "text.opus"])
def test_text_under_an_audio_extension_is_not_audio(name: str) -> None:
    data = ("Meeting notes: call the customer back on Tuesday.\n" * 200).encode()
    error = rejected(data, name)
    assert error.reason_code == "NotAudio"
    assert name in error.message


def test_not_audio_names_the_real_format_when_it_recognises_it() -> None:
    error = rejected(encode("MP3", "MPEG_LAYER_III", 1), "really-an-mp3.wav")
    assert error.reason_code == "NotAudio"
    assert ".mp3 extension" in error.message


@pytest.mark.parametrize(
    ("fmt", "subtype", "name"),
    [
        ("WAV", "PCM_16", "three.wav"),
        ("WAVEX", "PCM_16", "three-ext.wav"),
        ("FLAC", "PCM_16", "three.flac"),
        ("OGG", "VORBIS", "three.ogg"),
    ],
)
def test_more_than_two_channels_is_rejected(fmt: str, subtype: str, name: str) -> None:
    error = rejected(encode(fmt, subtype, 3), name)
    assert error.reason_code == "UnsupportedChannels"
    assert "3 audio channels" in error.message
    assert "mono or stereo" in error.message


@pytest.mark.parametrize("cut", [2, 10, 30])
def test_flac_cut_inside_its_header_is_truncated(cut: int) -> None:
    data = encode("FLAC", "PCM_16", 1)[:cut]
    assert rejected(data, "cut.flac").reason_code == "TruncatedHeader"


@pytest.mark.parametrize("cut", [2, 20, 40])
def test_ogg_cut_inside_its_header_is_truncated(cut: int) -> None:
    data = encode("OGG", "VORBIS", 1)[:cut]
    assert rejected(data, "cut.ogg").reason_code == "TruncatedHeader"


def test_ogg_with_an_unknown_codec() -> None:
    packet = b"Speex   " + b"\x00" * 72
    page = b"OggS\x00\x02" + b"\x00" * 20 + bytes([1, len(packet)]) + packet
    error = rejected(page, "speex.ogg")
    assert error.reason_code == "UnsupportedCodec"
    assert "Speex" in error.message


# --------------------------------------------------------------------------- cost


def test_a_one_gigabyte_wav_costs_one_64k_read() -> None:
    header = wav_header(channels=2, rate=16000, data_size=GiB - 44)
    blob = Blob(header + b"\x00" * (HEADER_READ_BYTES - len(header)))
    info = sniff_audio(blob.read_range, name="huge.wav", size=GiB, max_bytes=MAX)
    assert info.duration_s == pytest.approx((GiB - 44) / (16000 * 4))
    assert blob.reads == [(0, HEADER_READ_BYTES)]


def test_a_one_gigabyte_mp3_costs_a_few_kilobytes() -> None:
    head = id3v2(200_000) + mpeg_frames(200)
    blob = Blob(head)  # the rest of the "file" is never asked for
    info = sniff_audio(blob.read_range, name="huge.mp3", size=GiB, max_bytes=MAX)
    assert info.duration_s == pytest.approx((GiB - 200_010) * 8 / 128000)
    assert blob.bytes_requested <= 100 * 1024
    assert all(offset + length <= len(head) for offset, length in blob.reads)
