"""Queue trigger semantics against a real Azurite."""

import base64
import logging
import os
import time

import httpx
import pytest
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from devhost.host_config import BlobOptions, HostConfig, QueueOptions
from devhost.queue_trigger import MessageDecodeError, decode_body, next_poll_delay
from devhost.services import wait_for
from tests.devhost.conftest import load_fixture_app

pytestmark = pytest.mark.integration


@pytest.fixture
def queue_app(storage_env):
    return load_fixture_app("queue_app")


def client(storage_env, suffix: str = "", *, encode: bool = True) -> QueueClient:
    name = os.environ["DEVHOST_TEST_QUEUE"] + suffix
    return QueueClient.from_connection_string(
        storage_env.connection_string,
        name,
        message_encode_policy=TextBase64EncodePolicy() if encode else None,
    )


@pytest.fixture
def queue(storage_env) -> QueueClient:
    q = client(storage_env)
    q.create_queue()
    return q


def raw_messages(queue: QueueClient) -> list[str]:
    return [m.content for m in queue.peek_messages(max_messages=32)]


def test_base64_message_is_decoded_processed_and_deleted(queue_app, queue, storage_env, make_host):
    queue.send_message("hello")
    host = make_host(queue_app)
    outcomes = host.poll_queues()
    assert [o.succeeded for o in outcomes] == [True]
    (call,) = queue_app.calls
    assert call["body"] == b"hello"
    assert call["dequeue_count"] == 1
    assert call["arg"].pop_receipt
    assert call["arg"].insertion_time is not None
    assert call["arg"].expiration_time is not None
    assert raw_messages(queue) == []  # deleted after success
    # The queue output binding sent a base64 message, as the host does.
    out = client(storage_env, "-out", encode=False)
    assert [base64.b64decode(c) for c in raw_messages(out)] == [b"done:hello"]


def test_failing_message_counts_dequeues_then_goes_to_poison(
    queue_app, queue, storage_env, make_host, caplog
):
    queue.send_message("fail")
    raw = raw_messages(client(storage_env, encode=False))
    host = make_host(queue_app)  # FAST_CONFIG: maxDequeueCount 3, visibilityTimeout 0
    with caplog.at_level(logging.INFO, logger="devhost"):
        for attempt in (1, 2, 3):
            outcomes = host.poll_queues()
            assert [o.succeeded for o in outcomes] == [False], f"try {attempt}"
    assert [c["dequeue_count"] for c in queue_app.calls] == [1, 2, 3]
    assert raw_messages(queue) == []
    poison = client(storage_env, "-poison", encode=False)
    assert raw_messages(poison) == raw  # same (base64) body
    assert host.poll_queues() == []
    assert any("moved to poison queue" in m for m in caplog.messages)


def test_failed_message_waits_for_visibility_timeout(queue_app, queue, storage_env, make_host):
    config = HostConfig(
        queues=QueueOptions(batch_size=4, max_dequeue_count=5, visibility_timeout=30.0),
        blobs=BlobOptions(),
    )
    queue.send_message("fail")
    host = make_host(queue_app, host_config=config)
    assert len(host.poll_queues()) == 1
    assert host.poll_queues() == []  # invisible for 30 s after the failure
    assert client(storage_env, encode=False).peek_messages() == []


def test_invalid_base64_goes_straight_to_poison(queue_app, storage_env, make_host):
    plain = client(storage_env, encode=False)
    plain.create_queue()
    plain.send_message("not base64 at all!")
    host = make_host(queue_app)
    assert host.poll_queues() == []  # never invoked
    assert queue_app.calls == []
    assert raw_messages(plain) == []
    assert raw_messages(client(storage_env, "-poison", encode=False)) == ["not base64 at all!"]


def test_background_polling_processes_messages(queue_app, queue, make_host):
    host = make_host(queue_app)
    host.start()
    for i in range(6):
        queue.send_message(f"m{i}")
    wait_for(lambda: len(queue_app.calls) == 6, timeout=15, what="six messages")
    assert sorted(c["body"] for c in queue_app.calls) == [f"m{i}".encode() for i in range(6)]
    wait_for(lambda: raw_messages(queue) == [], timeout=10, what="the queue to drain")


def test_decode_body():
    assert decode_body(base64.b64encode(b"\x00\xff").decode(), "base64") == b"\x00\xff"
    assert decode_body("plain", "none") == b"plain"
    with pytest.raises(MessageDecodeError, match=r"TextBase64EncodePolicy"):
        decode_body("plain text", "base64")


def test_poll_backoff_doubles_to_the_maximum_and_resets():
    delay = 0.1
    seen = []
    for _ in range(6):
        delay = next_poll_delay(delay, False, 2.0)
        seen.append(delay)
    assert seen == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert next_poll_delay(2.0, True, 2.0) == 0.1


def test_lease_is_renewed_while_a_message_runs(queue_app, queue, make_host):
    lease_s = 2
    host = make_host(queue_app, queue_lease_seconds=lease_s)
    host.start()
    queue.send_message("slow")
    wait_for(lambda: queue_app.calls, timeout=10, what="the slow message to start")
    # A marker sent now becomes visible one lease later, after the slow message's first lease
    # has run out: any poll that sees the marker would see the slow message too, had its
    # lease not been renewed. So once the marker ran, the slow message was never delivered
    # again (it is the marker, not a second "slow", that follows the first call).
    queue.send_message("marker", visibility_timeout=lease_s)
    wait_for(lambda: len(queue_app.calls) >= 2, timeout=10, what="the marker (or a redelivery)")
    assert [c["body"] for c in queue_app.calls] == [b"slow", b"marker"]
    assert raw_messages(queue) == []  # the slow message is still invisible
    queue_app.release.set()
    wait_for(lambda: host.queues["on_message"].running == 0, timeout=10, what="completion")
    assert [c["body"] for c in queue_app.calls] == [b"slow", b"marker"]
    assert raw_messages(queue) == []  # deleted


def test_queue_output_wakes_the_listener_of_that_queue_at_once(storage_env, make_host):
    """As the host's SharedQueueWatcher: a message written by a queue output of this host is
    picked up at once, not at the listener's next back-off poll."""
    app = load_fixture_app("watcher_app")
    slow_backoff = HostConfig(
        queues=QueueOptions(batch_size=4, max_dequeue_count=3, max_polling_interval=60.0),
        function_timeout=60.0,
    )
    host = make_host(app, http_port=0, host_config=slow_backoff)
    host.start()
    listener = host.queues["on_message"]
    # Let the empty queue's back-off grow, and catch the loop just after a poll.
    wait_for(
        lambda: 2.0 < listener.next_poll_at - time.monotonic() < 60.0,
        timeout=30,
        what="the polling back-off to exceed 2 s",
    )
    due = listener.next_poll_at
    response = httpx.post(f"http://127.0.0.1:{host.http_port}/api/send", content=b"wake")
    assert response.status_code == 202
    wait_for(lambda: app.calls, timeout=90, what="the message to be processed")
    assert [c["body"] for c in app.calls] == [b"wake"]
    assert app.calls[0]["at"] < due, "processed only at the scheduled poll: no wake-up"
