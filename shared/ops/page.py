"""The status page: one self-contained HTML document (``GET /api/status``).

Pure: data in (the `stats` answer, the jobs in flight, the recent failures), HTML out. It
works offline and without a build step: styles and the one small script are inline, the
charts are inline SVG (`shared.ops.charts`). Every value that comes from a recording
(its name above all: user input) goes through `html.escape`; the script and style carry a
per-response nonce that the Content-Security-Policy header requires, so even a markup
injection could not run a script. The retry button posts to the API with the same function
key the page was opened with (its ``code`` query parameter).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any, Final

from shared.ops.charts import bar_chart, line_chart

__all__ = ["content_security_policy", "render_status_page"]

_STYLE: Final = """
:root { font-family: system-ui, sans-serif; color: #1b1b1b; background: #fafafa; }
body { max-width: 1200px; margin: 0 auto; padding: 1rem 1.5rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; }
.muted { color: #555; }
dl.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr));
  gap: .5rem; margin: 1rem 0; }
dl.summary div { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .5rem; }
dl.summary dt { font-size: .8rem; color: #555; }
dl.summary dd { margin: 0; font-size: 1.4rem; font-weight: 600; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1rem; }
figure { margin: 0; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .5rem; }
figcaption { font-weight: 600; margin-bottom: .3rem; }
svg { width: 100%; height: auto; }
.axis { stroke: #888; } .tick { font-size: 11px; fill: #555; }
.done { fill: #2e7d32; } .failed { fill: #c62828; } .rejected { fill: #ef6c00; }
polyline.p50 { stroke: #1565c0; stroke-width: 2; } circle.p50 { fill: #1565c0; }
polyline.p95 { stroke: #6a1b9a; stroke-width: 2; stroke-dasharray: 4 3; }
circle.p95 { fill: #6a1b9a; }
.legend span { margin-right: 1rem; font-size: .85rem; }
.swatch { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem;
  vertical-align: middle; }
.swatch.done { background: #2e7d32; } .swatch.failed { background: #c62828; }
.swatch.rejected { background: #ef6c00; } .swatch.p50 { background: #1565c0; }
.swatch.p95 { background: #6a1b9a; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: .9rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.name { word-break: break-all; max-width: 24rem; }
td.num { text-align: right; }
button { font: inherit; padding: .2rem .7rem; cursor: pointer; }
button:focus-visible { outline: 3px solid #1565c0; outline-offset: 2px; }
#retry-status { min-height: 1.5rem; font-weight: 600; }
#reasons { margin-top: 1.5rem; }
"""

# Posts to jobs/<key>/retry next to this page (/api/status -> /api/jobs/...), forwarding
# the function key the page was opened with; shows the API's answer in a live region.
_SCRIPT: Final = """
const code = new URLSearchParams(location.search).get("code");
const status = document.getElementById("retry-status");
for (const button of document.querySelectorAll("button[data-retry]")) {
  button.addEventListener("click", async () => {
    const key = button.dataset.retry;
    button.disabled = true;
    status.textContent = "Retrying " + button.dataset.name + " ...";
    let url = "jobs/" + encodeURIComponent(key) + "/retry";
    if (code) url += "?code=" + encodeURIComponent(code);
    try {
      const response = await fetch(url, { method: "POST" });
      const body = await response.json();
      if (response.ok) {
        status.textContent = button.dataset.name + ": " + body.message;
        button.textContent = "Retried";
      } else {
        status.textContent = button.dataset.name + ": " + body.error.message + " " +
          body.error.whatToDo;
        button.disabled = false;
      }
    } catch (error) {
      status.textContent = "The retry request failed: " + error;
      button.disabled = false;
    }
  });
}
"""


def content_security_policy(nonce: str) -> str:
    """Only this response's own script and style run; requests go to this app only."""
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
    )


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _short_time(iso: str | None) -> str:
    if not iso:
        return ""
    return iso.replace("T", " ").removesuffix("Z")[:19] + " UTC"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _summary(stats: Mapping[str, Any]) -> str:
    counts = stats["counts"]
    per_recording = stats["speechRequestsPerRecording"]
    items = [
        ("summary-done", "Done", counts["done"]),
        ("summary-failed", "Failed", counts["failed"]),
        ("summary-rejected", "Rejected", counts["rejected"]),
        ("summary-in-flight", "In flight now", stats["inFlight"]),
        ("summary-p50", "Turnaround p50", _seconds(stats["turnaroundP50Seconds"])),
        ("summary-p95", "Turnaround p95", _seconds(stats["turnaroundP95Seconds"])),
        ("summary-audio", "Audio transcribed", f"{stats['audioHoursTranscribed']:.2f} h"),
        (
            "summary-requests",
            "Speech requests / recording",
            "–" if per_recording is None else f"{per_recording:.1f}",
        ),
    ]
    cells = "".join(
        f'<div><dt id="{i}-label">{_e(label)}</dt>'
        f'<dd id="{i}" aria-labelledby="{i}-label">{_e(value)}</dd></div>'
        for i, label, value in items
    )
    return f'<dl class="summary">{cells}</dl>'


def _charts(stats: Mapping[str, Any]) -> str:
    hours = stats["perHour"]
    labels = [h["hour"][11:13] + ":00" for h in hours]
    throughput = bar_chart(
        "chart-throughput",
        f"Recordings finished per hour, last {stats['hours']} h",
        labels,
        [
            ("done", "done", [h["done"] for h in hours]),
            ("failed", "failed", [h["failed"] for h in hours]),
            ("rejected", "rejected", [h["rejected"] for h in hours]),
        ],
    )
    turnaround = line_chart(
        "chart-turnaround",
        f"Turnaround (upload to transcripts) per hour, last {stats['hours']} h",
        labels,
        [
            ("p50", "p50", [h["turnaroundP50Seconds"] for h in hours]),
            ("p95", "p95", [h["turnaroundP95Seconds"] for h in hours]),
        ],
        " s",
    )
    return (
        '<div class="charts">'
        "<figure><figcaption>Throughput (UTC hours)</figcaption>"
        f"{throughput}"
        '<p class="legend"><span><i aria-hidden="true" class="swatch done"></i>done</span>'
        '<span><i aria-hidden="true" class="swatch failed"></i>failed</span>'
        '<span><i aria-hidden="true" class="swatch rejected"></i>rejected</span></p></figure>'
        "<figure><figcaption>Turnaround (UTC hours)</figcaption>"
        f"{turnaround}"
        '<p class="legend"><span><i aria-hidden="true" class="swatch p50"></i>p50</span>'
        '<span><i aria-hidden="true" class="swatch p95"></i>p95</span></p></figure>'
        "</div>"
    )


def _in_flight_table(jobs: Sequence[Mapping[str, Any]]) -> str:
    if not jobs:
        return '<p id="in-flight-empty">Nothing is in flight.</p>'
    rows = "".join(
        f'<tr data-key="{_e(j["key"])}"><td class="name">{_e(j["recording"])}</td>'
        f'<td>{_e(j["state"])}</td><td class="num">{_e(j["attempts"])}</td>'
        f"<td>{_e(_short_time(j['created']))}</td><td>{_e(j['reasonCode'] or '')}</td></tr>"
        for j in jobs
    )
    return (
        '<table id="in-flight"><caption>Jobs in flight</caption><thead><tr>'
        '<th scope="col">Recording</th><th scope="col">State</th>'
        '<th scope="col">Attempts</th><th scope="col">Received</th>'
        '<th scope="col">Last problem</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _failure_row(job: Mapping[str, Any]) -> str:
    action = ""
    if job["state"] == "failed":
        action = (
            f'<button type="button" data-retry="{_e(job["key"])}" '
            f'data-name="{_e(job["recording"])}" '
            f'aria-label="Retry {_e(job["recording"])}">Retry</button>'
        )
    return (
        f'<tr data-key="{_e(job["key"])}"><td class="name">{_e(job["recording"])}</td>'
        f"<td>{_e(job['state'])}</td><td>{_e(job['reasonCode'])}</td>"
        f"<td>{_e(job['reasonMessage'])}</td><td>{_e(job.get('advice'))}</td>"
        f"<td>{_e(_short_time(job['finished']))}</td><td>{action}</td></tr>"
    )


def _failures_table(jobs: Sequence[Mapping[str, Any]], hours: int) -> str:
    if not jobs:
        return f'<p id="failures-empty">No failures in the last {hours} h.</p>'
    return (
        f'<table id="failures"><caption>Failed and rejected recordings, last {hours} h'
        "</caption><thead><tr>"
        '<th scope="col">Recording</th><th scope="col">Outcome</th>'
        '<th scope="col">Reason</th><th scope="col">What happened</th>'
        '<th scope="col">What to do</th><th scope="col">Finished</th>'
        '<th scope="col">Action</th></tr></thead>'
        f"<tbody>{''.join(_failure_row(j) for j in jobs)}</tbody></table>"
    )


def _reasons_table(reasons: Sequence[Mapping[str, Any]]) -> str:
    if not reasons:
        return ""
    rows = "".join(
        f'<tr><td>{_e(r["reasonCode"])}</td><td class="num">{_e(r["count"])}</td>'
        f"<td>{_e(r['advice'])}</td></tr>"
        for r in reasons
    )
    return (
        '<table id="reasons"><caption>Top failure reasons</caption><thead><tr>'
        '<th scope="col">Reason</th><th scope="col">Recordings</th>'
        '<th scope="col">What to do</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def render_status_page(
    *,
    stats: Mapping[str, Any],
    in_flight: Sequence[Mapping[str, Any]],
    failures: Sequence[Mapping[str, Any]],
    now: datetime,
    nonce: str,
) -> str:
    """The whole page."""
    hours = int(stats["hours"])
    return (
        "<!DOCTYPE html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Transcription status</title>"
        f'<style nonce="{_e(nonce)}">{_STYLE}</style></head><body>'
        "<header><h1>Transcription status</h1>"
        f'<p class="muted">Last {hours} hours, generated {_e(_short_time(now.isoformat()[:19]))}'
        " — reload the page for fresh numbers.</p></header><main>"
        '<section aria-labelledby="summary-heading"><h2 id="summary-heading">Summary</h2>'
        f"{_summary(stats)}</section>"
        '<section aria-labelledby="charts-heading"><h2 id="charts-heading">Throughput and '
        f"turnaround</h2>{_charts(stats)}</section>"
        '<section aria-labelledby="in-flight-heading"><h2 id="in-flight-heading">In flight'
        f"</h2>{_in_flight_table(in_flight)}</section>"
        '<section aria-labelledby="failures-heading"><h2 id="failures-heading">Failures</h2>'
        '<p id="retry-status" role="status" aria-live="polite"></p>'
        f"{_failures_table(failures, hours)}{_reasons_table(stats['topFailureReasons'])}"
        "</section></main>"
        f'<script nonce="{_e(nonce)}">{_SCRIPT}</script></body></html>'
    )
