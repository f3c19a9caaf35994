"""DevHost: runs an indexed Functions app's triggers in-process (a local tool only).

Use `start()`/`stop()` to run it in the background, or drive it deterministically (tests,
benchmarks) with `scan_blobs()`, `poll_queues()` and `fire_timer()`, which run one cycle
and wait for the invocations it started.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any, TypeVar

import azure.functions as func

from devhost.blob_trigger import HOSTS_CONTAINER, BlobPath, BlobTriggerListener, scan_pause
from devhost.connections import DEFAULT_CONNECTION, blob_service, queue_service
from devhost.host_config import HostConfig, load_host_config
from devhost.http_server import HttpServer
from devhost.indexing import FunctionSpec, index_app, load_functions
from devhost.invoker import Invoker, Outcome
from devhost.leases import ListenerLock
from devhost.ncrontab import NCronSchedule, ScheduleError
from devhost.queue_trigger import MIN_POLLING_INTERVAL, QueueTriggerListener, next_poll_delay
from devhost.queue_watcher import SharedQueueWatcher
from devhost.setting_refs import BindingConfigError, resolve_setting_refs
from devhost.timer_status import TimerStatusStore, should_monitor
from devhost.timer_trigger import Clock, TimerTriggerListener, utc_now

log = logging.getLogger("devhost")

T = TypeVar("T")
SUPPORTED_TRIGGERS = ("blobTrigger", "queueTrigger", "timerTrigger", "httpTrigger")


def default_host_id(settings: Mapping[str, str]) -> str:
    """The host id used in receipt paths: the setting if given, else from the machine name."""
    configured = settings.get("AzureFunctionsWebHost__hostid")
    if configured:
        return configured
    name = re.sub(r"[^a-z0-9-]", "", socket.gethostname().lower()) or "localhost"
    return name[:32].strip("-") or "localhost"


def _results(futures: Sequence[Future[T]]) -> list[T]:
    wait(futures)
    return [f.result() for f in futures if not f.cancelled()]


class DevHost:
    """Runs the functions of one app with the Functions host's trigger semantics."""

    def __init__(
        self,
        functions: Sequence[FunctionSpec],
        *,
        root: Path,
        host_config: HostConfig | None = None,
        settings: Mapping[str, str] | None = None,
        http_port: int = 7071,
        blob_scan_interval: float = 2.0,
        queue_lease_seconds: float = 60.0,
        host_id: str | None = None,
        clock: Clock = utc_now,
        instance: str = "0",
    ) -> None:
        self.root = root
        self.settings: Mapping[str, str] = os.environ if settings is None else settings
        self.config = host_config or load_host_config(root / "host.json")
        self.functions = list(functions)
        self.host_id = host_id or default_host_id(self.settings)
        # Which of several instances sharing this host id and storage account this is.
        self.instance = instance
        self.blob_scan_interval = blob_scan_interval
        self.blobs: dict[str, BlobTriggerListener] = {}
        self.queues: dict[str, QueueTriggerListener] = {}
        self.timers: dict[str, TimerTriggerListener] = {}
        self._http: list[Invoker] = []
        self._http_port = http_port
        self._http_server: HttpServer | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._queue_lease = queue_lease_seconds
        self._clock = clock
        # Queue outputs of this host wake its listeners of the same queue at once.
        self.watcher = SharedQueueWatcher()
        for spec in self.functions:
            self._add(spec)

    @classmethod
    def from_app(cls, app: func.FunctionApp | str, *, root: Path, **options: Any) -> DevHost:
        """Index `app` (a FunctionApp, or a module/file name under `root`) and build a host."""
        specs = index_app(app) if isinstance(app, func.FunctionApp) else load_functions(app, root)
        return cls(specs, root=root, **options)

    # --- indexing ---------------------------------------------------------------------------

    def _resolve(self, spec: FunctionSpec, prop: str) -> str:
        return resolve_setting_refs(
            str(spec.trigger[prop]), self.settings, function=spec.name, prop=prop
        )

    def _add(self, spec: FunctionSpec) -> None:
        kind = spec.trigger_type
        if kind not in SUPPORTED_TRIGGERS:
            raise BindingConfigError(
                f"Function '{spec.name}': devhost does not run '{kind}' triggers (it runs "
                f"{', '.join(SUPPORTED_TRIGGERS)}). Use `func start` for this app."
            )
        invoker = Invoker(
            spec, settings=self.settings, host=self.config, root=self.root, watcher=self.watcher
        )
        trigger = spec.trigger
        connection = str(trigger.get("connection") or DEFAULT_CONNECTION)
        if kind == "blobTrigger":
            listener = BlobTriggerListener(
                invoker,
                path=BlobPath.parse(self._resolve(spec, "path"), function=spec.name),
                connection=connection,
                service=blob_service(connection, self.settings, function=spec.name),
                host_service=blob_service(DEFAULT_CONNECTION, self.settings, function=spec.name),
                host_queues=queue_service(DEFAULT_CONNECTION, self.settings, function=spec.name),
                host_id=self.host_id,
                options=self.config.blobs,
            )
            if str(trigger.get("source", "")).lower() == "eventgrid":
                log.warning(
                    "Function '%s' uses the EventGrid blob trigger source. Azurite sends no "
                    "Event Grid events, so devhost scans the container instead (as "
                    "LogsAndContainerScan). On Azure it needs an Event Grid subscription and "
                    "does not see blobs that existed before it.",
                    spec.name,
                )
                listener.source_label = "EventGrid, scanned by devhost"
            self.blobs[spec.name] = listener
        elif kind == "queueTrigger":
            name = self._resolve(spec, "queueName").lower()
            service = queue_service(connection, self.settings, function=spec.name)
            self.queues[spec.name] = QueueTriggerListener(
                invoker,
                queue=service.get_queue_client(name),
                poison=service.get_queue_client(f"{name}-poison"),
                options=self.config.queues,
                lease_seconds=self._queue_lease,
            )
        elif kind == "timerTrigger":
            expression = self._resolve(spec, "schedule")
            try:
                schedule = NCronSchedule.parse(expression)
            except ScheduleError as exc:
                raise BindingConfigError(f"Function '{spec.name}': {exc}") from exc
            self.timers[spec.name] = TimerTriggerListener(
                invoker,
                schedule=schedule,
                run_on_startup=bool(trigger.get("runOnStartup")),
                clock=self._clock,
                status=self._timer_status(spec, schedule),
                lock=self._listener_lock(spec),
            )
        else:
            self._http.append(invoker)

    def _listener_lock(self, spec: FunctionSpec) -> ListenerLock | None:
        """The singleton lock of a timer (in AzureWebJobsStorage, as the host keeps it)."""
        try:
            hosts = blob_service(DEFAULT_CONNECTION, self.settings, function=spec.name)
        except BindingConfigError:
            log.info(
                "Timer '%s' runs without a singleton lock: %s is not set (one instance only).",
                spec.name,
                DEFAULT_CONNECTION,
            )
            return None
        return ListenerLock(
            hosts.get_container_client(HOSTS_CONTAINER),
            self.host_id,
            spec.name,
            instance=self.instance,
        )

    def _timer_status(self, spec: FunctionSpec, schedule: NCronSchedule) -> TimerStatusStore | None:
        use_monitor = spec.trigger.get("useMonitor")
        if not should_monitor(schedule, use_monitor, self._clock()):
            return None
        try:
            hosts = blob_service(DEFAULT_CONNECTION, self.settings, function=spec.name)
        except BindingConfigError:
            log.info(
                "Schedule monitoring of '%s' is off: %s is not set.", spec.name, DEFAULT_CONNECTION
            )
            return None
        return TimerStatusStore(
            hosts.get_container_client(HOSTS_CONTAINER), self.host_id, spec.name
        )

    # --- deterministic, one-cycle API ------------------------------------------------------

    def scan_blobs(self, function: str | None = None) -> list[Outcome]:
        """Scan each blob-triggered function's container once and wait for the invocations."""
        futures: list[Future[Outcome | None]] = []
        for name, listener in self.blobs.items():
            if function is None or name == function:
                futures.extend(listener.scan())
        return [o for o in _results(futures) if o is not None]

    def poll_queues(self, function: str | None = None) -> list[Outcome]:
        """Fetch one batch per queue-triggered function and wait for it to be processed."""
        futures: list[Future[Outcome | None]] = []
        for name, listener in self.queues.items():
            if function is None or name == function:
                listener.prepare()
                futures.extend(listener.poll_once())
        return [o for o in _results(futures) if o is not None]

    def fire_timer(self, function: str) -> Outcome | None:
        """Run the timer function if its next occurrence is due (per the host's clock)."""
        return self.timers[function].run_pending()

    @property
    def http_port(self) -> int:
        """The port HTTP triggers are served on (the real one after `start()`)."""
        return self._http_server.port if self._http_server else self._http_port

    # --- background running ----------------------------------------------------------------

    def banner(self) -> str:
        """The function list printed at start, like `func start` prints it."""
        lines = ["", "Functions:", ""]
        for spec in self.functions:
            trigger = spec.trigger
            if spec.trigger_type == "httpTrigger":
                methods = ",".join(trigger.get("methods") or ["GET", "POST"])
                route = trigger.get("route") or spec.name
                prefix = (
                    f"/{self.config.http_route_prefix}" if self.config.http_route_prefix else ""
                )
                url = f"http://localhost:{self.http_port}{prefix}/{route}"
                lines.append(f"        {spec.name}: [{methods}] {url}")
            else:
                detail = ""
                if spec.name in self.blobs:
                    path = self.blobs[spec.name].path
                    detail = f" ({path.container}/{path.pattern})"
                elif spec.name in self.queues:
                    detail = f" ({self.queues[spec.name].queue.queue_name})"
                elif spec.name in self.timers:
                    detail = f" ({self.timers[spec.name].schedule.expression}, UTC)"
                lines.append(f"        {spec.name}: {spec.trigger_type}{detail}")
            lines.append("")
        return "\n".join(lines)

    def start(self) -> None:
        """Start every trigger in the background (HTTP server, scanners, pollers, timers).

        A host runs once: after `stop()`, build a new one (from the same indexed functions).
        """
        if self._stop.is_set():
            raise RuntimeError("this DevHost was stopped; build a new one to run again")
        if self._http:
            for invoker in self._http:
                level = invoker.spec.trigger.get("authLevel", "FUNCTION")
                if str(level).upper() != "ANONYMOUS":
                    log.info(
                        "Function '%s' has authLevel %s; devhost does not check keys locally.",
                        invoker.spec.name,
                        level,
                    )
            self._http_server = HttpServer(
                self._http, port=self._http_port, prefix=self.config.http_route_prefix
            )
            self._http_server.start()
        for listener in self.blobs.values():
            self._spawn(f"scan-{listener.name}", self._blob_loop, listener)
        for queue in self.queues.values():
            self._spawn(f"poll-{queue.name}", self._queue_loop, queue)
        for timer in self.timers.values():
            upcoming = [timer.next_due]
            for _ in range(2):
                upcoming.append(timer.schedule.next_after(upcoming[-1]))
            log.info(
                "The next %d occurrences of the '%s' schedule (Cron: '%s') will be: %s (UTC)",
                len(upcoming),
                timer.name,
                timer.schedule.expression,
                ", ".join(moment.strftime("%Y-%m-%d %H:%M:%S") for moment in upcoming),
            )
            self._spawn(f"timer-{timer.name}", timer.run, self._stop)
        log.info("%s", self.banner())
        log.info("Host started (devhost, host id %s, instance %s).", self.host_id, self.instance)

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _guarded(self, what: str, action: Callable[[], T]) -> T | None:
        # A storage outage must not kill the loop: log and try again next cycle.
        try:
            return action()
        except Exception:
            log.exception("%s failed; retrying", what)
            return None

    def _blob_loop(self, listener: BlobTriggerListener) -> None:
        # A scan lists every blob of the container, which costs seconds of this process's
        # CPU once it holds thousands. So, like the host's polling strategy, scanning backs
        # off: no scan while the blobs found earlier still wait for a worker (what it found
        # would queue behind them), and the pause grows with what the listing took
        # (`scan_pause`), most after a scan that found nothing new.
        while not self._stop.is_set():
            pause = self.blob_scan_interval
            if listener.scan_due():
                started = time.monotonic()
                found = self._guarded(f"Scanning for blobs of {listener.name}", listener.scan)
                took = time.monotonic() - started
                pause = scan_pause(self.blob_scan_interval, took, found=bool(found))
            self._stop.wait(pause)

    def _queue_loop(self, listener: QueueTriggerListener) -> None:
        self._guarded(f"Creating the queue of {listener.name}", listener.prepare)
        delay = MIN_POLLING_INTERVAL
        threshold = self.config.queues.refill_threshold
        wake = self.watcher.register(listener.queue.queue_name)
        while not self._stop.is_set():
            wake.clear()  # this poll sees whatever an output wrote before it
            started = self._guarded(f"Polling the queue of {listener.name}", listener.poll_once)
            found = bool(started)
            delay = next_poll_delay(delay, found, self.config.queues.max_polling_interval)
            listener.next_poll_at = time.monotonic() + delay
            # Wait for the delay, renewing leases; while busy, refill below the threshold.
            # A queue output of this host ends the wait (with capacity free) and resets the
            # back-off, as the host's SharedQueueWatcher does.
            waited = 0.0
            while not self._stop.is_set() and (waited < delay or listener.running > threshold):
                if wake.is_set() and listener.running <= threshold:
                    delay = MIN_POLLING_INTERVAL
                    break
                self._guarded("Renewing message leases", listener.renew_leases)
                if self._stop.wait(0.05):
                    break
                waited += 0.05

    def stop(self, *, wait: bool = True) -> None:
        """Stop every trigger; with `wait`, let running invocations finish.

        Without waiting, unfinished queue messages become visible again when their lease
        ends and unfinished blobs are picked up again on the next start (no receipt).
        """
        self._stop.set()
        if self._http_server is not None:
            self._http_server.stop()
            self._http_server = None
        for thread in self._threads:
            thread.join(30 if wait else 1)
        self._threads.clear()
        for blob in self.blobs.values():
            blob.shutdown(wait)
        for queue in self.queues.values():
            queue.shutdown(wait)
        log.info("Host stopped.")
