"""Check a recording from its header bytes alone: is it audio, which format, how many channels.

Pure: the caller passes `read_range(offset, length)` (backed by a ranged blob download), and
this module asks only for what the header needs — the first 64 KiB, plus for an MP3 or FLAC
with large ID3v2 tags one small read after each tag, or for a WAV with big metadata chunks
(`bext`, `iXML`, `LIST`, `JUNK`, ...) before its audio one small read per chunk boundary
beyond what it already has. Metadata is skipped by offset, never downloaded, so a 1 GB
recording costs the same as 100 KB, and the work per file is bounded: a header that needs
more than `_MAX_EXTRA_READS` extra reads (or more chunks or tags than real recorders write)
is rejected as `HeaderTooLarge`, never mistaken for a cut-short file.

Every rejection is an `InputRejectedError` with a stable reason code and a message that says
what is wrong, why, and what to do:

    UnsupportedExtension  the name does not end in .wav .mp3 .flac .ogg .opus
    EmptyFile             zero bytes, or a valid header with no audio after it
    TooLarge              larger than MAX_AUDIO_MB (the service takes at most 1 GB)
    NotAudio              the bytes are not the format the extension claims
    TruncatedHeader       the file ends inside its header
    HeaderTooLarge        so much metadata before the audio that the check gives up on it
    UnsupportedChannels   more than 2 channels (mono or stereo call recordings only)
    UnsupportedCodec      a valid container holding a codec the app does not accept
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from shared.errors import InputRejectedError

__all__ = ["ALLOWED_EXTENSIONS", "HEADER_READ_BYTES", "AudioInfo", "sniff_audio"]

ALLOWED_EXTENSIONS: Final = (".wav", ".mp3", ".flac", ".ogg", ".opus")
HEADER_READ_BYTES: Final = 64 * 1024
_AFTER_ID3_READ_BYTES: Final = 32 * 1024
_CHUNK_READ_BYTES: Final = 4 * 1024
# Reads beyond the first 64 KiB, per file. A broadcast WAV costs one per metadata chunk
# larger than what the previous read fetched; real recorders write a dozen chunks at most.
_MAX_EXTRA_READS: Final = 64
_MAX_WAV_CHUNKS: Final = 256
_MAX_ID3_TAGS: Final = 8
_MIB: Final = 1024 * 1024
_MAX_CHANNELS: Final = 2

ReadRange = Callable[[int, int], bytes]


@dataclass(frozen=True)
class AudioInfo:
    """What the header says about a recording.

    `format` is the container (wav, mp3, flac, ogg); `codec` what it holds (pcm,
    ieee_float, alaw, mulaw, mp3, flac, opus, vorbis, ...). `duration_s` is None when the
    header does not tell (Ogg) and an estimate for CBR MP3 without a Xing/VBRI header.
    """

    format: str
    codec: str
    channels: int
    sample_rate: int
    duration_s: float | None
    bits_per_sample: int | None


def sniff_audio(read_range: ReadRange, *, name: str, size: int, max_bytes: int) -> AudioInfo:
    """Validate a recording by its header and describe it; raises InputRejectedError.

    `name` is the blob name (any Unicode, folders, spaces, `#`, `%`, `?`); its extension
    picks the parser. `size` is the blob size; `max_bytes` the app's limit (MAX_AUDIO_MB).
    """
    shown = _short(name)
    extension = _extension(name)
    if extension not in ALLOWED_EXTENSIONS:
        what = f"extension {extension!r}" if extension else "no file extension"
        raise InputRejectedError(
            "UnsupportedExtension",
            f"{shown!r} has {what}; only {', '.join(ALLOWED_EXTENSIONS)} recordings are "
            "transcribed. Convert the recording to WAV or MP3 and upload it again.",
        )
    if size <= 0:
        raise InputRejectedError(
            "EmptyFile",
            f"{shown!r} is empty (0 bytes): there is nothing to transcribe. The upload "
            "probably failed; upload the recording again.",
        )
    if size > max_bytes:
        raise InputRejectedError(
            "TooLarge",
            f"{shown!r} is {size / _MIB:,.1f} MB, over the limit of {max_bytes / _MIB:,.0f} MB "
            "set by MAX_AUDIO_MB (the Speech service accepts at most 1 GB per file). Split the "
            "recording or compress it (e.g. to MP3) and upload the parts.",
        )
    source = _Source(read_range, size)
    parser = {
        ".wav": _sniff_wav,
        ".mp3": _sniff_mp3,
        ".flac": _sniff_flac,
        ".ogg": _sniff_ogg,
        ".opus": _sniff_ogg,
    }[extension]
    try:
        info = parser(source, shown)
    except _ReadLimitError as exc:
        raise _header_too_large(
            shown,
            f"its audio was not found within {_MAX_EXTRA_READS} reads beyond the first "
            f"{HEADER_READ_BYTES // 1024} KiB (the last at {exc.offset / _MIB:,.1f} MB into "
            "the file)",
        ) from None
    if info.channels > _MAX_CHANNELS:
        raise InputRejectedError(
            "UnsupportedChannels",
            f"{shown!r} has {info.channels} audio channels; the app transcribes mono or stereo "
            "call recordings (agent and customer on channels 0 and 1). Mix it down to mono or "
            "stereo and upload it again.",
        )
    if info.channels < 1 or info.sample_rate < 1:
        raise _not_audio(
            shown,
            extension,
            f"its header declares {info.channels} channels at "
            f"{info.sample_rate} Hz, which is not playable audio",
        )
    return info


# --------------------------------------------------------------------------- helpers


def _extension(name: str) -> str:
    """Lower-case extension of the last path segment ('' when there is none)."""
    leaf = name.rsplit("/", 1)[-1]
    stem, dot, ext = leaf.rpartition(".")
    return f".{ext.lower()}" if dot and stem else ""


def _short(name: str, limit: int = 120) -> str:
    return name if len(name) <= limit else f"{name[: limit // 2]}…{name[-limit // 2 :]}"


class _ReadLimitError(Exception):
    """A parser needed more than `_MAX_EXTRA_READS` reads (becomes `HeaderTooLarge`)."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


