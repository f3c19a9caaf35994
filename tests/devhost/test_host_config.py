import pytest

from devhost.host_config import HostConfig, HostConfigError, parse_host_config, parse_timespan


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:00:30", 30), ("00:10:00", 600), ("1.02:00:00", 93600), ("00:00:00.5", 0.5)],
)
def test_timespans(text, seconds):
    assert parse_timespan(text, prop="p") == seconds


def test_bad_timespan_names_the_property():
    with pytest.raises(HostConfigError, match=r"'extensions.queues.visibilityTimeout'"):
        parse_host_config({"extensions": {"queues": {"visibilityTimeout": "30s"}}})


def test_defaults_match_the_host():
    config = parse_host_config({"version": "2.0"})
    assert config == HostConfig()
    assert config.queues.max_dequeue_count == 5
    assert config.queues.message_encoding == "base64"
    assert config.queues.refill_threshold == 8
    assert config.blobs.poison_blob_threshold == 5
    assert config.http_route_prefix == "api"


def test_values_are_read():
    config = parse_host_config(
        {
            "functionTimeout": "00:10:00",
            "extensions": {
                "queues": {
                    "maxDequeueCount": 3,
                    "visibilityTimeout": "00:00:30",
                    "batchSize": 4,
                    "messageEncoding": "none",
                    "maxPollingInterval": "00:00:02",
                },
                "blobs": {"poisonBlobThreshold": 2, "maxDegreeOfParallelism": 3},
                "http": {"routePrefix": ""},
            },
        }
    )
    assert config.function_timeout == 600
    assert config.queues.max_dequeue_count == 3
    assert config.queues.visibility_timeout == 30
    assert config.queues.batch_size == 4
    assert config.queues.message_encoding == "none"
    assert config.queues.max_polling_interval == 2
    assert config.blobs.poison_blob_threshold == 2
    assert config.blobs.max_degree_of_parallelism == 3
    assert config.http_route_prefix == ""


@pytest.mark.parametrize(
    "document",
    [
        {"extensions": {"queues": {"maxDequeueCount": 0}}},
        {"extensions": {"queues": {"batchSize": "16"}}},
        {"extensions": {"queues": {"messageEncoding": "utf16"}}},
        {"extensions": {"blobs": {"poisonBlobThreshold": -1}}},
    ],
)
def test_invalid_values_are_rejected(document):
    with pytest.raises(HostConfigError, match=r"host.json"):
        parse_host_config(document)
