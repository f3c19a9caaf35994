"""Absolute URLs of the emulator's entities, as they appear in ``self`` and ``links``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode


@dataclass(frozen=True)
class Links:
    """URL builder for one request: the public base URL and the caller's api-version."""

    base: str  # e.g. http://127.0.0.1:5050 (no trailing slash)
    api_version: str

    def api(self, path: str, **query: str | int) -> str:
        """``{base}/speechtotext{path}?...&api-version=...``."""
        params = {k: str(v) for k, v in query.items()}
        params["api-version"] = self.api_version
        return f"{self.base}/speechtotext{path}?{urlencode(params, quote_via=quote)}"

    def transcription(self, job_id: str) -> str:
        """The ``self`` URL of a transcription."""
        return self.api(f"/transcriptions/{job_id}")

    def files(self, job_id: str) -> str:
        """The files list of a transcription."""
        return self.api(f"/transcriptions/{job_id}/files")

    def file(self, job_id: str, file_id: str) -> str:
        """The ``self`` URL of a file."""
        return self.api(f"/transcriptions/{job_id}/files/{file_id}")

    def model(self, model_id: str) -> str:
        """The ``self`` URL of a custom model."""
        return self.api(f"/models/{model_id}")

    def base_model(self, model_id: str) -> str:
        """The ``self`` URL of a base model."""
        return self.api(f"/models/base/{model_id}")

    def webhook(self, hook_id: str, action: str = "") -> str:
        """The ``self`` URL of a web hook, or of its ``:ping``/``:test`` action."""
        return self.api(f"/webhooks/{hook_id}{action}")