class _Source:
    """Ranged reads over the blob, served from the first 64 KiB whenever possible.

    A read beyond it fetches `prefetch` bytes at once and keeps them, so a parser that
    looks at a few bytes and then at what follows them makes one remote call, not two.
    After `_MAX_EXTRA_READS` remote reads it raises `_ReadLimitError` rather than
    returning nothing, which the parsers would take for the end of the file.
    """

    def __init__(self, read_range: ReadRange, size: int) -> None:
        self._read_range = read_range
        self.head = read_range(0, min(size, HEADER_READ_BYTES))
        # The blob may have shrunk since it was listed: trust what we could actually read.
        self.size = len(self.head) if len(self.head) < min(size, HEADER_READ_BYTES) else size
        self._extra_offset = 0
        self._extra = b""
        self._extra_reads = 0

    def read(self, offset: int, length: int, *, prefetch: int = _CHUNK_READ_BYTES) -> bytes:
        """Up to `length` bytes at `offset` (fewer at the end of the file)."""
        if offset >= self.size or length <= 0:
            return b""
        length = min(length, self.size - offset)
        if offset + length <= len(self.head):
            return self.head[offset : offset + length]
        start = offset - self._extra_offset
        if self._extra and start >= 0 and offset + length <= self._extra_offset + len(self._extra):
            return self._extra[start : start + length]
        if self._extra_reads >= _MAX_EXTRA_READS:
            raise _ReadLimitError(offset)
        self._extra_reads += 1
        self._extra_offset = offset
        self._extra = self._read_range(offset, min(max(length, prefetch), self.size - offset))
        return self._extra[:length]


def _not_audio(shown: str, extension: str, why: str, head: bytes = b"") -> InputRejectedError:
    hint = ""
    actual = _guess_format(head) if head else None
    if actual and f".{actual}" != extension:
        hint = f" The bytes look like {actual.upper()}: give the file a .{actual} extension."
    return InputRejectedError(
        "NotAudio",
        f"{shown!r} is not a valid {extension[1:].upper()} file: {why}.{hint} "
        "Check that the file is a recording and was uploaded completely, then upload it again.",
    )


