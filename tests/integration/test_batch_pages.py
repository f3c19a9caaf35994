"""A full batch of 100 recordings costs one page of results, not two pages of files.

The service lists at most 100 files per page, and a job of 100 recordings has 101 files:
100 results and its report. The completion lists the results only, and the report only when
a recording has no result, so a batch that went well costs one files request.
"""

from __future__ import annotations

import pytest

from tests.integration.harness import (
    Clock,
    Pipeline,
    delta,
    mono_call,
    requests_by_route,
    submit_all,
)
from tests.integration.test_batching import (  # noqa: F401  (fixtures used by name)
    clock,
    instant_retries,
    one_outcome_each,
    rt,
    settle,
)

pytestmark = pytest.mark.integration

PIPELINE_ENV = {"BATCH_MAX_FILES": "100", "BATCH_WINDOW_SECONDS": "0.5"}
FILES_ROUTE = "GET /speechtotext/transcriptions/{id}/files"
SUBMIT_ROUTE = "POST /speechtotext/transcriptions:submit"


def test_a_full_batch_reads_its_results_in_one_page(
    pipeline: Pipeline,
    clock: Clock,  # noqa: F811  (the fixture imported above)
) -> None:
    names = [f"full/{i:03}.wav" for i in range(100)]
    blobs = [pipeline.upload(name, mono_call(), [[f"call {i}"]]) for i, name in enumerate(names)]
    pipeline.configure(rate_limit="1/600")  # a single POST is refused: all are queued
    try:
        pipeline.api.get("/transcriptions")  # the one request the limit allows
        submit_all(pipeline, blobs)
    finally:
        pipeline.configure(rate_limit=None)
    assert {r["State"] for r in pipeline.records()} == {"queued"}
    before = requests_by_route(pipeline.stats())
    settle(pipeline, clock, names)
    made = delta(before, requests_by_route(pipeline.stats()))
    assert set(one_outcome_each(pipeline, names).values()) == {"done"}
    assert made[SUBMIT_ROUTE] == 1  # one job for the hundred
    assert made[FILES_ROUTE] == 1  # 100 results on one page; the report was not needed
