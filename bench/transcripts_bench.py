"""Benchmark: all transcript products of a long stereo call.

Generates a service-shaped result for a 4-hour stereo call (about 10,000 phrases with
word timings and display words), times ``render_products`` and prints one JSON line:

    python -m bench.transcripts_bench [--hours 4] [--phrases 10000] [--repeat 3]

The issue's target: under 2 s for all products. Peak memory is the extra memory the
rendering allocates (tracemalloc), next to the size of the result as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import tracemalloc
from typing import Any

from shared.transcripts import OUTPUT_FORMATS, TranscriptMetadata, render_products

_SENTENCES = (
    "thank you for calling contoso how can i help you today",
    "my internet connection keeps dropping every evening",
    "let me check your account details please could you confirm your date of birth",
    "sure it is the fourth of july café naïve über déjà vu",
)
_VOCABULARY = [word for sentence in _SENTENCES for word in sentence.split()]


def _iso(ticks: int) -> str:
    return f"PT{ticks / 10_000_000:.2f}S"


def long_call_result(
    hours: float = 4.0, phrases: int = 10_000, *, display_words: bool = False, seed: int = 7
) -> dict[str, Any]:
    """A service-shaped stereo result: ``phrases`` phrases spread over ``hours`` hours.

    Every phrase has word timings (``words``); ``display_words`` adds ``displayWords`` too.
    As the service does, only the top ``nBest`` entry carries the words.
    """
    rng = random.Random(seed)
    total_ticks = int(hours * 3600 * 10_000_000)
    slot = total_ticks // phrases
    recognized: list[dict[str, Any]] = []
    for index in range(phrases):
        channel = index % 2
        offset = index * slot + rng.randrange(0, slot // 4)
        words: list[dict[str, Any]] = []
        display: list[dict[str, Any]] = []
        cursor = offset
        for _ in range(rng.randrange(6, 18)):
            word = rng.choice(_VOCABULARY)
            length = rng.randrange(1_500_000, 5_000_000)
            timing = {
                "offset": _iso(cursor),
                "duration": _iso(length),
                "offsetInTicks": float(cursor),
                "durationInTicks": float(length),
            }
            words.append({"word": word, **timing, "confidence": round(rng.random(), 4)})
            display.append({"displayText": word.capitalize(), **timing})
            cursor += length + 500_000
        lexical = " ".join(w["word"] for w in words)
        display_text = lexical.capitalize() + "."
        duration = cursor - offset
        best = {
            "confidence": round(rng.random(), 4),
            "lexical": lexical,
            "itn": lexical,
            "maskedITN": lexical,
            "display": display_text,
            "words": words,
        }
        if display_words:
            best["displayWords"] = display
        recognized.append(
            {
                "recognitionStatus": "Success",
                "channel": channel,
                "offset": _iso(offset),
                "duration": _iso(duration),
                "offsetInTicks": float(offset),
                "durationInTicks": float(duration),
                "nBest": [
                    best,
                    {"confidence": 0.1, "lexical": lexical, "itn": lexical, "display": lexical},
                ],
            }
        )
    return {
        "source": "https://example.blob.core.windows.net/input/long-call.wav",
        "timestamp": "2026-01-01T00:00:00Z",
        "durationInTicks": total_ticks,
        "durationMilliseconds": total_ticks // 10_000,
        "duration": _iso(total_ticks),
        "combinedRecognizedPhrases": [
            {"channel": c, "lexical": "…", "itn": "…", "maskedITN": "…", "display": "…"}
            for c in (0, 1)
        ],
        "recognizedPhrases": recognized,
    }


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--phrases", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--display-words", action="store_true", help="also give every phrase displayWords"
    )
    args = parser.parse_args()

    result = long_call_result(args.hours, args.phrases, display_words=args.display_words)
    result_bytes = len(json.dumps(result, ensure_ascii=False).encode("utf-8"))
    meta = TranscriptMetadata(
        source_name="long-call.wav",
        job_id="bench",
        model=None,
        locale="en-US",
        channel_count=2,
        created=None,
        finished=None,
    )
    timings: list[float] = []
    products: dict[str, bytes] = {}
    for _ in range(args.repeat):
        started = time.perf_counter()
        products = render_products(
            result,
            meta,
            channel_labels=("Agent", "Customer"),
            formats=OUTPUT_FORMATS,
            channels=[0, 1],
        )
        timings.append(time.perf_counter() - started)

    tracemalloc.start()
    render_products(
        result, meta, channel_labels=("Agent", "Customer"), formats=OUTPUT_FORMATS, channels=[0, 1]
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(
        json.dumps(
            {
                "bench": "transcripts",
                "hours": args.hours,
                "phrases": args.phrases,
                "display_words": args.display_words,
                "words": sum(len(p["nBest"][0]["words"]) for p in result["recognizedPhrases"]),
                "result_json_mb": round(result_bytes / 1e6, 2),
                "render_products_s": {
                    "min": round(min(timings), 3),
                    "max": round(max(timings), 3),
                    "runs": len(timings),
                },
                "peak_alloc_mb": round(peak / 1e6, 1),
                "products_mb": {name: round(len(data) / 1e6, 2) for name, data in products.items()},
                "target_s": 2.0,
                "ok": max(timings) < 2.0,
            }
        )
    )


if __name__ == "__main__":
    main()
