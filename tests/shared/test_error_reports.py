"""Error reports: what, why, what to do, which job; never a secret."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import shared
from shared import jobs
from shared.audio_header import ALLOWED_EXTENSIONS
from shared.error_reports import _ADVICE, advice_for, build_error_report
from shared.service_failures import PERMANENT_CODES, TRANSIENT_CODES, is_transient_failure

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def record() -> jobs.JobRecord:
    base = jobs.new_job(
        container="audio-input",
        name="calls/ü #1.wav",
        etag='"0x1"',
        size=10,
        now=T0,
        timeout=timedelta(hours=1),
        lease=timedelta(minutes=1),
    )
    return dataclasses.replace(
        base,
        attempts=2,
        transcription_id="abc",
        transcription_url="https://speech/speechtotext/transcriptions/abc?sig=SECRET",
        service_status="Failed",
    )


def test_report_names_job_blob_reason_and_advice() -> None:
    data = build_error_report(
        record(),
        outcome="failed",
        reason_code="InvalidAudioFormat",
        message="cannot decode",
        now=T0,
        service_error_code="InvalidAudioFormat",
    )
    report = json.loads(data)
    assert report["outcome"] == "failed"
    assert report["reasonCode"] == report["serviceErrorCode"] == "InvalidAudioFormat"
    assert report["message"] == "cannot decode"
    assert "PCM WAV" in report["whatToDo"]
    assert report["input"] == {
        "container": "audio-input",
        "name": "calls/ü #1.wav",
        "etag": '"0x1"',
        "size": 10,
    }
    assert report["jobKey"] == record().key
    assert report["attempts"] == 2
    assert report["created"] == T0.isoformat()
    assert "ü" in data.decode("utf-8")


def test_report_never_carries_a_query_string() -> None:
    data = build_error_report(
        record(), outcome="failed", reason_code="TimedOut", message="late", now=T0
    )
    assert b"SECRET" not in data
    assert b"sig=" not in data
    assert json.loads(data)["transcriptionUrl"].endswith("/transcriptions/abc")


def test_unknown_codes_get_generic_advice() -> None:
    assert "upload it again" in advice_for("SomethingNew")
    assert advice_for("EmptyFile") != advice_for("SomethingNew")


def test_transient_service_failures() -> None:
    assert is_transient_failure("InternalServerError")
    assert is_transient_failure("ServiceUnavailable")
    assert not is_transient_failure("InvalidAudioFormat")
    assert not is_transient_failure("SomethingNew")  # unknown: report, do not loop
    assert not is_transient_failure(None)
    assert not is_transient_failure("")


# --------------------------------------------------------------------------- advice coverage
#
# The reason codes are read from the code under shared/, not listed here: a new raise site
# or report call with a code that has no advice fails these tests.

SHARED_DIR = Path(shared.__file__).parent
# Where a reason code enters an error report: InputRejectedError's first argument, and the
# `reason_code` of the functions that write reports. Helpers that pass one of their own
# parameters on to one of these (redrive's `_give_up(code=...)`) are found by the scan.
REPORT_SINKS = {
    "InputRejectedError": "reason_code",
    "reject_job": "reason_code",
    "fail_job": "reason_code",
    "write_error_report": "reason_code",
    "build_error_report": "reason_code",
}
# The only expressions a reported code may come from when it is not text in the code: a
# rejection passed on (its code is found at its raise site) or a code the Speech service
# sent (see test_every_service_failure_code_has_specific_advice). A new kind of source must
# be added here on purpose, with advice for what it can hold.
# outcome.error_kind: the errorKind a multi-file job's report gives one file (batch_complete).
DYNAMIC_SOURCES = {"exc.reason_code", "exc.detail_code", "record.error_code", "outcome.error_kind"}

Function = ast.FunctionDef | ast.AsyncFunctionDef


def _parameters(function: Function) -> list[str]:
    args = function.args
    return [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    return call.func.attr if isinstance(call.func, ast.Attribute) else None


@dataclasses.dataclass
class ReasonCodes:
    """What the scan found: codes written as text, and expressions it could not read."""

    literal: set[str] = dataclasses.field(default_factory=set)
    dynamic: set[str] = dataclasses.field(default_factory=set)


def scan_reason_codes() -> ReasonCodes:
    """Every reason code that shared/ can put into an error report, found in its syntax tree."""
    trees = [ast.parse(p.read_text("utf-8"), str(p)) for p in sorted(SHARED_DIR.glob("*.py"))]
    constants = {
        target.id: node.value.value
        for tree in trees
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    functions = [n for tree in trees for n in ast.walk(tree) if isinstance(n, Function)]
    enclosing: dict[ast.AST, Function] = {}
    for function in functions:  # outer functions come first: inner ones overwrite them
        for node in ast.walk(function):
            enclosing[node] = function
    calls = [n for tree in trees for n in ast.walk(tree) if isinstance(n, ast.Call)]
    sinks = dict(REPORT_SINKS)
    positions = {f.name: _parameters(f) for f in functions}
    positions["InputRejectedError"] = ["reason_code", "message"]

    def code_argument(call: ast.Call) -> ast.expr | None:
        name = _callee(call)
        assert name is not None
        keyword = sinks[name]
        for given in call.keywords:
            if given.arg == keyword:
                return given.value
        order = positions.get(name, [])
        index = order.index(keyword) if keyword in order else len(call.args)
        return call.args[index] if index < len(call.args) else None

    changed = True
    while changed:  # a function forwarding its parameter to a sink is a sink too
        changed = False
        for call in calls:
            caller = enclosing.get(call)
            if caller is None or caller.name in sinks or _callee(call) not in sinks:
                continue
            argument = code_argument(call)
            if isinstance(argument, ast.Name) and argument.id in _parameters(caller):
                sinks[caller.name] = argument.id
                changed = True

    found = ReasonCodes()

    def resolve(expr: ast.expr, function: Function | None) -> None:
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            found.literal.add(expr.value)
        elif isinstance(expr, ast.BoolOp):  # exc.detail_code or "SubmitRejected"
            for value in expr.values:
                resolve(value, function)
        elif isinstance(expr, ast.IfExp):
            resolve(expr.body, function)
            resolve(expr.orelse, function)
        elif (
            isinstance(expr, ast.Name)
            and function is not None
            and sinks.get(function.name) == expr.id
        ):
            pass  # forwarded: the callers' arguments are scanned
        elif (
            isinstance(expr, ast.Name)
            and function is not None
            and (
                assigned := [
                    node.value
                    for node in ast.walk(function)
                    if isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == expr.id for t in node.targets)
                ]
            )
        ):
            for value in assigned:
                resolve(value, function)
        elif isinstance(expr, ast.Name) and expr.id in constants:
            found.literal.add(constants[expr.id])
        else:
            found.dynamic.add(ast.unparse(expr))

    for call in calls:
        if _callee(call) in sinks:
            argument = code_argument(call)
            if argument is None:
                found.dynamic.add(f"<no reason code: line {call.lineno}>")
            else:
                resolve(argument, enclosing.get(call))
    return found


GENERIC = advice_for(f"NoSuchCode{uuid.uuid4().hex}")


def test_the_scan_sees_through_helpers_constants_and_fallbacks() -> None:
    # The scan itself must work for the advice tests to mean anything: codes raised by a
    # helper (_truncated), named by a constant passed through a forwarding helper
    # (SUBMIT_FAILED_CODE via _give_up) and a local variable's fallback ("SubmitRejected").
    codes = scan_reason_codes().literal
    assert {
        "EmptyFile",
        "TruncatedHeader",
        "HeaderTooLarge",
        "UnsupportedChannels",
        "UnsupportedCodec",
        "TimedOut",
        "CompletionFailed",
        "SubmitFailed",
        "SubmitRejected",
    } <= codes


def test_reported_codes_come_only_from_known_sources() -> None:
    assert scan_reason_codes().dynamic <= DYNAMIC_SOURCES


def test_every_reason_code_the_app_reports_has_specific_advice() -> None:
    codes = scan_reason_codes().literal
    assert sorted(code for code in codes if advice_for(code) == GENERIC) == []


def test_every_service_failure_code_has_specific_advice() -> None:
    codes = PERMANENT_CODES | TRANSIENT_CODES
    assert sorted(code for code in codes if advice_for(code) == GENERIC) == []
    assert "later" in advice_for("ServiceUnavailable")


def test_advice_is_only_for_codes_that_can_be_reported() -> None:
    reportable = scan_reason_codes().literal | PERMANENT_CODES | TRANSIENT_CODES
    assert sorted(set(_ADVICE) - reportable) == []


def test_advice_names_every_accepted_format() -> None:
    advice = advice_for("UnsupportedExtension")
    assert [ext for ext in ALLOWED_EXTENSIONS if ext not in advice] == []
    for code in ("NotAudio", "UnsupportedExtension"):
        assert {"WAV", "MP3", "FLAC", "Ogg", "Opus"} <= set(re.findall(r"\w+", advice_for(code)))
