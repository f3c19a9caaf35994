"""Probes run at once, each against its deadline: a hung dependency cannot stall the doctor."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from shared.doctor.context import DoctorContext
from shared.doctor.report import Check, Status
from shared.doctor.runner import Probe, run_probes

CTX = DoctorContext(env={})


def test_checks_come_back_in_probe_order() -> None:
    second_done = threading.Event()

    def first(ctx: DoctorContext) -> Iterator[Check]:
        second_done.wait(5)  # finishes after the second: order is still the probes'
        yield Check.ok("first", "done")

    def second(ctx: DoctorContext) -> Iterator[Check]:
        yield Check.ok("second.a", "done")
        yield Check.ok("second.b", "done")
        second_done.set()

    report = run_probes(CTX, [Probe("first", first), Probe("second", second)])
    assert [c.name for c in report.checks] == ["first", "second.a", "second.b"]
    assert report.ok


def test_a_hung_probe_keeps_its_findings_and_fails_in_time() -> None:
    release = threading.Event()

    def hangs(ctx: DoctorContext) -> Iterator[Check]:
        yield Check.ok("speech.endpoint", "answers")
        release.wait(30)  # a dependency that never answers
        yield Check.ok("speech.auth", "too late")

    def quick(ctx: DoctorContext) -> Iterator[Check]:
        yield Check.ok("storage.connection", "fine")

    start = time.monotonic()
    try:
        report = run_probes(
            CTX,
            [
                Probe("speech", hangs, timeout=0.5, setting="SPEECH_ENDPOINT", fix="look at it"),
                Probe("storage", quick, timeout=0.5),
            ],
        )
    finally:
        release.set()
    assert time.monotonic() - start < 2.0
    assert [(c.name, c.status) for c in report.checks] == [
        ("speech.endpoint", Status.OK),
        ("speech.timeout", Status.FAIL),
        ("storage.connection", Status.OK),
    ]
    timeout = report.checks[1]
    assert (timeout.setting, timeout.fix) == ("SPEECH_ENDPOINT", "look at it")
    assert "0.5 s" in timeout.message
    assert not report.ok


def test_a_probe_that_raises_is_a_failure_not_a_crash() -> None:
    def broken(ctx: DoctorContext) -> Iterator[Check]:
        yield Check.ok("x.first", "fine")
        raise RuntimeError("boom")

    report = run_probes(CTX, [Probe("x", broken, setting="X")])
    assert [(c.name, c.status) for c in report.checks] == [
        ("x.first", Status.OK),
        ("x.error", Status.FAIL),
    ]
    assert "RuntimeError: boom" in report.checks[1].message
