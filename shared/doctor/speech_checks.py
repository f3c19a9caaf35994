"""The doctor's Speech checks: endpoint, credentials, model and locale, web hook.

``speech.endpoint``  the endpoint answers HTTP at all (one request without credentials: any
                     answer, 401 included, proves it is reachable)
``speech.auth``      the key, or the Microsoft Entra token of the identity the app signs in
                     as (`shared.storage_connection.identity_for_speech`), is accepted
``speech.model``     SPEECH_MODEL exists on this resource, is ready, transcribes
                     SPEECH_LOCALE and is not past its deprecation date; without a model,
                     the base model transcribes SPEECH_LOCALE (and LANGUAGE_CANDIDATES)
``speech.webhook``   with WEBHOOK_SECRET set: a web hook for transcription completions is
                     registered, points at this app and passed its challenge
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from shared.doctor.context import CONNECT_TIMEOUT_S, REQUEST_TIMEOUT_S, DoctorContext
from shared.doctor.report import Check, Status
from shared.errors import (
    SpeechAuthError,
    SpeechNotFoundError,
    SpeechServiceError,
    SpeechThrottledError,
    redact_url,
)
from shared.settings import Settings
from shared.speech_client import SpeechClient
from shared.storage_connection import identity_for_speech

__all__ = ["speech_service", "speech_webhook"]

# A model this close to its transcription deprecation date is reported as a warning.
_DEPRECATION_WARNING: Final = timedelta(days=30)
_SKIPPED: Final = "not checked: the settings are invalid (see the settings check)"


def speech_service(ctx: DoctorContext) -> Iterator[Check]:
    """Endpoint, credentials, then model and locale."""
    s = ctx.settings
    if s is None:
        yield Check.skip("speech", _SKIPPED)
        return
    reachable = _endpoint(s)
    yield reachable
    if reachable.status is not Status.OK:
        yield Check.skip("speech.auth", "not checked: the endpoint does not answer")
        return
    with ctx.speech_client() as client:
        try:
            locales = client.transcription_locales()
        except SpeechServiceError as exc:
            yield _auth_failure(ctx, s, exc)
            return
        yield Check.ok("speech.auth", f"{_credentials(ctx, s)} accepted")
        yield from _model(client, s, locales)


def speech_webhook(ctx: DoctorContext) -> Iterator[Check]:
    """With WEBHOOK_SECRET: a completion hook registered here that passed its challenge."""
    s = ctx.settings
    if s is None:
        yield Check.skip("speech.webhook", _SKIPPED)
        return
    if not s.webhook_secret:
        yield Check.ok("speech.webhook", "off (WEBHOOK_SECRET is empty): completions by polling")
        return
    register = (
        "register it: `python -m shared.webhook_admin register --url "
        f"{ctx.webhook_url or 'https://<app>/api/speech-webhook'}` (or `azd hooks run postdeploy`)"
    )
    with ctx.speech_client() as client:
        try:
            hooks = list(client.webhooks.list())
        except SpeechAuthError as exc:
            yield Check.warn(
                "speech.webhook",
                f"cannot list the web hooks ({exc.status}): {_credentials(ctx, s)} may not read "
                "them (Cognitive Services Speech Contributor can)",
                fix="run the doctor as a Speech Contributor to check the web hook",
            )
            return
        except SpeechServiceError as exc:
            yield Check.fail(
                "speech.webhook", f"cannot list the web hooks: {exc}", setting="SPEECH_ENDPOINT"
            )
            return
    completion = [h for h in hooks if (h.get("events") or {}).get("transcriptionCompletion")]
    if ctx.webhook_url:
        here = _url_key(ctx.webhook_url)
        mine = [h for h in completion if _url_key(str(h.get("webUrl", ""))) == here]
    else:
        mine = [h for h in completion if _looks_like_ours(str(h.get("webUrl", "")))]
    if not mine:
        where = f"to {ctx.webhook_url}" if ctx.webhook_url else "to an /api/speech-webhook URL"
        yield Check.fail(
            "speech.webhook",
            f"WEBHOOK_SECRET is set, but no web hook for transcription completions points {where}",
            setting="WEBHOOK_SECRET",
            fix=register,
        )
        return
    hook = mine[0]
    url = redact_url(str(hook.get("webUrl", "")))
    status = str(hook.get("status", ""))
    if status == "Failed":
        error = (hook.get("properties") or {}).get("error") or {}
        yield Check.fail(
            "speech.webhook",
            f"the web hook to {url} failed its challenge: {error.get('message', 'no detail')}",
            setting="WEBHOOK_SECRET",
            fix="make sure the app is running and reachable from the internet, then "
            "register the hook again (`azd hooks run postdeploy`)",
        )
    elif status != "Succeeded":
        yield Check.warn(
            "speech.webhook",
            f"the web hook to {url} is {status or 'in an unknown state'}: its challenge has not "
            "completed yet",
            fix="run the doctor again in a minute",
        )
    elif not ctx.webhook_url:
        yield Check.warn(
            "speech.webhook",
            f"a web hook to {url} is registered and active; whether that is this app cannot be "
            "told from here",
            fix="pass --webhook-url https://<app>/api/speech-webhook (WEBSITE_HOSTNAME sets it "
            "in Azure)",
        )
    else:
        yield Check.ok("speech.webhook", f"registered and active: {url}")


# --------------------------------------------------------------------------- steps


def _endpoint(s: Settings) -> Check:
    url = f"{s.speech_endpoint}/speechtotext/transcriptions/locales"
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    try:
        response = httpx.get(url, params={"api-version": s.speech_api_version}, timeout=timeout)
    except httpx.HTTPError as exc:
        return Check.fail(
            "speech.endpoint",
            f"{s.speech_endpoint} does not answer ({type(exc).__name__})",
            setting="SPEECH_ENDPOINT",
            fix="check the endpoint (Speech resource > Keys and Endpoint; the custom-subdomain "
            "form https://<name>.cognitiveservices.azure.com) and that this network may reach "
            "it (firewall, private endpoint)",
        )
    if response.status_code == 404:
        return Check.fail(
            "speech.endpoint",
            f"{s.speech_endpoint} answers, but has no Speech to text API (HTTP 404)",
            setting="SPEECH_ENDPOINT",
            fix="use the Speech resource's endpoint, https://<name>.cognitiveservices.azure.com",
        )
    return Check.ok("speech.endpoint", f"{s.speech_endpoint} answers")


def _credentials(ctx: DoctorContext, s: Settings) -> str:
    if s.uses_key:
        return "the key (SPEECH_KEY)"
    identity = identity_for_speech(ctx.env, s.storage_connection)
    source = f", from {identity.source}" if identity.source else ""
    return f"the Microsoft Entra token of {identity.describe()}{source}"


def _auth_failure(ctx: DoctorContext, s: Settings, exc: SpeechServiceError) -> Check:
    if isinstance(exc, SpeechThrottledError):
        return Check.warn(
            "speech.auth",
            f"the Speech service is throttling this resource right now ({exc}); the "
            "credentials could not be checked",
            fix="run the doctor again later; lower SPEECH_RATE_LIMIT if it lasts",
        )
    if not isinstance(exc, SpeechAuthError):
        return Check.fail(
            "speech.auth",
            f"the Speech service failed the request: {exc}",
            setting="SPEECH_ENDPOINT",
            fix="check the Speech resource's health in the Azure portal and run the doctor again",
        )
    if s.uses_key:
        return Check.fail(
            "speech.auth",
            f"the Speech service refused the key (HTTP {exc.status})",
            setting="SPEECH_KEY",
            fix="copy Key 1 of the Speech resource at SPEECH_ENDPOINT (Keys and Endpoint), or "
            "leave SPEECH_KEY empty to sign in with Microsoft Entra ID",
        )
    identity = identity_for_speech(ctx.env, s.storage_connection)
    setting = identity.source or "AZURE_CLIENT_ID"
    if exc.status is None:  # no token: nothing was sent
        fix = (
            "assign the user-assigned identity to the app and set AZURE_CLIENT_ID to its client "
            "id (or give the app a system-assigned identity)"
            if ctx.in_azure
            else "sign in with `az login` (or set SPEECH_KEY)"
        )
        return Check.fail(
            "speech.auth",
            f"could not get a Microsoft Entra token as {identity.describe()}",
            setting=setting,
            fix=fix,
        )
    return Check.fail(
        "speech.auth",
        f"the Speech service refused the token of {identity.describe()} (HTTP {exc.status})",
        setting=setting,
        fix="grant that identity 'Cognitive Services Speech User' on the Speech resource (it "
        "takes a few minutes to apply); SPEECH_ENDPOINT must be the custom-subdomain endpoint",
    )


def _model(client: SpeechClient, s: Settings, locales: Mapping[str, list[str]]) -> Iterator[Check]:
    submit = {locale.lower() for locale in locales.get("Submit", [])}
    if s.speech_model:
        yield _custom_model(client, s)
    elif submit and s.speech_locale.lower() not in submit:
        yield Check.fail(
            "speech.model",
            f"batch transcription on this resource does not support {s.speech_locale}",
            setting="SPEECH_LOCALE",
            fix=f"use one of {', '.join(sorted(locales.get('Submit', [])))}",
        )
    else:
        yield Check.ok("speech.model", f"the base model transcribes {s.speech_locale}")
    unsupported = [c for c in s.language_candidates if submit and c.lower() not in submit]
    if unsupported:
        yield Check.fail(
            "speech.locales",
            f"batch transcription on this resource does not support {', '.join(unsupported)}",
            setting="LANGUAGE_CANDIDATES",
            fix="drop them from LANGUAGE_CANDIDATES",
        )


def _custom_model(client: SpeechClient, s: Settings) -> Check:
    model = redact_url(s.speech_model)
    try:
        entity = client.get_model(s.speech_model)
    except ValueError as exc:
        return Check.fail(
            "speech.model",
            str(exc),
            setting="SPEECH_MODEL",
            fix="use a model of the Speech resource at SPEECH_ENDPOINT (copy its `self` URL)",
        )
    except SpeechNotFoundError:
        return Check.fail(
            "speech.model",
            f"the Speech resource has no model {model}",
            setting="SPEECH_MODEL",
            fix="copy the model's `self` URL from GET /speechtotext/models, or leave "
            "SPEECH_MODEL empty for the base model",
        )
    except SpeechServiceError as exc:
        return Check.fail("speech.model", f"cannot read the model: {exc}", setting="SPEECH_MODEL")
    name = str(entity.get("displayName") or model)
    locale = str(entity.get("locale", ""))
    status = str(entity.get("status", ""))
    features = (entity.get("properties") or {}).get("features") or {}
    if status and status != "Succeeded":
        return Check.fail(
            "speech.model",
            f"the model {name} is {status}, not ready",
            setting="SPEECH_MODEL",
            fix="wait for its training to succeed, or use another model",
        )
    if locale and locale.lower() != s.speech_locale.lower():
        return Check.fail(
            "speech.model",
            f"the model {name} transcribes {locale}, the recordings are {s.speech_locale}",
            setting="SPEECH_MODEL",
            fix=f"use a model for {s.speech_locale}, or set SPEECH_LOCALE={locale}",
        )
    if features.get("supportsTranscriptionsSubmit") is False:
        return Check.fail(
            "speech.model",
            f"the model {name} does not support batch transcription",
            setting="SPEECH_MODEL",
            fix="use a model whose features include supportsTranscriptionsSubmit",
        )
    deprecation = _deprecation(entity)
    now = datetime.now(UTC)
    if deprecation is not None and deprecation <= now:
        return Check.fail(
            "speech.model",
            f"the model {name} was deprecated for transcription on {deprecation:%Y-%m-%d}",
            setting="SPEECH_MODEL",
            fix="train a new custom model, or leave SPEECH_MODEL empty for the base model",
        )
    if deprecation is not None and deprecation - now < _DEPRECATION_WARNING:
        return Check.warn(
            "speech.model",
            f"the model {name} is deprecated for transcription on {deprecation:%Y-%m-%d}",
            setting="SPEECH_MODEL",
            fix="train a new custom model before then",
        )
    return Check.ok("speech.model", f"custom model {name} ({locale or s.speech_locale}) is ready")


def _deprecation(entity: Mapping[str, Any]) -> datetime | None:
    raw = ((entity.get("properties") or {}).get("deprecationDates") or {}).get(
        "transcriptionDateTime"
    )
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _url_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def _looks_like_ours(url: str) -> bool:
    return urlsplit(url).path.rstrip("/").endswith("/api/speech-webhook")
