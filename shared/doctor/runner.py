"""Run the doctor's probes at once, each against its own deadline, and collect the checks.

A `Probe` is a generator of `Check`s over a `DoctorContext`: it yields each finding as soon
as it has it. Every probe runs in a daemon thread of its own; the runner waits until all
are done or each one's `timeout` has passed. A probe still running then (a dependency that
accepts connections and never answers, a credential chain that hangs) keeps the checks it
had yielded and gets one FAIL saying it did not answer in time and what to look at; its
thread is abandoned, not joined (it ends on its own clients' timeouts), so the doctor
answers in time whatever a dependency does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.doctor.report import Check, Report

if TYPE_CHECKING:
    from shared.doctor.context import DoctorContext

__all__ = ["Probe", "run_probes"]


@dataclass(frozen=True)
class Probe:
    """A group of checks: `run` yields them; `timeout` bounds it.

    When it does not finish in time, the FAIL is named `name`, blames `setting` and suggests
    `fix` (what to look at when this dependency does not answer).
    """

    name: str
    run: Callable[[DoctorContext], Iterator[Check]]
    timeout: float = 20.0
    setting: str = ""
    fix: str = ""


@dataclass
class _Outcome:
    checks: list[Check] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


def run_probes(
    ctx: DoctorContext, probes: Sequence[Probe], *, clock: Callable[[], float] = time.monotonic
) -> Report:
    """Run `probes` concurrently; a `Report` of their checks, in probe order."""
    start = clock()
    outcomes = [_Outcome() for _ in probes]
    for probe, outcome in zip(probes, outcomes, strict=True):
        thread = threading.Thread(
            target=_run_one, args=(ctx, probe, outcome), name=f"doctor-{probe.name}", daemon=True
        )
        thread.start()
    checks: list[Check] = []
    for probe, outcome in zip(probes, outcomes, strict=True):
        finished = outcome.done.wait(max(0.0, start + probe.timeout - clock()))
        with outcome.lock:
            checks.extend(outcome.checks)
            if not finished:
                outcome.checks.clear()  # late findings are not reported twice
                checks.append(
                    Check.fail(
                        f"{probe.name}.timeout",
                        f"no answer within {probe.timeout:g} s",
                        setting=probe.setting,
                        fix=probe.fix,
                    )
                )
    return Report(checks, elapsed_s=clock() - start, secrets=ctx.secrets())


def _run_one(ctx: DoctorContext, probe: Probe, outcome: _Outcome) -> None:
    try:
        for check in probe.run(ctx):
            with outcome.lock:
                outcome.checks.append(check)
    except Exception as exc:  # noqa: BLE001 - a broken probe is a finding, not a crash
        with outcome.lock:
            outcome.checks.append(
                Check.fail(
                    f"{probe.name}.error",
                    f"the check itself failed: {type(exc).__name__}: {exc}",
                    setting=probe.setting,
                )
            )
    finally:
        outcome.done.set()
