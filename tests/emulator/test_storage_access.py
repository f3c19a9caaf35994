"""Locked-down storage (``--storage-access identity``) and bring-your-own-storage (``--byos``),
over real HTTP with the session's Azurite standing in for the customer's storage account."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.storage.blob import (
    BlobClient,
    BlobServiceClient,
    ContainerSasPermissions,
    generate_container_sas,
)

from devhost.services import DEV_ACCOUNT, DEV_ACCOUNT_KEY, Azurite, wait_for
from tests.emulator.audio_fixtures import bursts, encode
from tests.emulator.result_schema import TranscriptionReport, TranscriptionResult
from tests.emulator.speech import (
    admin,
    client,
    create_body,
    download,
    files,
    job_id,
    submit,
    upload,
    wait_done,
)

pytestmark = pytest.mark.integration

BYOS_CONTAINER = "customspeech-artifacts"


@pytest.fixture(scope="module")
def sas_url(azurite: Azurite) -> str:
    """A blob in a private container, as a read SAS URL."""
    return upload(azurite, encode([bursts([(0.1, 0.5)], 1.0)]), transcript=[["locked down"]])


def _plain(url: str) -> str:
    return url.split("?", maxsplit=1)[0]


def _identity(factory, azurite: Azurite, *extra: str):
    return factory(
        "--engine",
        "scripted",
        "--instant",
        "--storage-access",
        "identity",
        "--storage-connection-string",
        azurite.connection_string,
        *extra,
    )


def _report(api: httpx.Client, entity: dict) -> TranscriptionReport:
    (report,) = [f for f in files(api, entity) if f["kind"] == "TranscriptionReport"]
    return TranscriptionReport.model_validate(download(report))


def _container_url(azurite: Azurite, name: str, sas: bool) -> str:
    url = f"{azurite.blob_endpoint}/{name}"
    if not sas:
        return url
    token = generate_container_sas(
        DEV_ACCOUNT,
        name,
        account_key=DEV_ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True, list=True, write=True, create=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return f"{url}?{token}"


def test_identity_reads_plain_urls_and_refuses_sas(
    speech_emulator_factory, azurite: Azurite, sas_url: str
) -> None:
    emulator = _identity(speech_emulator_factory, azurite)
    with client(emulator) as api:
        plain = wait_done(api, submit(api, create_body([_plain(sas_url)])))
        assert plain["status"] == "Succeeded"
        (result_file,) = [f for f in files(api, plain) if f["kind"] == "Transcription"]
        result = TranscriptionResult.model_validate(download(result_file))
        assert result.source == _plain(sas_url)
        assert result.recognized_phrases[0].n_best[0].lexical == "locked down"

        refused = wait_done(api, submit(api, create_body([sas_url])))
        assert refused["status"] == "Failed"
        assert refused["properties"]["error"]["code"] == "InvalidRecordingsUri"
        assert "SAS" in refused["properties"]["error"]["message"]
        assert "sig=" not in refused["properties"]["error"]["message"]

        # One of each in one job: the job succeeds, the report names the refused input.
        mixed = wait_done(api, submit(api, create_body([_plain(sas_url), sas_url])))
        assert mixed["status"] == "Succeeded"
        details = _report(api, mixed).details
    assert [d.status for d in details] == ["Succeeded", "Failed"]
    assert details[1].error_kind == "InvalidRecordingsUri"


def test_a_plain_url_needs_identity_mode(
    speech_emulator_factory, azurite: Azurite, sas_url: str
) -> None:
    # Default (sas) mode: a plain URL into a private container is an anonymous read, even
    # when the emulator holds the account's credential (it is for identity mode only).
    emulator = speech_emulator_factory(
        "--engine",
        "scripted",
        "--instant",
        "--storage-connection-string",
        azurite.connection_string,
    )
    with client(emulator) as api:
        entity = wait_done(api, submit(api, create_body([_plain(sas_url)])))
        assert entity["status"] == "Failed"
        assert entity["properties"]["error"]["code"] == "InvalidRecordingsUri"
    # Identity mode, but its identity has a role on another account only.
    other = azurite.connection_string.replace(DEV_ACCOUNT, "otheraccount")
    emulator = speech_emulator_factory(
        "--engine",
        "scripted",
        "--instant",
        "--storage-access",
        "identity",
        "--storage-connection-string",
        other,
    )
    with client(emulator) as api:
        entity = wait_done(api, submit(api, create_body([_plain(sas_url)])))
        assert entity["status"] == "Failed"
        assert entity["properties"]["error"]["code"] == "InvalidRecordingsUri"
        # A SAS into that account is not the locked account's business: it still works.
        assert wait_done(api, submit(api, create_body([sas_url])))["status"] == "Succeeded"


def test_identity_lists_plain_containers_and_refuses_destinations(
    speech_emulator_factory, azurite: Azurite
) -> None:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    name = f"locked-{uuid.uuid4().hex[:10]}"
    container = service.create_container(name)
    for i in range(2):
        container.upload_blob(f"call {i}.wav", encode([bursts([(0.1, 0.6)], 1.0)]))
    emulator = _identity(speech_emulator_factory, azurite)
    with client(emulator) as api:
        body = create_body([])
        del body["contentUrls"]
        body["contentContainerUrl"] = _container_url(azurite, name, sas=False)
        listed = wait_done(api, submit(api, body))
        assert listed["status"] == "Succeeded"
        sources = sorted(d.source for d in _report(api, listed).details)
        assert sources == [f"{azurite.blob_endpoint}/{name}/call%20{i}.wav" for i in range(2)]

        body["contentContainerUrl"] = _container_url(azurite, name, sas=True)
        refused = wait_done(api, submit(api, body))
        assert refused["status"] == "Failed"
        assert refused["properties"]["error"]["code"] == "InaccessibleCustomerStorage"

        # destinationContainerUrl takes an ad hoc SAS only, which a locked account refuses.
        inputs = [f"{azurite.blob_endpoint}/{name}/call%200.wav"]
        for destination in (
            _container_url(azurite, name, sas=True),
            _container_url(azurite, name, sas=False),
        ):
            entity = wait_done(
                api, submit(api, create_body(inputs, destinationContainerUrl=destination))
            )
            assert entity["status"] == "Failed"
            assert entity["properties"]["error"]["code"] == "InaccessibleCustomerStorage"
            assert "destinationContainerUrl" in entity["properties"]["error"]["message"]
    assert sorted(b.name for b in container.list_blobs()) == ["call 0.wav", "call 1.wav"]


def test_byos_results_live_in_the_account_without_sas(
    speech_emulator_factory, azurite: Azurite, sas_url: str
) -> None:
    emulator = speech_emulator_factory(
        "--engine", "scripted", "--instant", "--byos", azurite.connection_string
    )
    artifacts = BlobServiceClient.from_connection_string(
        azurite.connection_string
    ).get_container_client(BYOS_CONTAINER)

    def blobs(entity: dict) -> list[str]:
        prefix = f"TranscriptionData/{job_id(entity)}_"
        return sorted(b.name for b in artifacts.list_blobs(name_starts_with=prefix))

    with client(emulator) as api, admin(emulator) as adm:
        entity = wait_done(api, submit(api, create_body([sas_url, sas_url])))
        assert entity["status"] == "Succeeded"
        listed = api.get(
            f"/transcriptions/{job_id(entity)}/files", params={"sasLifetimeMinutes": 60}
        ).json()["values"]
        prefix = f"{azurite.blob_endpoint}/{BYOS_CONTAINER}/TranscriptionData/{job_id(entity)}"
        urls = {f["name"]: f["links"]["contentUrl"] for f in listed}
        assert urls == {
            "contenturl_0.json": f"{prefix}_0_0.json",
            "contenturl_1.json": f"{prefix}_1_0.json",
            "report.json": f"{prefix}_report.json",
        }
        assert blobs(entity) == sorted(u.split(f"/{BYOS_CONTAINER}/")[1] for u in urls.values())
        # Anonymous: refused, like any private container. With the account's own key: the file.
        anonymous = httpx.get(urls["contenturl_0.json"])
        assert anonymous.status_code in (403, 404), anonymous.text
        blob = BlobClient.from_blob_url(
            urls["contenturl_0.json"],
            credential={"account_name": DEV_ACCOUNT, "account_key": DEV_ACCOUNT_KEY},
        )
        result = TranscriptionResult.model_validate_json(blob.download_blob().readall())
        assert result.source == _plain(sas_url)
        sizes = {f["name"]: f["properties"]["size"] for f in listed}
        assert sizes["contenturl_0.json"] == blob.get_blob_properties().size

        # Deleting the transcription deletes its results from the account.
        assert api.delete(f"/transcriptions/{job_id(entity)}").status_code == 204
        wait_for(lambda: blobs(entity) == [], timeout=10, what="BYOS blobs to be deleted")
        # So does its time-to-live running out.
        expiring = wait_done(api, submit(api, create_body([sas_url])))
        assert len(blobs(expiring)) == 2
        # A destination container wins over BYOS, and outlives the job.
        name = f"dest-{uuid.uuid4().hex[:10]}"
        destination = _container_url(azurite, name, sas=False)
        BlobServiceClient.from_connection_string(azurite.connection_string).create_container(name)
        body = create_body([sas_url], destinationContainerUrl=_container_url(azurite, name, True))
        kept = wait_done(api, submit(api, body))
        assert {f["links"]["contentUrl"] for f in files(api, kept)} == {
            f"{destination}/{job_id(kept)}/contenturl_0.json",
            f"{destination}/{job_id(kept)}/report.json",
        }
        assert blobs(kept) == []
        assert api.delete(f"/transcriptions/{job_id(kept)}").status_code == 204
        adm.post("/clock", json={"advance_seconds": 49 * 3600})
        assert api.get(f"/transcriptions/{job_id(expiring)}").status_code == 404
        wait_for(lambda: blobs(expiring) == [], timeout=10, what="expired BYOS blobs to go")
    # The deletions ran (in order, on one thread) after that of the kept job: it is intact.
    dest_blobs = BlobServiceClient.from_connection_string(
        azurite.connection_string
    ).get_container_client(name)
    assert len(list(dest_blobs.list_blobs())) == 2