def _truncated(shown: str, what: str) -> InputRejectedError:
    return InputRejectedError(
        "TruncatedHeader",
        f"{shown!r} ends inside its {what}: the file is cut short (an interrupted upload or "
        "copy). Upload the complete recording again.",
    )


def _header_too_large(shown: str, what: str) -> InputRejectedError:
    return InputRejectedError(
        "HeaderTooLarge",
        f"{shown!r} has more metadata before its audio than the app examines: {what}. The "
        "app checks each recording from its header alone and bounds that work, so it does "
        "not submit a file whose audio it cannot find. Export or save the recording again "
        "without the extra metadata (or convert it to plain WAV, FLAC or MP3) and upload it "
        "again.",
    )


def _guess_format(head: bytes) -> str | None:
    """Best guess of the real format from magic bytes, for a helpful NotAudio message."""
    if head[:4] in _RIFF_MAGICS and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


# --------------------------------------------------------------------------- WAV

_WAV_CODECS: Final = {
    0x0001: "pcm",
    0x0002: "ms_adpcm",
    0x0003: "ieee_float",
    0x0006: "alaw",
    0x0007: "mulaw",
    0x0011: "ima_adpcm",
    0x0031: "gsm610",
    0x0055: "mp3",
}
_RIFF_MAGICS: Final = (b"RIFF", b"RIFX", b"RF64")
_WAVE_FORMAT_EXTENSIBLE: Final = 0xFFFE
_UNKNOWN_SIZE: Final = 0xFFFFFFFF


def _sniff_wav(source: _Source, shown: str) -> AudioInfo:
    head = source.head
    magic = head[:4]
    if len(head) < 12:
        starts_like_wav = any(m.startswith(magic) for m in _RIFF_MAGICS) and (
            b"WAVE".startswith(head[8:12])
        )
        if starts_like_wav:
            raise _truncated(shown, "WAV header")
        raise _not_audio(shown, ".wav", "it does not start with a RIFF/WAVE header", head)
    if magic not in _RIFF_MAGICS or head[8:12] != b"WAVE":
        raise _not_audio(shown, ".wav", "it does not start with a RIFF/WAVE header", head)
    endian = ">" if magic == b"RIFX" else "<"
    fmt: tuple[int, int, int, int, int, int] | None = None  # codec, ch, rate, bps, align, bits
    ds64_data_size: int | None = None
    offset = 12
    for _ in range(_MAX_WAV_CHUNKS):  # a malformed file must not loop forever
        chunk_header = source.read(offset, 8)
        if len(chunk_header) < 8:
            if offset >= source.size and fmt is not None:
                raise _truncated(shown, "WAV header (no data chunk before the end of the file)")
            raise _truncated(shown, "WAV header")
        chunk_id = chunk_header[:4]
        (chunk_size,) = struct.unpack(f"{endian}I", chunk_header[4:8])
        body_offset = offset + 8
        if chunk_id == b"ds64":
            body = source.read(body_offset, 24)
            if len(body) < 24:
                raise _truncated(shown, "RF64 ds64 chunk")
            ds64_data_size = struct.unpack("<Q", body[8:16])[0]
        elif chunk_id == b"fmt ":
            fmt = _parse_wav_fmt(source.read(body_offset, min(chunk_size, 64)), endian, shown)
        elif chunk_id == b"data":
            if fmt is None:
                raise _not_audio(shown, ".wav", "its audio data comes before the format chunk")
            available = max(source.size - body_offset, 0)
            data_size = chunk_size
            if magic == b"RF64" and chunk_size == _UNKNOWN_SIZE and ds64_data_size is not None:
                data_size = ds64_data_size
            if data_size in (0, _UNKNOWN_SIZE) or data_size > available:
                # Streaming writers leave the size at 0/-1; a cut file has less than declared.
                data_size = available
            if data_size == 0:
                raise InputRejectedError(
                    "EmptyFile",
                    f"{shown!r} has a valid WAV header but no audio samples after it. "
                    "Record or export the call again.",
                )
            return _wav_info(fmt, data_size)
        if chunk_id[:1].isspace() or not chunk_id.isascii():
            raise _not_audio(shown, ".wav", f"it has a malformed chunk at byte {offset}")
        offset = body_offset + chunk_size + (chunk_size & 1)  # chunks are word-aligned
    raise _header_too_large(shown, f"no audio data chunk among its first {_MAX_WAV_CHUNKS} chunks")


