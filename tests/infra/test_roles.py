"""Every connection's roles go to the identity that connection uses, and no more.

Role definition ids are the built-in roles' GUIDs (the same in every tenant); the table
below names them, so a wrong GUID in the template shows up as the wrong role here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.infra import bicep

ROLE_NAMES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "19e7f393-937e-4f77-808e-94535e297925": "Storage Queue Data Reader",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "76199698-9eea-4c19-bc75-cec21354c6b6": "Storage Table Data Reader",
    "f2dc8367-1007-4938-bd23-fe263f013447": "Cognitive Services Speech User",
    "0e75ca1e-0464-4b4d-8b93-68208a576181": "Cognitive Services Speech Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    # Never wanted here; named so that a slip to them reads as what it is.
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    "a97b65f3-24c7-4388-baec-2e87135dc908": "Cognitive Services User",
}


@dataclass(frozen=True)
class Grant:
    scope: str  # symbolic name of the resource the role is assigned on
    principal: str  # the parameter holding the principal id
    role: str  # role name


def grants(doc: dict[str, Any], **params: Any) -> set[Grant]:
    """The role assignments a file makes with the given parameters."""
    evaluator = bicep.Evaluator(doc, params)
    found: set[Grant] = set()
    assignments = bicep.resources_of_type(doc, "Microsoft.Authorization/roleAssignments")
    for resource in assignments.values():
        condition = bicep.condition(resource)
        if condition is not None and not evaluator.value(condition):
            continue
        body = bicep.body(resource)
        role_arg = body["properties"]["roleDefinitionId"]["function"]["parameters"]
        role_expr = role_arg["resource_name_1"]
        loop = resource["config"].get("loop_type")
        if loop:
            detail = loop["detail"]
            assert role_expr == detail["item_name"], "loops over roles only"
            guids = evaluator.value(detail["array_name"])
        else:
            guids = [evaluator.value(role_expr)]
        for guid in guids:
            assert isinstance(guid, str), f"role not computed: {guid!r}"
            found.add(Grant(body["scope"], body["properties"]["principalId"], ROLE_NAMES[guid]))
    return found


def roles_of(found: set[Grant], principal: str, scope: str | None = None) -> set[str]:
    return {g.role for g in found if g.principal == principal and scope in (None, g.scope)}


ROLES = bicep.module("roles")


def test_the_app_identity_gets_exactly_what_its_connections_need():
    found = grants(ROLES, speechReadsStorage=False, userPrincipalId="")
    assert roles_of(found, "appPrincipalId", "storage") == {
        "Storage Blob Data Owner",  # host storage (Functions docs), data, user-delegation SAS
        "Storage Queue Data Contributor",
        "Storage Table Data Contributor",
    }
    assert roles_of(found, "appPrincipalId", "speech") == {"Cognitive Services Speech User"}
    assert roles_of(found, "appPrincipalId", "applicationInsights") == {
        "Monitoring Metrics Publisher"
    }
    assert roles_of(found, "appPrincipalId") == (
        roles_of(found, "appPrincipalId", "storage")
        | roles_of(found, "appPrincipalId", "speech")
        | roles_of(found, "appPrincipalId", "applicationInsights")
    )
    assert roles_of(found, "speechPrincipalId") == set()
    assert roles_of(found, "userPrincipalId") == set()


def test_role_scopes_are_the_resources_the_app_uses():
    existing = {name: res for name, res in ROLES["resources"].items() if res["existing"]}
    assert existing["storage"]["type"] == "Microsoft.Storage/storageAccounts"
    assert existing["storage"]["config"]["name"] == "storageAccountName"
    assert existing["speech"]["type"] == "Microsoft.CognitiveServices/accounts"
    assert existing["speech"]["config"]["name"] == "speechAccountName"
    assert existing["applicationInsights"]["type"] == "Microsoft.Insights/components"
    params = bicep.main()["modules"]["roles"]["config"]["params"]
    text = {name: bicep.expression_text(value) for name, value in params.items()}
    assert text["storageAccountName"] == "storage.outputs.name"
    assert text["speechAccountName"] == "speech.outputs.name"
    assert text["applicationInsightsName"] == "monitoring.outputs.applicationInsightsName"


def test_the_roles_go_to_the_identity_the_app_runs_as_and_connects_with():
    main = bicep.main()
    roles_params = main["modules"]["roles"]["config"]["params"]
    function_params = main["modules"]["function"]["config"]["params"]
    assert bicep.expression_text(roles_params["appPrincipalId"]) == "identity.outputs.principalId"
    assert bicep.expression_text(function_params["identityId"]) == "identity.outputs.id"
    # ... and the settings select that identity by client id (test_app_settings checks
    # every connection's __clientId and AZURE_CLIENT_ID against identity.outputs.clientId).
    identity = bicep.module("identity")
    (uami,) = bicep.resources_of_type(
        identity, "Microsoft.ManagedIdentity/userAssignedIdentities"
    ).values()
    assert uami["config"]["name"] == "name"
    outputs = {k: bicep.expression_text(v["value"]) for k, v in identity["outputs"].items()}
    assert outputs["clientId"] == "identity.properties.clientId"
    assert outputs["principalId"] == "identity.properties.principalId"


def test_speech_reads_recordings_with_its_identity_only_when_storage_is_locked_down():
    locked = grants(ROLES, speechReadsStorage=True, userPrincipalId="")
    assert roles_of(locked, "speechPrincipalId") == {"Storage Blob Data Reader"}
    assert {g.scope for g in locked if g.principal == "speechPrincipalId"} == {"storage"}
    assert bicep.main()["modules"]["roles"]["config"]["params"]["speechReadsStorage"] == (
        "vnetEnabled"
    )
    speech = bicep.module("speech")
    (account,) = bicep.resources_of_type(speech, "Microsoft.CognitiveServices/accounts").values()
    assert bicep.body(account)["identity"] == {"type": "SystemAssigned"}


def test_the_deploying_user_gets_what_the_hooks_and_doctor_need_when_given():
    found = grants(ROLES, speechReadsStorage=False, userPrincipalId="00000000-user")
    assert roles_of(found, "userPrincipalId", "speech") == {
        "Cognitive Services Speech Contributor"  # writes the web hook
    }
    assert roles_of(found, "userPrincipalId", "storage") == {
        "Storage Blob Data Contributor",
        "Storage Queue Data Reader",
        "Storage Table Data Reader",
    }
    params = bicep.main()["modules"]["roles"]["config"]["params"]
    assert params["userPrincipalId"] == "principalId"


def test_byos_roles_let_speech_write_and_the_app_read_results():
    byos = bicep.module("byos-roles")
    found = grants(byos)
    assert roles_of(found, "speechPrincipalId") == {"Storage Blob Data Contributor"}
    assert roles_of(found, "appPrincipalId") == {"Storage Blob Data Reader"}
    module = bicep.main()["modules"]["byosRoles"]
    assert bicep.condition(module) == "byosEnabled"


@pytest.mark.parametrize("name", ["roles", "byos-roles"])
def test_role_ids_match_their_names(name):
    """`storageBlobDataOwner: '<guid>'` must be the GUID of Storage Blob Data Owner."""
    roles = bicep.Evaluator(bicep.module(name)).variable("roles")
    for key, guid in roles.items():
        words = " ".join(re.findall(r"[A-Z]?[a-z]+", key)).lower()
        assert guid in ROLE_NAMES, f"{key}: unknown role id {guid}"
        name = ROLE_NAMES[guid].lower().replace("cognitive services ", "")
        assert name == words, f"{key} is {ROLE_NAMES[guid]}"
    assert {ROLE_NAMES[g] for g in roles.values()}.isdisjoint(
        {"Owner", "Contributor", "Storage Account Contributor", "Cognitive Services User"}
    )
