"""Synthetic call recordings for the benchmark: small stereo WAVs and a script per channel.

Each recording is a few seconds of 8 kHz, 16-bit stereo: tone bursts ("speech") on the
agent's channel, then on the customer's, varied by index so no two files are identical.
The scripted Speech engine reads the phrases to return from the blob's ``transcript``
metadata (a JSON list of phrase lists, one per channel).
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile

RATE = 8000
WAV_HEADER_BYTES = 44


@dataclass(frozen=True)
class Recording:
    """One synthetic call: its blob name, WAV bytes and blob metadata."""

    name: str
    data: bytes
    metadata: dict[str, str]


def _bursts(rng: np.random.Generator, total: int, freq: float, starts: list[float]) -> np.ndarray:
    t = np.arange(total) / RATE
    out = np.zeros(total, dtype=np.float32)
    for start in starts:
        length = rng.uniform(0.4, 0.9)
        mask = (t >= start) & (t < start + length)
        out[mask] = 0.4 * np.sin(2 * np.pi * freq * t[mask])
    out += rng.normal(0.0, 0.01, total).astype(np.float32)  # a little line noise
    return out


def synthetic_call(index: int, seconds: float = 3.0) -> Recording:
    """Recording `index`: deterministic, a little different from every other one."""
    rng = np.random.default_rng(index)
    total = round(seconds * RATE)
    agent = _bursts(rng, total, 300.0 + index % 200, [0.1, 1.6])
    customer = _bursts(rng, total, 500.0 + index % 300, [0.8])
    buffer = io.BytesIO()
    frames = np.stack([agent, customer], axis=1)
    soundfile.write(buffer, frames, RATE, format="WAV", subtype="PCM_16")
    script = [
        [f"thank you for calling this is call {index}", "how can I help"],
        [f"hello I have a question about order {index * 7 % 10_000}"],
    ]
    return Recording(
        name=f"bench/call-{index:05d}.wav",
        data=buffer.getvalue(),
        metadata={"transcript": json.dumps(script)},
    )


def wav_header(data_bytes: int, channels: int = 2, rate: int = RATE, bits: int = 16) -> bytes:
    """A canonical 44-byte PCM WAV header announcing `data_bytes` bytes of samples."""
    block = channels * bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def silent_wav_chunks(total_bytes: int, chunk: int = 4 << 20) -> Iterator[bytes]:
    """A WAV of `total_bytes` (header + silence) as chunks: never all in memory at once."""
    data_bytes = total_bytes - WAV_HEADER_BYTES
    data_bytes -= data_bytes % 4  # whole stereo 16-bit frames
    yield wav_header(data_bytes)
    zeros = bytes(chunk)
    remaining = data_bytes
    while remaining > 0:
        step = min(chunk, remaining)
        yield zeros if step == chunk else bytes(step)
        remaining -= step
