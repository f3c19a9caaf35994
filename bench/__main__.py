"""`python -m bench --files N`: benchmark the pipeline (see bench/pipeline_bench.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.pipeline_bench import MODES, BenchConfig, run


def _modes(value: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in value.split(",") if m.strip())
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of {', '.join(MODES)}; got {value!r}"
        )
    return modes


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {number}")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {value}")
    return number


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the real pipeline (Azurite, the Speech emulator's scripted engine, "
        "the app through devhost) on N synthetic recordings; print one JSON line per mode "
        "(polling, then web hook). Progress goes to stderr.",
    )
    parser.add_argument("--files", type=_positive, default=100, help="recordings (default 100)")
    parser.add_argument(
        "--processing-time", type=float, default=20.0, help="emulator seconds per job (20)"
    )
    parser.add_argument(
        "--rate-limit", default="100/10", help="emulator rate limit N/S (the real tier: 100/10)"
    )
    parser.add_argument(
        "--poll-schedule", default="*/10 * * * * *", help="POLL_SCHEDULE of the polling run"
    )
    parser.add_argument(
        "--webhook-poll-schedule",
        default="0 * * * * *",
        help="POLL_SCHEDULE of the web hook run (polling is only the safety net there)",
    )
    parser.add_argument(
        "--poll-min-interval", type=float, default=5.0, help="POLL_MIN_INTERVAL_SECONDS (5)"
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds per run (default: 180 + 1.2 s/file)"
    )
    parser.add_argument(
        "--modes", type=_modes, default=MODES, help="poll,webhook (default: both, in order)"
    )
    parser.add_argument(
        "--upload-rate",
        type=_positive_float,
        default=None,
        metavar="FILES_PER_S",
        help="upload at this steady rate instead of all at once",
    )
    parser.add_argument(
        "--blob-scan-interval",
        type=_positive_float,
        default=1.0,
        help="devhost's container scan interval in s (1); each scan lists every blob",
    )
    parser.add_argument(
        "--batch-max-files",
        type=_positive,
        default=None,
        help="the app's BATCH_MAX_FILES (default: the app's default; 1 = one job per file)",
    )
    parser.add_argument(
        "--batch-window",
        type=_positive_float,
        default=None,
        help="the app's BATCH_WINDOW_SECONDS (default: the app's default)",
    )
    parser.add_argument(
        "--webhook-path", default="/api/speech-webhook", help="the app's web hook route"
    )
    parser.add_argument(
        "--out-dir", type=Path, default=Path(".bench"), help="run logs and results (.bench)"
    )
    parser.add_argument(
        "--memory-check",
        action="store_true",
        help="instead: submit a 100 KB and a ~1 GB recording and report the app's peak RSS",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or the memory check) and return the exit status."""
    args = parse_args(argv)
    out_dir = args.out_dir.resolve()
    if args.memory_check:
        from bench.memory import MemoryConfig, run_memory_check  # noqa: PLC0415

        return run_memory_check(MemoryConfig(out_dir=out_dir))
    config = BenchConfig(
        files=args.files,
        processing_time_s=args.processing_time,
        rate_limit=args.rate_limit,
        poll_schedule=args.poll_schedule,
        webhook_poll_schedule=args.webhook_poll_schedule,
        poll_min_interval_s=args.poll_min_interval,
        timeout_s=args.timeout,
        webhook_path=args.webhook_path,
        upload_rate=args.upload_rate,
        blob_scan_interval_s=args.blob_scan_interval,
        batch_max_files=args.batch_max_files,
        batch_window_s=args.batch_window,
        modes=args.modes,
        out_dir=out_dir,
    )
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
