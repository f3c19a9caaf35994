"""The models the emulator serves: one en-US base model and the ``--custom-model`` ones."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from speech_emulator.engines.base import CustomModel
from speech_emulator.links import Links
from speech_emulator.timefmt import iso_timestamp

BASE_MODEL_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "speech-emulator/base-model/en-US"))
BASE_MODEL_NAME = "20241115 (emulated en-US base model)"
MODEL_LOCALE = "en-US"


def custom_model_id(name: str) -> str:
    """A custom model's id: stable across restarts for the same NAME."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"speech-emulator/custom-model/{name}"))


def load_custom_model(spec: str) -> CustomModel:
    """Parse a ``NAME=path/to/phrases.txt`` option into a `CustomModel` (one phrase a line)."""
    name, sep, path = spec.partition("=")
    name = name.strip()
    if not sep or not name or not path.strip():
        raise ValueError(f"--custom-model {spec!r} is not NAME=phrases.txt")
    file = Path(path.strip())
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"--custom-model {name}: cannot read {file} ({exc.strerror})") from exc
    phrases = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not phrases:
        raise ValueError(f"--custom-model {name}: {file} has no phrases (one per line)")
    return CustomModel(id=custom_model_id(name), name=name, phrases=phrases)


class ModelCatalog:
    """Base and custom models, and the lookup used to validate a job's ``model.self``."""

    def __init__(self, custom: Iterable[CustomModel], created: datetime) -> None:
        self.custom: dict[str, CustomModel] = {m.id: m for m in custom}
        self.created = created

    def resolve(self, model_self: str) -> str | bool | None:
        """Model id for a ``self`` URL: custom id, None for the base model, False if unknown."""
        path = urlsplit(model_self).path.rstrip("/")
        parts = path.split("/")
        if len(parts) < 3 or parts[-3:-1] not in (["speechtotext", "models"], ["models", "base"]):
            return False
        model_id = parts[-1].lower()
        if parts[-2] == "base":
            return None if model_id == BASE_MODEL_ID else False
        return model_id if model_id in self.custom else False

    def _common(self, links: Links) -> dict[str, Any]:
        stamp = iso_timestamp(self.created)
        return {
            "locale": MODEL_LOCALE,
            "createdDateTime": stamp,
            "lastActionDateTime": stamp,
            "status": "Succeeded",
        }

    def base_entity(self, links: Links) -> dict[str, Any]:
        """The base model entity."""
        return {
            "self": links.base_model(BASE_MODEL_ID),
            "displayName": BASE_MODEL_NAME,
            **self._common(links),
            "properties": {
                "features": {
                    "supportsTranscriptionsSubmit": True,
                    "supportsTranscriptionsTranscribe": False,
                    "supportsEndpoints": False,
                    "supportsTranscriptionsOnSpeechContainers": False,
                    "supportedOutputFormats": ["Display", "Lexical"],
                },
                "chargeForAdaptation": False,
            },
            "links": {"manifest": links.api(f"/models/base/{BASE_MODEL_ID}/manifest")},
        }

    def custom_entity(self, model: CustomModel, links: Links) -> dict[str, Any]:
        """A custom model entity (displayName = the NAME given on the command line)."""
        return {
            "self": links.model(model.id),
            "displayName": model.name,
            "description": f"Emulated custom model built from {len(model.phrases)} phrase(s).",
            **self._common(links),
            "baseModel": {"self": links.base_model(BASE_MODEL_ID)},
            "properties": {
                "features": {
                    "supportsTranscriptionsSubmit": True,
                    "supportsTranscriptionsTranscribe": False,
                    "supportsEndpoints": False,
                    "supportsTranscriptionsOnSpeechContainers": False,
                    "supportedOutputFormats": ["Display", "Lexical"],
                },
            },
            "links": {
                "files": links.api(f"/models/{model.id}/files"),
                "manifest": links.api(f"/models/{model.id}/manifest"),
            },
            "customProperties": {},
        }

    def by_id(self) -> Mapping[str, CustomModel]:
        """Custom models keyed by id (what engines get)."""
        return self.custom