def _parse_wav_fmt(body: bytes, endian: str, shown: str) -> tuple[int, int, int, int, int, int]:
    if len(body) < 16:
        raise _truncated(shown, "WAV format chunk")
    codec, channels, rate, byte_rate, align, bits = struct.unpack(f"{endian}HHIIHH", body[:16])
    if codec == _WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 40:
            raise _truncated(shown, "WAV extensible format chunk")
        # The real format code is the first two bytes of the SubFormat GUID.
        (codec,) = struct.unpack(f"{endian}H", body[24:26])
    return codec, channels, rate, byte_rate, align, bits


def _wav_info(fmt: tuple[int, int, int, int, int, int], data_size: int) -> AudioInfo:
    codec, channels, rate, byte_rate, align, bits = fmt
    if not byte_rate and rate and align:
        byte_rate = rate * align
    return AudioInfo(
        format="wav",
        codec=_WAV_CODECS.get(codec, f"wav_format_0x{codec:04x}"),
        channels=channels,
        sample_rate=rate,
        duration_s=data_size / byte_rate if byte_rate else None,
        bits_per_sample=bits or None,
    )


# --------------------------------------------------------------------------- MP3

# Bitrates in kbit/s by [version is MPEG-1][layer 1..3][index]; index 0 = free format.
_BITRATES: Final = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES: Final = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_MP3_MAX_FRAME: Final = 2881 + 4  # largest Layer III frame (MPEG-1, 320 kbit/s, 32 kHz) + slack


@dataclass(frozen=True)
class _MpegFrame:
    version: int  # 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5 (the header's bit pattern)
    layer: int  # 1, 2 or 3
    bitrate_kbps: int
    sample_rate: int
    channels: int
    length: int

    @property
    def samples(self) -> int:
        if self.layer == 1:
            return 384
        return 1152 if self.layer == 2 or self.version == 3 else 576

    def compatible(self, other: _MpegFrame) -> bool:
        return (self.version, self.layer, self.sample_rate) == (
            other.version,
            other.layer,
            other.sample_rate,
        )


