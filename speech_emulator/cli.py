"""Command line: ``python -m speech_emulator --host 127.0.0.1 --port 5050 [options]``."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import socket
import sys
from collections.abc import Sequence

import uvicorn

from shared.rate_window import Rate
from speech_emulator.app import build_app
from speech_emulator.config import DEFAULT_KEY, STORAGE_ACCESS_MODES, Behaviour, Settings
from speech_emulator.core import Emulator
from speech_emulator.engines.registry import ENGINE_NAMES, EngineUnavailableError
from speech_emulator.speech_models import load_custom_model


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


def _rate_limit(text: str) -> Rate:
    try:
        return Rate.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def parser() -> argparse.ArgumentParser:
    """The option parser (also documents every option in --help)."""
    p = argparse.ArgumentParser(
        prog="python -m speech_emulator",
        description="Local stand-in for the Azure AI Speech batch transcription REST API.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    p.add_argument("--port", type=int, default=5050, help="port; 0 picks a free one")
    p.add_argument("--key", default=DEFAULT_KEY, help="expected Ocp-Apim-Subscription-Key")
    p.add_argument("--accept-bearer", action="store_true", help="accept any Bearer token too")
    p.add_argument("--engine", choices=ENGINE_NAMES, default="sphinx", help="recognition engine")
    p.add_argument(
        "--custom-model",
        action="append",
        default=[],
        metavar="NAME=phrases.txt",
        help="serve a custom model built from a phrase list (repeatable)",
    )
    p.add_argument(
        "--start-delay",
        type=_non_negative,
        default=1.0,
        metavar="S",
        help="seconds a job stays NotStarted (default 1)",
    )
    p.add_argument(
        "--processing-factor",
        type=_non_negative,
        default=0.1,
        metavar="F",
        help="a file's time in its slot = F x its audio duration (default 0.1)",
    )
    p.add_argument(
        "--processing-time",
        type=_non_negative,
        default=None,
        metavar="S",
        help="fixed time per file in its slot, in seconds (overrides the factor)",
    )
    p.add_argument(
        "--concurrent-files",
        type=int,
        default=100,
        metavar="N",
        help="files the resource transcribes at once, shared by all jobs FIFO (default 100)",
    )
    p.add_argument("--instant", action="store_true", help="no start delay and no processing time")
    p.add_argument(
        "--rate-limit",
        type=_rate_limit,
        default=None,
        metavar="N/S",
        help="at most N Speech calls per S seconds, else 429 (the real tier: 100/10)",
    )
    p.add_argument(
        "--error-rate",
        type=_share,
        default=0.0,
        metavar="SHARE",
        help="share of Speech calls answered 500/503",
    )
    p.add_argument(
        "--fail-share",
        type=_share,
        default=0.0,
        metavar="SHARE",
        help="share of jobs that end Failed with --fail-code",
    )
    p.add_argument(
        "--fail-code", default="InternalServerError", help="error code of injected job failures"
    )
    p.add_argument(
        "--file-fail-share",
        type=_share,
        default=0.0,
        metavar="SHARE",
        help="share of input files that fail (listed Failed in the job's report)",
    )
    p.add_argument(
        "--file-fail-code",
        default="InternalServerError",
        help="errorKind of injected file failures",
    )
    p.add_argument(
        "--vanish-share",
        type=_share,
        default=0.0,
        metavar="SHARE",
        help="share of jobs that disappear (404) before completing",
    )
    p.add_argument(
        "--latency",
        type=_non_negative,
        default=0.0,
        metavar="S",
        help="seconds added to every Speech answer",
    )
    p.add_argument(
        "--sas-lifetime-minutes",
        type=int,
        default=720,
        metavar="M",
        help="default lifetime of files' contentUrl (default 720)",
    )
    p.add_argument(
        "--storage-access",
        choices=STORAGE_ACCESS_MODES,
        default="sas",
        help="read Blob storage by the URL (sas) or with the resource's managed identity "
        "(identity: plain URLs only; that account refuses SAS)",
    )
    p.add_argument(
        "--storage-connection-string",
        default=None,
        metavar="CONN",
        help="the account the resource's identity may read (stands in for its role)",
    )
    p.add_argument(
        "--byos",
        default=None,
        metavar="CONN",
        help="bring your own storage: write results to this account, contentUrls without SAS",
    )
    p.add_argument("--workers", type=int, default=2, help="recognition worker threads")
    p.add_argument(
        "--public-url",
        default=None,
        help="base URL for self/contentUrl links (default: the listen URL)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for the fault dice")
    p.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    return p


def settings_from_args(argv: Sequence[str] | None = None) -> Settings:
    """Parse the command line into `Settings` (exits with a message on bad input)."""
    p = parser()
    args = p.parse_args(argv)
    try:
        models = tuple(load_custom_model(spec) for spec in args.custom_model)
    except ValueError as exc:
        p.error(str(exc))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        p.error("--custom-model names must be unique")
    if args.workers < 1:
        p.error("--workers must be at least 1")
    if args.sas_lifetime_minutes < 1:
        p.error("--sas-lifetime-minutes must be at least 1")
    if args.concurrent_files < 1:
        p.error("--concurrent-files must be at least 1")
    behaviour = Behaviour(
        start_delay=0.0 if args.instant else args.start_delay,
        processing_factor=0.0 if args.instant else args.processing_factor,
        processing_time=0.0 if args.instant else args.processing_time,
        concurrent_files=args.concurrent_files,
        rate_limit=args.rate_limit,
        error_rate=args.error_rate,
        fail_share=args.fail_share,
        fail_code=args.fail_code,
        file_fail_share=args.file_fail_share,
        file_fail_code=args.file_fail_code,
        vanish_share=args.vanish_share,
        latency=args.latency,
        sas_lifetime_minutes=args.sas_lifetime_minutes,
    )
    return Settings(
        host=args.host,
        port=args.port,
        key=args.key,
        accept_bearer=args.accept_bearer,
        engine=args.engine,
        custom_models=models,
        workers=args.workers,
        public_url=args.public_url,
        seed=args.seed,
        log_level=args.log_level,
        storage_access=args.storage_access,
        storage_connection_string=args.storage_connection_string,
        byos_connection_string=args.byos,
        behaviour=behaviour,
    )


class _AnnouncingServer(uvicorn.Server):
    """Prints the listen URL once the app has started, so launchers can wait for it."""

    def __init__(self, config: uvicorn.Config, emu: Emulator) -> None:
        super().__init__(config)
        self._emu = emu

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.should_exit:
            return
        emu = self._emu
        print(f"Speech emulator listening on http://{emu.settings.host}:{emu.settings.port}")
        links = emu.links("2024-11-15")
        for model in emu.catalog.custom.values():
            print(f"Custom model {model.name}: {links.model(model.id)}")
        sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until interrupted."""
    settings = settings_from_args(argv)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # proto says TCP, and with Nagle on every small answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        print(
            f"error: cannot listen on {settings.host}:{settings.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 2
    port = sock.getsockname()[1]
    settings = dataclasses.replace(settings, port=port)
    try:
        emu = Emulator(settings)
    except (EngineUnavailableError, ValueError) as exc:  # ValueError: unusable custom model
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        build_app(emu),
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
    )
    server = _AnnouncingServer(config, emu)
    server.run(sockets=[sock])
    return 0
