"""The `sphinx` engine: real offline recognition with pocketsphinx, one channel at a time.

How a channel is recognised:
1. the samples are resampled to 16 kHz (the rate of pocketsphinx's US-English acoustic
   model) and converted to 16-bit PCM with a little deterministic dither;
2. pocketsphinx's voice-activity endpointer splits them into speech chunks, so that a
   long recording is decoded as many short utterances, never as one giant one;
3. each chunk is decoded as a whole (`full_utt`), its word segmentation gives word times
   (frames, `config["frate"]` per second) and posterior probabilities (the confidences);
4. words are grouped into phrases wherever the pause between two words is long enough.

Models: the base model is the stock US-English language model and dictionary shipped in
the pocketsphinx wheel. A custom model (`CustomModel`, built from a phrase list) is
emulated by a small n-gram language model made from its phrases, with a dictionary
restricted to their words: that is what makes recognition of the phrases near-exact.

Decoding runs in a few worker processes (pocketsphinx holds the GIL while decoding), each
keeping its decoders per model between calls.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pocketsphinx import Decoder, Endpointer, get_model_path
from pocketsphinx.lm import ArpaBoLM

from speech_emulator.engines.base import CustomModel, Phrase, RecognitionRequest, Word

log = logging.getLogger(__name__)

DECODER_RATE = 16_000  # pocketsphinx's US-English acoustic model is wide-band, 16 kHz
DEFAULT_PHRASE_GAP_S = 0.5  # a pause at least this long between two words starts a new phrase
_SOFT_MAX_PHRASE_S = 10.0  # past this, a phrase also ends at a short pause ...
_SHORT_PAUSE_S = 0.15
_MAX_PHRASE_S = 20.0  # ... and it never gets longer than this

# Settings for custom-model decoders. A small domain LM can afford wider beams (the search
# space is tiny) and a higher language weight; pl_window=0 turns off phone-loop lookahead,
# which prunes too eagerly on short utterances. Measured on espeak-ng voices: ~98-99% word
# accuracy with these against ~90% with the defaults. Discount mass: how much probability
# the LM keeps for unseen word sequences (ArpaBoLM's default is 0.5).
_CUSTOM_DECODER_CONFIG: dict[str, Any] = {
    "lw": 10.0,
    "pl_window": 0,
    "beam": 1e-60,
    "wbeam": 1e-50,
}
_CUSTOM_LM_DISCOUNT_MASS = 0.1

# Voice-activity endpointing for chunking: a chunk ends after `window` seconds in which
# `ratio` of the frames are non-speech. Chunks longer than _MAX_CHUNK_S (speech with no
# pause, or steady noise the VAD takes for speech) are cut at their quietest point.
_VAD_WINDOW_S = 0.3
_VAD_RATIO = 0.9
_MAX_CHUNK_S = 30.0

# Dither: digital silence (exact zeros, as in synthetic or gated audio) gives the feature
# extractor log(0) energies and makes the decoder insert and drop words. Seeded, so the
# same audio always gives the same result.
_DITHER_LSB = 2.0
_PAD_S = 0.1  # silence added around each chunk before decoding (see decode_chunk)
_DITHER_SEED = 0

_ALTERNATE_SUFFIX = re.compile(r"\(\d+\)$")  # "read(2)": second pronunciation of "read"
_WORD_CHARS = re.compile(r"[^\w']+")  # what separates words in phrase text
_PARENT_POLL_S = 0.5  # how often a worker process checks that the emulator still runs
_BASE_KEY = "\0base"  # pool key of the base model (never a model id)

PcmArray = npt.NDArray[np.int16]
FloatArray = npt.NDArray[np.float32]


class SphinxEngine:
    """Recognition with pocketsphinx; see the module docstring. Safe to call from threads."""

    name = "sphinx"

    def __init__(
        self,
        custom_models: Mapping[str, CustomModel],
        *,
        phrase_gap_s: float = DEFAULT_PHRASE_GAP_S,
        processes: int | None = None,
    ) -> None:
        """Check the custom models' phrases now (decoders and processes start on first use).

        `processes`: how many worker processes decode (default: one per CPU, at most 4);
        0 decodes in the calling thread. Worker processes matter because pocketsphinx holds
        the GIL while it decodes: in-thread, decoding would stall every other thread of the
        emulator (its HTTP server included) and never use more than one core.

        Raises ValueError when a custom model has no phrase with a word the pronunciation
        dictionary knows: such a model could never recognise anything.
        """
        for model in custom_models.values():
            custom_vocabulary(model)  # raises on an unusable phrase list
        self._phrase_gap_s = phrase_gap_s
        self._processes = min(os.cpu_count() or 1, 4) if processes is None else processes
        if self._processes < 0:
            raise ValueError(f"processes must be 0 or more, got {self._processes}")
        self._decoders = DecoderPool()  # used when processes == 0
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def recognize(self, request: RecognitionRequest) -> list[Phrase]:
        """Recognise one channel; return its phrases in time order ([] for silence).

        The locale is not checked: there is only a US-English acoustic model.
        """
        args = (request.samples, request.sample_rate, request.model, self._phrase_gap_s)
        if self._processes == 0:
            return self._decoders.recognize(*args)
        executor = self._executor_started()
        try:
            return executor.submit(_recognize_in_worker, *args).result()
        except BrokenProcessPool as exc:
            # A worker died (killed, out of memory, a crash in pocketsphinx): start afresh
            # for the next call and fail only this one.
            with self._lock:
                if self._executor is executor:
                    self._executor = None
            raise RuntimeError(f"a pocketsphinx worker process died: {exc}") from exc

    def warm_up(self, model: CustomModel | None = None) -> None:
        """Start the workers and build a decoder for `model` (None = base) before any job."""
        silence = np.zeros(DECODER_RATE // 10, dtype=np.float32)
        self.recognize(
            RecognitionRequest(
                samples=silence, sample_rate=DECODER_RATE, channel=0, locale="en-US", model=model
            )
        )

    def close(self) -> None:
        """Stop the worker processes (they also stop when the process exits)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _executor_started(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                # spawn, not fork: the emulator has threads, and forking a threaded
                # process can deadlock the child.
                self._executor = ProcessPoolExecutor(
                    max_workers=self._processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_watch_parent,
                    initargs=(os.getpid(),),
                )
            return self._executor


class DecoderPool:
    """Decoders per model, lent to one caller at a time; recognition on the calling thread.

    A pocketsphinx `Decoder` is not thread-safe and takes a moment to build: a call borrows
    an idle decoder for its model (or builds one) and gives it back when done.
    """

    def __init__(self) -> None:
        self._pools: dict[str, list[Decoder]] = {}
        self._lock = threading.Lock()

    def recognize(
        self,
        samples: FloatArray,
        sample_rate: int,
        model: CustomModel | None,
        phrase_gap_s: float,
    ) -> list[Phrase]:
        """The phrases of one channel of audio (any rate), with `model` (None = base)."""
        pcm = to_decoder_pcm(samples, sample_rate)
        words: list[Word] = []
        with self._decoder(model) as decoder:
            frate = int(decoder.config["frate"])
            for start_s, chunk in speech_chunks(pcm):
                words.extend(decode_chunk(decoder, chunk, start_s, frate))
        return group_phrases(words, phrase_gap_s)

    @contextmanager
    def _decoder(self, model: CustomModel | None) -> Iterator[Decoder]:
        key = _BASE_KEY if model is None else model.id
        with self._lock:
            pool = self._pools.setdefault(key, [])
            decoder = pool.pop() if pool else None
        if decoder is None:
            # Built outside the lock: it takes a while, and other calls must not wait.
            decoder = build_decoder(model)
        yield decoder
        # Only given back after a clean decode: one that failed half-way may have left an
        # utterance open, so that decoder is dropped.
        with self._lock:
            pool.append(decoder)


_WORKER_DECODERS = DecoderPool()  # in a worker process: its decoders, kept between calls


def _watch_parent(parent_pid: int) -> None:
    """In a worker process: exit when the emulator is gone.

    An idle worker would otherwise outlive an emulator that was killed (SIGKILL, or SIGTERM
    without a handler), since nothing closes the queue it waits on.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_POLL_S)
        os._exit(0)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _recognize_in_worker(
    samples: FloatArray, sample_rate: int, model: CustomModel | None, phrase_gap_s: float
) -> list[Phrase]:
    return _WORKER_DECODERS.recognize(samples, sample_rate, model, phrase_gap_s)


# -- models ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomVocabulary:
    """A custom model's phrases reduced to what the decoder can use."""

    sentences: tuple[str, ...]  # normalised, words outside the dictionary removed
    pronunciations: tuple[str, ...]  # dictionary lines for every word of the sentences


def build_decoder(model: CustomModel | None) -> Decoder:
    """A new decoder for `model`, or for the stock US-English model when None."""
    if model is None:
        return Decoder(loglevel="FATAL")
    vocabulary = custom_vocabulary(model)
    lm = ArpaBoLM(
        text="\n".join(vocabulary.sentences) + "\n",
        add_start=True,
        discount_mass=_CUSTOM_LM_DISCOUNT_MASS,
    )
    lm.compute()
    # pocketsphinx reads models from files; they are loaded at construction, so the
    # directory can go right after.
    with tempfile.TemporaryDirectory(prefix="sphinx-model-") as tmp:
        lm_path = Path(tmp) / "model.arpa"
        dict_path = Path(tmp) / "model.dict"
        with lm_path.open("w", encoding="utf-8") as lm_file:
            lm.write(lm_file)
        dict_path.write_text("\n".join(vocabulary.pronunciations) + "\n", encoding="utf-8")
        return Decoder(
            loglevel="FATAL", lm=str(lm_path), dict=str(dict_path), **_CUSTOM_DECODER_CONFIG
        )


def custom_vocabulary(model: CustomModel) -> CustomVocabulary:
    """Normalise a custom model's phrases and keep the words the dictionary can pronounce.

    Words without a pronunciation (names, digits, jargon) cannot be recognised by the
    stock acoustic model; they are dropped from the language model with a warning rather
    than failing the whole model. Raises ValueError if no word at all is left.
    """
    return _custom_vocabulary(model.name, model.phrases)


@cache
def _custom_vocabulary(name: str, phrases: tuple[str, ...]) -> CustomVocabulary:
    dictionary = stock_dictionary()
    sentences: list[str] = []
    unknown: set[str] = set()
    for phrase in phrases:
        words = normalise_words(phrase)
        unknown.update(w for w in words if w not in dictionary)
        known = [w for w in words if w in dictionary]
        if known:
            sentences.append(" ".join(known))
    if unknown:
        log.warning(
            "custom model %r: %d word(s) not in the pronunciation dictionary, ignored: %s",
            name,
            len(unknown),
            ", ".join(sorted(unknown)[:20]),
        )
    if not sentences:
        raise ValueError(
            f"custom model {name!r} has no phrase with a word in pocketsphinx's US-English "
            "dictionary, so it could not recognise anything; give it plain English phrases, "
            "one per line, with numbers written as words"
        )
    vocabulary = sorted({w for s in sentences for w in s.split()})
    pronunciations = tuple(line for w in vocabulary for line in dictionary[w])
    return CustomVocabulary(tuple(sentences), pronunciations)


def normalise_words(text: str) -> list[str]:
    """Lower-case words of `text` as the dictionary spells them: punctuation removed."""
    return [w.strip("'") for w in _WORD_CHARS.split(text.lower()) if w.strip("'")]


@cache
def stock_dictionary() -> dict[str, tuple[str, ...]]:
    """The stock pronunciation dictionary: word -> its lines, alternates included."""
    path = Path(get_model_path()) / "en-us" / "cmudict-en-us.dict"
    entries: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            head = line.split(maxsplit=1)[0] if line.strip() else ""
            if head:
                entries.setdefault(_ALTERNATE_SUFFIX.sub("", head), []).append(line.rstrip())
    return {word: tuple(lines) for word, lines in entries.items()}


# -- audio -------------------------------------------------------------------------------


def to_decoder_pcm(samples: FloatArray, sample_rate: int) -> PcmArray:
    """Float samples in [-1, 1] at any rate -> dithered 16-bit PCM at 16 kHz."""
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    if samples.ndim != 1:
        raise ValueError(f"expected one channel of samples (1-D), got shape {samples.shape}")
    # NaN/inf (a broken decoder upstream) would turn into arbitrary integers.
    finite = np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    audio = resample(finite, sample_rate, DECODER_RATE)
    noise = np.random.default_rng(_DITHER_SEED).normal(0.0, _DITHER_LSB, audio.shape[0])
    scaled = audio.astype(np.float64) * 32767.0 + noise
    return np.clip(np.rint(scaled), -32768, 32767).astype(np.int16)


def resample(samples: FloatArray, source_rate: int, target_rate: int) -> FloatArray:
    """Band-limited resampling: a windowed-sinc low-pass, then linear interpolation.

    The low-pass (below the lower Nyquist frequency) runs at the higher of the two rates:
    before interpolation when downsampling (anti-aliasing), after it when upsampling
    (removing images). The remaining interpolation error is far below what changes the
    recogniser's output; it measured as good as sox's resampler on espeak-ng speech.
    """
    if source_rate == target_rate or samples.size == 0:
        return samples
    ratio = target_rate / source_rate
    if ratio < 1:
        samples = _lowpass(samples, 0.45 * ratio)
    out = _interpolate(samples, ratio)
    if ratio > 1:
        out = _lowpass(out, 0.45 / ratio)
    return out


def _interpolate(samples: FloatArray, ratio: float) -> FloatArray:
    """Linear interpolation onto a grid `ratio` times as dense, in blocks to bound memory.

    Done by hand rather than with np.interp, which binary-searches every output position
    and takes seconds on a 10-minute channel.
    """
    count = round(samples.shape[0] * ratio)
    out = np.empty(count, dtype=np.float32)
    padded = np.append(samples, samples[-1:])  # the last position may need samples[n]
    last = samples.shape[0] - 1
    block = 1 << 20
    for first in range(0, count, block):
        positions = np.arange(first, min(first + block, count), dtype=np.float64) / ratio
        index = np.minimum(positions.astype(np.int64), last)
        fraction = (positions - index).astype(np.float32)
        out[first : first + block] = padded[index] + fraction * (padded[index + 1] - padded[index])
    return out


def _lowpass(samples: FloatArray, cutoff: float, taps: int = 63) -> FloatArray:
    """Windowed-sinc FIR low-pass; `cutoff` is a fraction of the sample rate (< 0.5)."""
    n = np.arange(taps) - (taps - 1) / 2
    kernel = np.sinc(2 * cutoff * n) * np.blackman(taps)
    kernel = (kernel / kernel.sum()).astype(np.float32)
    return np.convolve(samples, kernel, mode="same").astype(np.float32)


def speech_chunks(pcm: PcmArray) -> Iterator[tuple[float, bytes]]:
    """Speech chunks of 16 kHz PCM, for decoding one by one: (start in s, PCM bytes).

    (Widening the VAD's spans with some of the surrounding audio was tried: it did not
    improve accuracy.)
    """
    for start, end in speech_spans(pcm):
        yield from _split_long(start, pcm[start:end])


def speech_spans(pcm: PcmArray) -> list[tuple[int, int]]:
    """Sample ranges [start, end) of speech in 16 kHz PCM, by pocketsphinx's VAD endpointer.

    pocketsphinx's own `Segmenter` drops speech still running at the end of the stream
    when its length is a whole number of frames, hence this loop over `Endpointer`.
    """
    endpointer = Endpointer(window=_VAD_WINDOW_S, ratio=_VAD_RATIO, sample_rate=DECODER_RATE)
    frame_bytes = endpointer.frame_bytes
    data = pcm.tobytes()
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for offset in range(0, len(data), frame_bytes):
        frame = data[offset : offset + frame_bytes]
        last = offset + frame_bytes >= len(data)
        if last and endpointer.in_speech:
            speech = endpointer.end_stream(frame)
        elif len(frame) < frame_bytes:
            break  # a partial frame of silence at the very end: nothing to decode
        else:
            speech = endpointer.process(frame)
        if speech is None:
            continue
        if start is None:
            start = round(endpointer.speech_start * DECODER_RATE)
        if not endpointer.in_speech or last:
            end = min(round(endpointer.speech_end * DECODER_RATE), pcm.shape[0])
            spans.append((start, max(end, start)))
            start = None
    return [(a, b) for a, b in spans if b > a]


def _split_long(first: int, chunk: PcmArray) -> Iterator[tuple[float, bytes]]:
    """Cut a chunk longer than _MAX_CHUNK_S at the quietest 10 ms in its second half."""
    limit = round(_MAX_CHUNK_S * DECODER_RATE)
    frame = DECODER_RATE // 100
    while chunk.shape[0] > limit:
        frames = chunk[:limit].astype(np.float32).reshape(-1, frame)
        energy = (frames**2).mean(axis=1)
        half = energy.shape[0] // 2
        cut = (half + int(np.argmin(energy[half:]))) * frame
        yield first / DECODER_RATE, chunk[:cut].tobytes()
        first += cut
        chunk = chunk[cut:]
    if chunk.shape[0]:
        yield first / DECODER_RATE, chunk.tobytes()


# -- decoding ----------------------------------------------------------------------------


def decode_chunk(decoder: Decoder, chunk: bytes, start_s: float, frate: int) -> list[Word]:
    """Decode one speech chunk as a whole utterance; its words, times offset by `start_s`."""
    # Fresh feature state (noise estimate, cepstral mean) for every chunk: otherwise the
    # result would depend on what the decoder heard before, i.e. on which pooled decoder
    # a call happens to get. It costs microseconds.
    decoder.reinit_feat()
    decoder.start_utt()
    # The acoustic model expects an utterance to begin and end in silence; VAD chunks (and
    # recordings) can start right on the first word, which then comes out wrong.
    padding = _silence_padding()
    decoder.process_raw(padding + chunk + padding, full_utt=True)
    decoder.end_utt()
    offset_s = start_s - _PAD_S
    end_s = start_s + len(chunk) / 2 / DECODER_RATE
    words = []
    for seg in decoder.seg():
        text = lexical_word(seg.word)
        if text is None:
            continue
        # end_frame is inclusive; clamp so that nothing lands in the artificial padding.
        word_start = min(max(offset_s + seg.start_frame / frate, start_s), end_s)
        word_end = min(max(offset_s + (seg.end_frame + 1) / frate, start_s), end_s)
        if word_end <= word_start:
            continue
        words.append(
            Word(
                text=text,
                start_s=round(word_start, 3),
                end_s=round(word_end, 3),
                confidence=confidence(seg.prob),
            )
        )
    return words


@cache
def _silence_padding() -> bytes:
    """_PAD_S of dithered silence, as decoder PCM."""
    return to_decoder_pcm(
        np.zeros(round(_PAD_S * DECODER_RATE), np.float32), DECODER_RATE
    ).tobytes()


def lexical_word(token: str) -> str | None:
    """The word of a segment token, or None for silence and fillers.

    Fillers are `<s>`, `</s>`, `<sil>` and noise tokens such as `[NOISE]` or `++UH++`;
    alternate pronunciations carry a suffix (`read(2)`) that is not part of the word.
    """
    if not token or token[0] in "<[+":
        return None
    return _ALTERNATE_SUFFIX.sub("", token)


def confidence(posterior: float) -> float:
    """A word's posterior probability (from the lattice's best path) as a 0..1 confidence.

    pocketsphinx computes it in log space and converts back, so it can exceed 1 by a
    rounding hair (1.0001); clamp it.
    """
    return round(min(max(float(posterior), 0.0), 1.0), 4)


def group_phrases(words: Sequence[Word], gap_s: float) -> list[Phrase]:
    """Group time-ordered words into phrases, as the service segments speech.

    A new phrase starts after a pause of at least `gap_s`; in speech that runs on without
    such pauses, a phrase of _SOFT_MAX_PHRASE_S or more also ends at the next short pause,
    and one never grows past _MAX_PHRASE_S (no phrase of minutes).
    """
    phrases: list[Phrase] = []
    current: list[Word] = []
    for word in words:
        if current:
            # Rounded: times are in milliseconds, and 1.4 - 0.9 must count as a 0.5 s pause.
            pause = round(word.start_s - current[-1].end_s, 3)
            length = word.start_s - current[0].start_s
            if (
                pause >= gap_s
                or (length >= _SOFT_MAX_PHRASE_S and pause >= _SHORT_PAUSE_S)
                or word.end_s - current[0].start_s > _MAX_PHRASE_S
            ):
                phrases.append(_phrase(current))
                current = []
        current.append(word)
    if current:
        phrases.append(_phrase(current))
    return phrases


def _phrase(words: Sequence[Word]) -> Phrase:
    return Phrase(
        start_s=words[0].start_s,
        end_s=words[-1].end_s,
        words=tuple(words),
        confidence=round(sum(w.confidence for w in words) / len(words), 4),
    )