def _mpeg_frame(b: bytes) -> _MpegFrame | None:
    """Decode a 4-byte MPEG audio frame header; None when it is not a valid one."""
    if len(b) < 4 or b[0] != 0xFF or b[1] & 0xE0 != 0xE0:
        return None
    version = (b[1] >> 3) & 0x3
    layer_bits = (b[1] >> 1) & 0x3
    bitrate_index = b[2] >> 4
    rate_index = (b[2] >> 2) & 0x3
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None  # reserved values, or free format (no frame length to check the next one)
    layer = 4 - layer_bits
    bitrate = _BITRATES[(version == 3, layer)][bitrate_index]
    rate = _SAMPLE_RATES[version][rate_index]
    padding = (b[2] >> 1) & 0x1
    channels = 1 if b[3] >> 6 == 3 else 2
    samples = 384 if layer == 1 else (1152 if layer == 2 or version == 3 else 576)
    slot = 4 if layer == 1 else 1
    length = (samples // 8 * bitrate * 1000 // rate // slot + padding) * slot
    return _MpegFrame(version, layer, bitrate, rate, channels, length)


def _id3v2_size(header: bytes) -> int | None:
    """Total size of an ID3v2 tag starting at `header` (None when there is none)."""
    if len(header) < 10 or header[:3] != b"ID3" or any(x & 0x80 for x in header[6:10]):
        return None
    size = (header[6] << 21) | (header[7] << 14) | (header[8] << 7) | header[9]
    footer = 10 if header[5] & 0x10 else 0
    return 10 + size + footer


def _skip_id3_tags(source: _Source, shown: str, extension: str) -> int:
    """Offset of the first byte after the ID3v2 tags at the start of the file (0 if none).

    Tags are skipped by their declared size, not read: cover art costs nothing. Some taggers
    write more than one tag; more than `_MAX_ID3_TAGS` is rejected as `HeaderTooLarge`.
    """
    start = 0
    for _ in range(_MAX_ID3_TAGS):
        block = source.read(start, 10, prefetch=_AFTER_ID3_READ_BYTES)
        if block[:3] != b"ID3":
            return start
        if len(block) < 10:
            raise _truncated(shown, "ID3 tag header")
        tag_size = _id3v2_size(block)
        if tag_size is None:
            raise _not_audio(shown, extension, "its ID3 tag header is malformed", source.head)
        start += tag_size
        if start >= source.size:
            raise _truncated(shown, "ID3 tag (no audio after the tag)")
    if source.read(start, 3) == b"ID3":
        raise _header_too_large(shown, f"more than {_MAX_ID3_TAGS} ID3 tags")
    return start


def _sniff_mp3(source: _Source, shown: str) -> AudioInfo:
    head = source.head
    start = _skip_id3_tags(source, shown, ".mp3")
    window = source.read(start, HEADER_READ_BYTES if start == 0 else _AFTER_ID3_READ_BYTES)
    window_ends_file = start + len(window) >= source.size
    saw_sync_at_end = False
    for pos in range(max(len(window) - 3, 0)):
        if window[pos] != 0xFF:
            continue
        frame = _mpeg_frame(window[pos : pos + 4])
        if frame is None:
            continue
        next_pos = pos + frame.length
        if start + next_pos >= source.size:
            if start + next_pos == source.size:
                return _mp3_info(frame, window[pos:], source.size - start - pos)
            saw_sync_at_end = True
            continue
        # One valid-looking header is easy to hit by chance; the next frame must follow at
        # exactly the offset this one's length gives (two more when the audio does not
        # start right away, where junk before it makes a false match likelier).
        if _frames_follow(window, pos, frame, 1 if pos == 0 else 2):
            return _mp3_info(frame, window[pos:], source.size - start - pos)
    if saw_sync_at_end and window_ends_file and len(window) < _MP3_MAX_FRAME * 2:
        raise _truncated(shown, "first MPEG audio frame")
    if not window:
        raise _truncated(shown, "MP3 header")
    raise _not_audio(
        shown, ".mp3", "no MPEG audio frames were found at its start", head[:16] or window[:16]
    )


def _frames_follow(window: bytes, pos: int, frame: _MpegFrame, count: int) -> bool:
    for _ in range(count):
        pos += frame.length
        following = _mpeg_frame(window[pos : pos + 4])
        if following is None or not frame.compatible(following):
            return False
        frame = following
    return True


def _mp3_info(frame: _MpegFrame, data: bytes, audio_bytes: int) -> AudioInfo:
    """AudioInfo for the first frame, with the duration from Xing/Info/VBRI or the bitrate."""
    frames = _vbr_frame_count(frame, data)
    if frames:
        duration: float = frames * frame.samples / frame.sample_rate
    else:
        duration = audio_bytes * 8 / (frame.bitrate_kbps * 1000)  # CBR estimate
    return AudioInfo(
        format="mp3",
        codec={1: "mp1", 2: "mp2", 3: "mp3"}[frame.layer],
        channels=frame.channels,
        sample_rate=frame.sample_rate,
        duration_s=duration,
        bits_per_sample=None,
    )


def _vbr_frame_count(frame: _MpegFrame, data: bytes) -> int | None:
    """Frame count from a Xing/Info or VBRI header inside the first frame, if present."""
    if frame.version == 3:
        side_info = 17 if frame.channels == 1 else 32
    else:
        side_info = 9 if frame.channels == 1 else 17
    xing = 4 + side_info
    if data[xing : xing + 4] in (b"Xing", b"Info") and len(data) >= xing + 12:
        (flags,) = struct.unpack(">I", data[xing + 4 : xing + 8])
        if flags & 0x1:
            (count,) = struct.unpack(">I", data[xing + 8 : xing + 12])
            return int(count) or None
    vbri = 4 + 32
    if data[vbri : vbri + 4] == b"VBRI" and len(data) >= vbri + 18:
        (count,) = struct.unpack(">I", data[vbri + 14 : vbri + 18])
        return int(count) or None
    return None


# --------------------------------------------------------------------------- FLAC


def _sniff_flac(source: _Source, shown: str) -> AudioInfo:
    head = source.head
    start = _skip_id3_tags(source, shown, ".flac")  # tolerated before fLaC by some taggers
    block = source.read(start, 42)
    if block[:4] != b"fLaC":
        if len(block) < 4 and b"fLaC".startswith(block):
            raise _truncated(shown, "FLAC header")
        raise _not_audio(shown, ".flac", "it does not start with the 'fLaC' marker", head)
    if len(block) < 42:
        raise _truncated(shown, "FLAC STREAMINFO block")
    if block[4] & 0x7F != 0:
        raise _not_audio(shown, ".flac", "its first metadata block is not STREAMINFO")
    return _flac_streaminfo(block[8:42], "flac")


def _flac_streaminfo(info: bytes, container: str) -> AudioInfo:
    """Decode the 34-byte FLAC STREAMINFO block."""
    packed = int.from_bytes(info[10:18], "big")
    rate = packed >> 44
    channels = ((packed >> 41) & 0x7) + 1
    bits = ((packed >> 36) & 0x1F) + 1
    total_samples = packed & 0xFFFFFFFFF
    return AudioInfo(
        format=container,
        codec="flac",
        channels=channels,
        sample_rate=rate,
        duration_s=total_samples / rate if total_samples and rate else None,
        bits_per_sample=bits,
    )


# --------------------------------------------------------------------------- Ogg


def _sniff_ogg(source: _Source, shown: str) -> AudioInfo:
    head = source.head
    extension = ".ogg"
    if head[:4] != b"OggS":
        if len(head) < 4 and b"OggS".startswith(head):
            raise _truncated(shown, "Ogg page header")
        raise _not_audio(shown, extension, "it does not start with an Ogg page ('OggS')", head)
    if len(head) < 27:
        raise _truncated(shown, "first Ogg page header")
    segments = head[26]
    table_end = 27 + segments
    if len(head) < table_end:
        raise _truncated(shown, "first Ogg page header")
    packet_length = 0
    for lacing in head[27:table_end]:
        packet_length += lacing
        if lacing < 255:
            break
    packet = head[table_end : table_end + packet_length]
    if len(packet) < packet_length:
        raise _truncated(shown, "first Ogg packet (codec header)")
    if packet[:8] == b"OpusHead":
        if len(packet) < 19:
            raise _truncated(shown, "Opus header")
        channels = packet[9]
        (input_rate,) = struct.unpack("<I", packet[12:16])
        # Opus always decodes at 48 kHz; the header keeps the original rate for information.
        return AudioInfo("ogg", "opus", channels, input_rate or 48000, None, None)
    if packet[:7] == b"\x01vorbis":
        if len(packet) < 16:
            raise _truncated(shown, "Vorbis identification header")
        channels = packet[11]
        (rate,) = struct.unpack("<I", packet[12:16])
        return AudioInfo("ogg", "vorbis", channels, rate, None, None)
    if packet[:5] == b"\x7fFLAC" and packet[9:13] == b"fLaC":
        if len(packet) < 51:
            raise _truncated(shown, "Ogg FLAC header")
        return _flac_streaminfo(packet[17:51], "ogg")
    codec = packet[:8].decode("ascii", "replace").strip("\x00\x01\x7f ") or "unknown"
    raise InputRejectedError(
        "UnsupportedCodec",
        f"{shown!r} is an Ogg file holding {codec!r} data, not Opus, Vorbis or FLAC audio. "
        "Convert it to Opus, WAV or MP3 and upload it again.",
    )
