"""Render jobs, files and web hooks as the API's JSON entities (pure functions)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from speech_emulator.jobs import Job, JobFile
from speech_emulator.links import Links
from speech_emulator.speech_models import BASE_MODEL_ID
from speech_emulator.store import WebHook
from speech_emulator.timefmt import iso_timestamp
from speech_emulator.tokens import ContentSigner


def transcription_entity(job: Job, links: Links) -> dict[str, Any]:
    """A Transcription as GET /transcriptions/{id} returns it (no contentUrls, like the API)."""
    spec = job.spec
    props: dict[str, Any] = {
        "wordLevelTimestampsEnabled": spec.word_level_timestamps,
        "displayFormWordLevelTimestampsEnabled": spec.display_word_timestamps,
        "channels": list(spec.channels),
        "punctuationMode": spec.punctuation_mode,
        "profanityFilterMode": spec.profanity_mode,
        "timeToLiveHours": spec.ttl_hours,
    }
    if spec.diarization is not None:
        props["diarization"] = spec.diarization
    if spec.language_identification is not None:
        props["languageIdentification"] = spec.language_identification
    if spec.destination_container_url:
        props["destinationContainerUrl"] = spec.destination_container_url.split("?")[0]
    if job.duration_ms is not None:
        props["durationMilliseconds"] = job.duration_ms
    if job.error is not None:
        props["error"] = {"code": job.error[0], "message": job.error[1]}
    model_self = links.model(spec.model_id) if spec.model_id else links.base_model(BASE_MODEL_ID)
    entity: dict[str, Any] = {
        "self": links.transcription(job.id),
        "displayName": spec.display_name,
        "locale": spec.locale,
        "createdDateTime": iso_timestamp(job.created),
        "lastActionDateTime": iso_timestamp(job.last_action or job.created),
        "status": job.status.value,
        "model": {"self": model_self},
        "links": {"files": links.files(job.id)},
        "properties": props,
        "customProperties": dict(spec.custom_properties),
    }
    if spec.description is not None:
        entity["description"] = spec.description
    return entity


def file_entity(
    job: Job, file: JobFile, links: Links, signer: ContentSigner, expires: datetime
) -> dict[str, Any]:
    """A File entity: contentUrl is a signed, expiring emulator URL, or the plain blob URL
    of a file written to storage (no SAS, as the API does for BYOS and destinations)."""
    content_url = file.location or signer.url(links.base, job.id, file.id, file.name, expires)
    return {
        "self": links.file(job.id, file.id),
        "name": file.name,
        "kind": file.kind,
        "properties": {"size": file.size},
        "createdDateTime": iso_timestamp(file.created),
        "links": {"contentUrl": content_url},
    }


def webhook_entity(hook: WebHook, links: Links) -> dict[str, Any]:
    """A WebHook entity (the secret is never echoed back)."""
    props: dict[str, Any] = {"apiVersion": f"v{hook.api_version}"}
    if hook.error is not None:
        props["error"] = {"code": hook.error[0], "message": hook.error[1]}
    entity: dict[str, Any] = {
        "self": links.webhook(hook.id),
        "displayName": hook.display_name,
        "webUrl": hook.web_url,
        "events": dict(hook.events),
        "properties": props,
        "createdDateTime": iso_timestamp(hook.created),
        "lastActionDateTime": iso_timestamp(hook.last_action or hook.created),
        "status": hook.status,
        "links": {"ping": links.webhook(hook.id, ":ping"), "test": links.webhook(hook.id, ":test")},
        "customProperties": dict(hook.custom_properties),
    }
    if hook.description is not None:
        entity["description"] = hook.description
    return entity
