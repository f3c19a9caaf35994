"""Decode recordings (WAV, FLAC, MP3, OGG, ... anything libsndfile reads) into samples."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import soundfile


class UndecodableAudioError(ValueError):
    """The bytes are not audio that libsndfile can read."""


def decode(data: bytes) -> tuple[npt.NDArray[np.float32], int]:
    """Decode a whole file: (float32 samples shaped ``[frames, channels]``, sample rate).

    Raises UndecodableAudioError when the bytes are not a supported audio format.
    """
    if not data:
        raise UndecodableAudioError("the file is empty")
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = getattr(exc, "error_string", None) or str(exc)
        raise UndecodableAudioError(f"not a supported audio format ({reason})") from exc
    return np.ascontiguousarray(samples, dtype=np.float32), int(rate)
