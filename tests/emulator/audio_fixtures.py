"""Synthetic recordings for emulator tests: tone bursts separated by silence."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import soundfile

RATE = 16000


def bursts(
    spans: Sequence[tuple[float, float]], total_s: float, freq: float = 440.0
) -> npt.NDArray[np.float32]:
    """A mono signal that is a tone during each (start_s, end_s) span and silent elsewhere."""
    t = np.arange(round(total_s * RATE)) / RATE
    out = np.zeros_like(t)
    for start, end in spans:
        mask = (t >= start) & (t < end)
        out[mask] = 0.5 * np.sin(2 * np.pi * freq * t[mask])
    return out.astype(np.float32)


def encode(channels: Sequence[npt.NDArray[np.float32]], fmt: str = "WAV") -> bytes:
    """Encode one or more equal-length channels as WAV/FLAC/MP3 bytes."""
    data = np.stack(channels, axis=1) if len(channels) > 1 else channels[0]
    buffer = io.BytesIO()
    soundfile.write(buffer, data, RATE, format=fmt)
    return buffer.getvalue()
