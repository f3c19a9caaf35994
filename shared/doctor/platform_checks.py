"""The doctor's checks of the settings and of the platform the app runs on.

``settings``          the app's settings validate (`Settings.from_env`, as at indexing)
``platform.trigger``  the blob trigger's source fits the plan: on Flex Consumption
                      (``WEBSITE_SKU=FlexConsumption``) only Event Grid runs. The Event Grid
                      subscription itself is control-plane state the app cannot read (no
                      management rights); `azd up`'s postdeploy hook creates it, and the
                      check says how to look at it
``platform.binding``  the identity the blob trigger's SDK binding signs in with is the one
                      the rest of the app uses (it reads the connection by itself and knows
                      only managed identities)
"""

from __future__ import annotations

from collections.abc import Iterator

from shared.doctor.context import DoctorContext
from shared.doctor.report import Check
from shared.errors import ConfigurationError
from shared.settings import runs_on_flex_consumption

__all__ = ["blob_trigger", "settings_valid"]


def settings_valid(ctx: DoctorContext) -> Iterator[Check]:
    """The app's settings, as the app validates them when it is indexed."""
    error = ctx.settings_error
    if error is not None:
        yield Check.fail(
            "settings",
            error.problem,
            setting=error.setting,
            fix="set it as docs/settings.md describes; the app refuses to start until then",
        )
        return
    s = ctx.settings
    assert s is not None
    speech = "a key" if s.uses_key else "Microsoft Entra ID"
    yield Check.ok(
        "settings",
        f"valid: Speech at {s.speech_endpoint} with {speech}; storage connection "
        f"{s.storage_connection}",
    )


def blob_trigger(ctx: DoctorContext) -> Iterator[Check]:
    """The trigger's source on this plan, and the identity of its SDK binding."""
    s = ctx.settings
    if s is None:
        yield Check.skip("platform", "not checked: the settings are invalid")
        return
    yield _source(ctx, s.blob_trigger_source)
    yield from _binding(ctx, s.storage_connection)


def _source(ctx: DoctorContext, source: str) -> Check:
    flex = runs_on_flex_consumption(ctx.env)
    explicit = bool(ctx.env.get("BLOB_TRIGGER_SOURCE", "").strip())
    if flex and source != "EventGrid":
        return Check.fail(
            "platform.trigger",
            f"BLOB_TRIGGER_SOURCE is {source} on Flex Consumption, which runs blob triggers "
            "only from Event Grid: recordings wait for the hourly sweep",
            setting="BLOB_TRIGGER_SOURCE",
            fix="delete the setting (EventGrid is the default on Flex Consumption)",
        )
    if flex:
        how = "set" if explicit else "the default on Flex Consumption"
        return Check.ok(
            "platform.trigger",
            f"EventGrid ({how}). The Event Grid subscription is not visible to the app (it "
            "needs management rights): `azd up` creates it; look at it with `az eventgrid "
            "system-topic event-subscription list -g <group> --system-topic-name <topic>`",
        )
    if source == "EventGrid":
        where = (
            "here devhost scans the container instead"
            if not ctx.in_azure
            else "blobs that existed before the subscription are found only by the sweep"
        )
        return Check.warn(
            "platform.trigger",
            f"EventGrid without Flex Consumption: the trigger fires only through an Event "
            f"Grid subscription to the blobs extension endpoint; {where}",
            setting="BLOB_TRIGGER_SOURCE",
            fix="create the subscription, or delete the setting to scan the container",
        )
    elsewhere = (
        ""
        if ctx.in_azure
        else " (run here, not on Flex Consumption: in Azure on Flex it is EventGrid)"
    )
    return Check.ok(
        "platform.trigger", f"LogsAndContainerScan: the host scans the container{elsewhere}"
    )


def _binding(ctx: DoctorContext, name: str) -> Iterator[Check]:
    try:
        connection = ctx.connection(name)
    except ConfigurationError:
        return  # reported by the settings and storage checks
    if not connection.uses_identity:
        yield Check.ok("platform.binding", f"the blob trigger reads recordings with {name}'s key")
        return
    identity = connection.identity
    if not ctx.in_azure:
        yield Check.warn(
            "platform.binding",
            f"{name} is identity-based, but the blob trigger's SDK binding signs in only with a "
            "managed identity: run locally (func start, devhost), `submit` cannot read recordings",
            setting=name,
            fix="use a connection string locally (UseDevelopmentStorage=true for Azurite)",
        )
        return
    client_id = ctx.env.get("AZURE_CLIENT_ID", "").strip()
    if identity is not None and identity.kind == "default" and client_id:
        yield Check.warn(
            "platform.binding",
            "the app signs in as AZURE_CLIENT_ID's identity, but the blob trigger's SDK binding "
            "uses the system-assigned identity",
            setting=f"{name}__credential",
            fix=f"set {name}__credential=managedidentity and {name}__clientId={client_id}",
        )
        return
    who = identity.describe() if identity else "the system-assigned managed identity"
    yield Check.ok("platform.binding", f"the blob trigger reads recordings as {who}")
