import json
import logging
from pathlib import Path

import pytest

from devhost.local_settings import (
    LocalSettingsError,
    apply_local_settings,
    ensure_local_settings,
    read_values,
)


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_environment_wins_over_file_and_skip_is_logged(tmp_path, caplog):
    path = write(
        tmp_path / "local.settings.json",
        {"IsEncrypted": False, "Values": {"A": "from-file", "B": "from-file"}},
    )
    environ = {"A": "from-env"}
    with caplog.at_level(logging.INFO, logger="devhost"):
        result = apply_local_settings(path, environ)
    assert environ == {"A": "from-env", "B": "from-file"}
    assert result.applied == ["B"]
    assert result.skipped == ["A"]
    assert (
        "Skipping 'A' from local settings as it's already defined in current environment "
        "variables." in caplog.messages
    )


def test_empty_environment_value_still_wins(tmp_path):
    path = write(tmp_path / "local.settings.json", {"Values": {"A": "file"}})
    environ = {"A": ""}
    apply_local_settings(path, environ)
    assert environ["A"] == ""


def test_missing_file_is_created_from_sample(tmp_path, caplog):
    sample = write(tmp_path / "local.settings.sample.json", {"Values": {"X": "1"}})
    target = tmp_path / "local.settings.json"
    with caplog.at_level(logging.INFO, logger="devhost"):
        assert ensure_local_settings(target) is True
    assert target.read_text() == sample.read_text()
    assert any("Created" in m and "local.settings.json" in m for m in caplog.messages)
    assert ensure_local_settings(target) is False  # present: left alone


def test_missing_file_without_sample_is_a_clear_error(tmp_path):
    with pytest.raises(LocalSettingsError, match=r"local.settings.sample.json"):
        ensure_local_settings(tmp_path / "local.settings.json")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"Values": {"N": 12}}, r"not strings.*quote them"),
        ({"IsEncrypted": True, "Values": {}}, r"encrypted"),
        ({"Values": []}, r"'Values'.*object"),
        ([1, 2], r"JSON object"),
    ],
)
def test_malformed_settings_are_rejected(tmp_path, document, message):
    path = write(tmp_path / "local.settings.json", document)
    with pytest.raises(LocalSettingsError, match=message):
        read_values(path)


def test_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "local.settings.json"
    path.write_text("{nope", encoding="utf-8")
    with pytest.raises(LocalSettingsError, match=r"not valid JSON"):
        read_values(path)
