"""The app-wide Speech quota: the pure budget, and limiters sharing one real Azurite table."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
from azure.data.tables import TableClient, TableServiceClient

from devhost.services import Azurite
from shared.app_rate_limit import (
    PARTITION,
    QuotaBudget,
    TableRateLimiter,
    decode_times,
    encode_times,
    quota_row_key,
)
from shared.rate_limit import CallPurpose, RateLimit
from shared.runtime import Runtime
from shared.settings import Settings
from shared.storage import StorageClients
from tests.shared.test_rate_limit import FakeClock

ENDPOINT = "http://127.0.0.1:9/speech"
STATUS = CallPurpose.STATUS
SUBMISSION = CallPurpose.SUBMISSION


# -- pure -----------------------------------------------------------------------------------


def test_times_round_trip_as_packed_doubles() -> None:
    times = [1_765_000_000.123456, 1_765_000_001.5]
    assert decode_times(encode_times(times)) == times
    assert len(encode_times(times)) == 16
    assert decode_times(b"") == []
    assert decode_times(None) == []
    with pytest.raises(ValueError, match="multiple of 8"):
        decode_times(b"\x00" * 9)


def test_row_key_drops_the_characters_table_keys_refuse() -> None:
    key = quota_row_key("https://speech.example/path?x#y\\z/")
    assert not set("/\\#?") & set(key)
    assert key == "https:__speech.example_path_x_y_z"


def test_budget_counts_calls_in_the_window_plus_the_margin() -> None:
    limit = RateLimit(3, 10.0)
    budget = QuotaBudget()
    for t in (100.0, 101.0, 102.0):
        assert budget.delay(STATUS, t, limit, 0.5) == 0.0
        budget = budget.with_call(STATUS, t, limit, 0.5)
    # Full: the call of t=100 leaves the lengthened window (10.5 s) at t=110.5.
    assert budget.delay(STATUS, 103.0, limit, 0.5) == pytest.approx(7.5)
    assert budget.delay(STATUS, 110.5, limit, 0.5) == 0.0
    # Recording a call drops those that left the window: the row does not grow forever.
    later = budget.with_call(STATUS, 120.0, limit, 0.5)
    assert later.sent == (120.0,)


def test_budget_applies_the_submission_share_and_the_pause() -> None:
    limit = RateLimit(10, 10.0, submission_share=0.3)
    budget = QuotaBudget()
    for t in (0.0, 0.1, 0.2):
        budget = budget.with_call(SUBMISSION, t, limit, 0.0)
    assert budget.submitted == budget.sent == (0.0, 0.1, 0.2)
    assert budget.delay(SUBMISSION, 1.0, limit, 0.0) == pytest.approx(9.0)
    assert budget.delay(STATUS, 1.0, limit, 0.0) == 0.0  # polls keep the rest
    paused = QuotaBudget(paused_until=5.0)
    assert paused.delay(STATUS, 2.0, limit, 0.0) == pytest.approx(3.0)


def test_budget_entity_round_trip() -> None:
    limit = RateLimit(5, 10.0)
    budget = QuotaBudget(sent=(1.0, 2.0), submitted=(2.0,), paused_until=7.5)
    entity = budget.to_entity("row", limit)
    assert entity["PartitionKey"] == PARTITION
    assert entity["Limit"] == "5/10"
    assert QuotaBudget.from_entity(entity, "e1") == QuotaBudget(
        sent=(1.0, 2.0), submitted=(2.0,), paused_until=7.5, etag="e1"
    )


# -- against Azurite ------------------------------------------------------------------------


@pytest.fixture
def table(azurite: Azurite) -> Iterator[TableClient]:
    """A table name of its own (not created: the limiter creates it on first use)."""
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    name = f"quota{uuid.uuid4().hex[:12]}"
    try:
        yield service.get_table_client(name)
    finally:
        service.delete_table(name)


def pair(
    table: TableClient, limit: RateLimit
) -> tuple[TableRateLimiter, TableRateLimiter, FakeClock]:
    """Two limiters (two instances) on one table and one clock (as if perfectly synced)."""
    clock = FakeClock()
    clock.now = 1_765_000_000.0
    return (
        TableRateLimiter(table, ENDPOINT, limit, clock=clock, sleep=clock.sleep, margin=0.0),
        TableRateLimiter(table, ENDPOINT, limit, clock=clock, sleep=clock.sleep, margin=0.0),
        clock,
    )


def test_two_instances_share_one_window(table: TableClient) -> None:
    a, b, clock = pair(table, RateLimit(5, 10.0))
    granted = []
    for limiter in (a, b, a, b, b, a):  # every switch makes the other's cached copy stale
        granted.append(limiter.try_acquire(STATUS) == 0.0)
        clock.now += 0.1
    assert granted == [True] * 5 + [False]  # five in all, not five each
    assert b.try_acquire(STATUS) == pytest.approx(10.0 - 0.6)
    clock.now += 9.5  # the first call has left the window
    assert b.try_acquire(STATUS) == 0.0
    assert a.try_acquire(STATUS) > 0.0
    assert a.storage_calls > 0
    assert a.grants + b.grants == 6


def test_a_grant_costs_one_storage_call_while_nobody_else_writes(table: TableClient) -> None:
    a, _, clock = pair(table, RateLimit(50, 10.0))
    assert a.try_acquire(STATUS) == 0.0  # first: read (no row) + create
    before = a.storage_calls
    for _ in range(10):
        assert a.try_acquire(STATUS) == 0.0
        clock.now += 0.01
    assert a.storage_calls - before == 10


def test_a_pause_in_one_instance_stops_the_other(table: TableClient) -> None:
    a, b, clock = pair(table, RateLimit(50, 10.0))
    assert b.try_acquire(STATUS) == 0.0  # b holds a cached copy from before the pause
    a.pause(7.0)
    assert b.try_acquire(STATUS) == pytest.approx(7.0)
    assert b.wait_estimate(STATUS) == pytest.approx(7.0)
    a.pause(2.0)  # never shortens
    assert b.try_acquire(STATUS) == pytest.approx(7.0)
    clock.now += 7.0
    assert b.try_acquire(STATUS) == 0.0


def test_acquire_waits_for_the_slot_another_instance_used(table: TableClient) -> None:
    a, b, clock = pair(table, RateLimit(2, 10.0))
    assert a.acquire(STATUS, max_wait=0.0)
    assert a.acquire(STATUS, max_wait=0.0)
    assert not b.acquire(STATUS, max_wait=5.0)  # the slot frees in 10 s
    assert b.acquire(STATUS, max_wait=10.0)
    assert clock.slept
    assert sum(clock.slept) == pytest.approx(10.0)


def test_unreachable_storage_falls_back_to_the_process_window() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    table = TableClient.from_connection_string(conn, table_name="quota")
    clock = FakeClock()
    limiter = TableRateLimiter(
        table, ENDPOINT, RateLimit(2, 10.0), clock=clock, sleep=clock.sleep, fallback_seconds=30
    )
    assert limiter.try_acquire(STATUS) == 0.0
    assert limiter.using_fallback
    assert limiter.try_acquire(STATUS) == 0.0
    assert limiter.try_acquire(STATUS) == pytest.approx(10.0)  # still limited, locally
    calls = limiter.storage_calls
    clock.now += 10.0
    assert limiter.try_acquire(STATUS) == 0.0
    assert limiter.storage_calls == calls  # storage is left alone during the fallback
    clock.now += 30.0
    limiter.try_acquire(STATUS)
    assert limiter.storage_calls > calls  # then tried again


@pytest.mark.parametrize(
    ("values", "shared"),
    [
        ({}, True),  # the default: every instance shares the quota
        ({"SPEECH_RATE_LIMIT_SCOPE": "process"}, False),
        ({"SPEECH_RATE_LIMIT": "off"}, False),
    ],
)
def test_the_runtime_shares_the_quota_as_the_settings_say(
    azurite: Azurite, values: dict[str, str], shared: bool
) -> None:
    env = {
        "AzureWebJobsStorage": azurite.connection_string,
        "SPEECH_ENDPOINT": "http://127.0.0.1:9/",
        "SPEECH_KEY": "k",
        "SPEECH_QUOTA_TABLE": "quotawiring",
        **values,
    }
    settings = Settings.from_env(env)
    runtime = Runtime(settings, StorageClients.from_setting(env, settings.storage_connection))
    limiter = runtime.speech_limiter
    assert isinstance(limiter, TableRateLimiter) is shared
    if isinstance(limiter, TableRateLimiter):
        assert limiter.limit == settings.speech_rate_limit
        assert "shared by every instance" in str(limiter)


def test_an_unreadable_row_is_replaced_not_fatal(table: TableClient) -> None:
    a, _, _ = pair(table, RateLimit(5, 10.0))
    assert a.try_acquire(STATUS) == 0.0  # creates the table and the row
    table.upsert_entity(
        {"PartitionKey": PARTITION, "RowKey": quota_row_key(ENDPOINT), "Sent": b"\x00" * 5}
    )
    b = TableRateLimiter(table, ENDPOINT, RateLimit(5, 10.0), margin=0.0)
    assert b.try_acquire(STATUS) == 0.0
    assert not b.using_fallback
    row = table.get_entity(PARTITION, quota_row_key(ENDPOINT))
    assert len(QuotaBudget.from_entity(row, None).sent) == 1
