"""`Secret` must not become text by accident: only `reveal()` gives the value."""

from __future__ import annotations

import copy
import json
import logging
import pickle

import pytest

from shared.secret import NO_SECRET, Secret
from shared.settings import Settings

VALUE = "k3y-that-must-never-be-logged"


@pytest.mark.parametrize(
    "render",
    [
        str,
        repr,
        lambda s: f"{s}",
        lambda s: f"{s!s}",
        lambda s: f"{s!r}",
        lambda s: f"{s:>40}",
        lambda s: "%s" % (s,),  # noqa: UP031 - the logging style is what we test
        lambda s: "%r" % (s,),  # noqa: UP031
        "{}".format,
        lambda s: str([s]),
        lambda s: str({"key": s}),
    ],
)
def test_no_text_conversion_shows_the_value(render) -> None:
    text = render(Secret(VALUE))
    assert VALUE not in text
    assert "***" in text


def test_logging_does_not_show_the_value(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("key=%s", Secret(VALUE))
        logging.getLogger("t").info(
            "settings=%r", Settings(speech_endpoint="https://x", speech_key=Secret(VALUE))
        )
    assert VALUE not in caplog.text


def test_it_does_not_concatenate_or_serialise_as_a_string() -> None:
    with pytest.raises(TypeError):
        _ = "key: " + Secret(VALUE)  # type: ignore[operator]
    with pytest.raises(TypeError):
        json.dumps({"key": Secret(VALUE)})


def test_reveal_equality_truthiness_and_copies() -> None:
    secret = Secret(VALUE)
    assert secret.reveal() == VALUE
    assert secret == Secret(VALUE)
    assert secret != Secret("other")
    assert secret != VALUE  # a Secret is not a string
    assert hash(secret) == hash(Secret(VALUE))
    assert secret
    assert not NO_SECRET
    assert repr(NO_SECRET) == "Secret('')"
    assert copy.deepcopy(secret).reveal() == VALUE
    assert pickle.loads(pickle.dumps(secret)).reveal() == VALUE


def test_it_is_immutable_and_wraps_only_text() -> None:
    secret = Secret(VALUE)
    with pytest.raises(AttributeError):
        secret._value = "x"
    with pytest.raises(TypeError):
        Secret(b"bytes")  # type: ignore[arg-type]
