import pytest

from devhost.connections import DEVELOPMENT_STORAGE, expand_connection_string
from devhost.setting_refs import BindingConfigError, resolve_setting_refs


def test_references_are_replaced_from_settings():
    settings = {"INPUT_CONTAINER": "audio-input", "EXT": "wav"}
    value = resolve_setting_refs(
        "%INPUT_CONTAINER%/{name}.%EXT%", settings, function="f", prop="path"
    )
    assert value == "audio-input/{name}.wav"


def test_text_without_references_is_unchanged():
    assert (
        resolve_setting_refs("*/5 * * * * *", {}, function="f", prop="schedule") == "*/5 * * * * *"
    )


def test_missing_setting_names_function_property_and_setting():
    with pytest.raises(BindingConfigError) as info:
        resolve_setting_refs("%POLL_SCHEDULE%", {}, function="poll", prop="schedule")
    message = str(info.value)
    assert "'poll'" in message
    assert "'schedule'" in message
    assert "'POLL_SCHEDULE'" in message
    assert "local.settings.json" in message


@pytest.mark.parametrize("value", ["UseDevelopmentStorage=true", "UseDevelopmentStorage=true;"])
def test_development_storage_expands_to_default_azurite_ports(value):
    expanded = expand_connection_string(value)
    assert expanded == DEVELOPMENT_STORAGE
    for port in (10000, 10001, 10002):
        assert f"127.0.0.1:{port}/devstoreaccount1" in expanded


def test_explicit_connection_strings_are_kept():
    value = "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=k;BlobEndpoint=http://x/a;"
    assert expand_connection_string(value) == value
