"""Blob input/output bindings with `{queueTrigger}` expressions, against a real Azurite."""

import os

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from devhost.bindings import check_supported, fill_expression
from devhost.indexing import FunctionSpec
from devhost.invoker import Invoker
from devhost.setting_refs import BindingConfigError
from tests.devhost.conftest import FAST_CONFIG, load_fixture_app

pytestmark = pytest.mark.integration


def test_blob_input_and_output_bindings(storage_env, make_host):
    app = load_fixture_app("bindings_app")
    service = BlobServiceClient.from_connection_string(storage_env.connection_string)
    container = os.environ["DEVHOST_TEST_CONTAINER"]
    service.create_container(container)
    service.get_blob_client(container, "notes/a.txt").upload_blob(b"hello")
    queue = QueueClient.from_connection_string(
        storage_env.connection_string,
        os.environ["DEVHOST_TEST_QUEUE"],
        message_encode_policy=TextBase64EncodePolicy(),
    )
    queue.create_queue()
    queue.send_message("notes/a.txt")
    host = make_host(app)
    assert [o.succeeded for o in host.poll_queues()] == [True]
    # The output container did not exist: created on demand, as the host does.
    out = service.get_blob_client(f"{container}-out", "upper/notes/a.txt")
    assert out.download_blob().readall() == b"HELLO"


def test_unfilled_expression_names_what_the_trigger_provides():
    with pytest.raises(BindingConfigError, match=r"\{missing\}.*\['name'\]"):
        fill_expression("c/{missing}", {"name": "x"}, function="f")


def test_unsupported_binding_is_rejected_at_start(tmp_path):
    def fn(msg: str, doc: str) -> None:
        return None

    spec = FunctionSpec(
        name="f",
        bindings=(
            {"type": "queueTrigger", "direction": "IN", "name": "msg", "queueName": "q"},
            {"type": "cosmosDB", "direction": "IN", "name": "doc"},
        ),
        user_function=fn,
    )
    with pytest.raises(BindingConfigError, match=r"does not support the in binding 'cosmosDB'"):
        check_supported(spec)
    with pytest.raises(BindingConfigError, match=r"func start"):
        Invoker(spec, settings={}, host=FAST_CONFIG, root=tmp_path)
