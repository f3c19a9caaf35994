"""The azd template as a whole: it parses, its parameters agree, it holds no key, vnet mode
locks storage down, and the Python versions it offers are ones requirements.txt installs."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tests.infra import bicep

ROOT = bicep.ROOT


@pytest.mark.parametrize("path", bicep.bicep_files(), ids=lambda p: p.name)
def test_every_bicep_file_parses(path):
    doc = bicep.parse(path)
    assert doc.get("resources") or doc.get("modules"), f"{path.name} declares nothing"


def test_the_template_has_all_its_files_and_modules():
    names = {p.relative_to(bicep.INFRA).as_posix() for p in bicep.bicep_files()}
    assert "main.bicep" in names
    for symbol, mod in bicep.main()["modules"].items():
        target = bicep.INFRA / mod["detail"]["path"]
        assert target.is_file(), f"module {symbol}: {target} is missing"
    azure_yaml = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    for hook in re.findall(r"run: \./(\S+)", azure_yaml):
        assert (ROOT / hook).is_file(), hook
    assert "host: function" in azure_yaml
    assert "language: python" in azure_yaml


# ---------------------------------------------------------------------------- parameters
_ENV_REF = re.compile(r"^\$\{(?P<var>[A-Z0-9_]+)(?:=(?P<default>.*))?\}$")


def parameter_file() -> dict[str, Any]:
    path = bicep.INFRA / "main.parameters.json"
    parameters: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["parameters"]
    return parameters


def allowed(spec: dict[str, Any]) -> list[Any] | None:
    for decorator in spec["decorators"]:
        if decorator.get("type") == "allowed":
            return list(decorator["argument"])
    return None


def test_parameter_file_defaults_agree_with_the_template():
    params = bicep.main()["parameters"]
    for name, entry in parameter_file().items():
        assert name in params, f"main.parameters.json sets unknown parameter {name}"
        match = _ENV_REF.match(entry["value"])
        assert match, f"{name}: expected ${{VAR}} or ${{VAR=default}}"
        default = match.group("default")
        if default is None:
            continue
        spec = params[name]
        expected = spec["default"]
        if spec["type"] == "int":
            assert int(default) == expected, name
        elif spec["type"] == "bool":
            assert default == str(expected).lower(), name
        else:
            assert default == ("" if expected is None else expected), name
        choices = allowed(spec)
        if choices is not None:
            assert expected in choices, name


def test_names_are_valid_and_distinct():
    evaluator = bicep.Evaluator(bicep.main())
    containers = [
        evaluator.value(x)
        for x in bicep.main()["modules"]["storage"]["config"]["params"]["containerNames"]
    ]
    assert len(set(containers)) == len(containers)
    for name in containers:
        assert re.fullmatch(r"(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*", name), name
    queue = evaluator.value("completionQueueName")
    queues = evaluator.value(bicep.main()["modules"]["storage"]["config"]["params"]["queueNames"])
    assert queues == [queue, f"{queue}-poison"]


# ----------------------------------------------------------------------------- no secrets
FORBIDDEN = {
    "listKeys(": "listKeys() hands out account keys",
    "AccountKey=": "a storage connection string with a key",
    "SharedAccessSignature": "a SAS connection string",
    "SPEECH_KEY": "the app must use Entra ID for Speech",
    "InstrumentationKey": "Application Insights must use Entra ID",
    "APPINSIGHTS_INSTRUMENTATIONKEY": "Application Insights must use Entra ID",
    "keys list": "keys are only read for the blobs extension endpoint (see below)",
    "--account-key": "storage must be accessed with Entra ID",
    "--connection-string": "storage must be accessed with Entra ID",
    "--auth-mode key": "storage must be accessed with Entra ID",
    "cognitiveservices account keys": "Speech keys are off",
    "sig=": "a SAS token",
}
# The one key the template reads: the blobs extension system key, which the Event Grid
# subscription's endpoint must carry (the platform's design, as in Microsoft's quickstart).
ALLOWED_KEY_READ = re.compile(
    r"az functionapp keys list\b[^\n]*\\?\n?[^\n]*systemKeys\.blobs_extension"
)


def template_files() -> list[Path]:
    files = [p for p in bicep.INFRA.rglob("*") if p.is_file()]
    return [*files, ROOT / "azure.yaml"]


@pytest.mark.parametrize("path", template_files(), ids=lambda p: p.name)
def test_no_keys_or_secret_connection_strings(path):
    text = path.read_text(encoding="utf-8")
    for match in ALLOWED_KEY_READ.finditer(text):
        text = text.replace(match.group(0), "")
    for needle, why in FORBIDDEN.items():
        assert needle.lower() not in text.lower(), f"{path.name}: {needle!r} ({why})"


def test_the_allowed_key_read_is_only_the_blobs_extension_key():
    for name in ("postdeploy.sh", "postdeploy.ps1"):
        text = (bicep.HOOKS / name).read_text(encoding="utf-8")
        assert len(ALLOWED_KEY_READ.findall(text)) == 1, name


def test_local_auth_is_off_everywhere():
    storage = bicep.body(bicep.module("storage")["resources"]["storage"])["properties"]
    assert storage["allowSharedKeyAccess"] is False
    assert storage["minimumTlsVersion"] == "TLS1_2"
    assert storage["allowBlobPublicAccess"] is False
    speech = bicep.body(bicep.module("speech")["resources"]["speech"])["properties"]
    assert speech["disableLocalAuth"] is True
    assert speech["customSubDomainName"] == "name"
    insights = bicep.body(bicep.module("monitoring")["resources"]["applicationInsights"])
    assert insights["properties"]["DisableLocalAuth"] is True
    function = bicep.module("function")
    policies = bicep.resources_of_type(
        function, "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    )
    assert {bicep.body(p)["name"]: bicep.body(p)["properties"] for p in policies.values()} == {
        "ftp": {"allow": False},
        "scm": {"allow": False},
    }


# ----------------------------------------------------------------------------- vnet mode
def test_vnet_mode_locks_storage_down_but_lets_speech_in():
    doc = bicep.module("storage")
    locked = bicep.Evaluator(doc, {"vnetEnabled": True, "speechResourceId": "SPEECH-ID"})
    open_ = bicep.Evaluator(doc, {"vnetEnabled": False, "speechResourceId": "SPEECH-ID"})
    props = bicep.body(doc["resources"]["storage"])["properties"]
    assert locked.value(props["publicNetworkAccess"]) == "Disabled"
    assert open_.value(props["publicNetworkAccess"]) == "Enabled"
    acls = props["networkAcls"]
    assert locked.value(acls["defaultAction"]) == "Deny"
    assert locked.value(acls["bypass"]) == "AzureServices"
    rules = locked.value(acls["resourceAccessRules"])
    assert [rule["resourceId"] for rule in rules] == ["SPEECH-ID"]
    assert open_.value(acls["resourceAccessRules"]) == []
    passed = bicep.main()["modules"]["storage"]["config"]["params"]
    assert bicep.expression_text(passed["speechResourceId"]) == "speech.outputs.id"
    assert passed["vnetEnabled"] == "vnetEnabled"


def test_vnet_mode_has_private_endpoints_for_blob_queue_and_table():
    doc = bicep.module("network")
    evaluator = bicep.Evaluator(doc)
    services = evaluator.variable("storageServices")
    assert sorted(services) == ["blob", "queue", "table"]
    endpoints = doc["resources"]["privateEndpoints"]
    assert endpoints["config"]["loop_type"]["detail"]["array_name"] == "storageServices"
    connection = bicep.body(endpoints)["properties"]["privateLinkServiceConnections"][0]
    assert connection["properties"]["groupIds"] == ["service"]
    assert connection["properties"]["privateLinkServiceId"] == "storageAccountId"
    zones = doc["resources"]["dnsZones"]
    assert bicep.body(zones)["name"] == "privatelink.${service}.${environment().suffixes.storage}"
    groups = bicep.body(doc["resources"]["dnsZoneGroups"])
    assert groups["properties"]["privateDnsZoneConfigs"][0]["properties"]["privateDnsZoneId"]
    network = bicep.main()["modules"]["network"]
    assert bicep.condition(network) == "vnetEnabled"
    assert bicep.expression_text(bicep.body(network)["params"]["storageAccountId"]) == (
        "storage.outputs.id"
    )


def test_vnet_mode_integrates_the_app_into_a_delegated_subnet():
    vnet = bicep.body(bicep.module("network")["resources"]["vnet"])
    app_subnet = vnet["properties"]["subnets"][0]
    assert app_subnet["name"] == "appSubnetName"
    delegations = app_subnet["properties"]["delegations"]
    assert delegations[0]["properties"]["serviceName"] == "Microsoft.App/environments"
    passed = bicep.main()["modules"]["function"]["config"]["params"]
    main = bicep.Evaluator(bicep.main(), {"vnetEnabled": False})
    assert main.value(passed["subnetId"]) == ""
    locked = bicep.Evaluator(bicep.main(), {"vnetEnabled": True})
    assert locked.value(passed["subnetId"]) == bicep.Opaque("network.outputs.appSubnetId")
    site = bicep.body(bicep.module("function")["resources"]["app"])
    assert "virtualNetworkSubnetId" in site["properties"]


# ------------------------------------------------------------------------ Python versions
# Requires-Python of the azure-functions releases requirements.txt pins (from their wheel
# metadata on PyPI, read 2026-05; the installed one is checked against this below).
AZURE_FUNCTIONS_REQUIRES_PYTHON = {
    "1.26.0": SpecifierSet(">=3.10,<3.13"),
    "2.3.0": SpecifierSet(">=3.13"),
}


def runtime_requirements(python_version: str) -> list[Requirement]:
    """requirements.txt as pip installs it on `python_version`."""
    environment = {"python_version": python_version, "python_full_version": f"{python_version}.0"}
    requirements = []
    for raw in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            requirements.append(requirement)
    return requirements


def offered_python_versions() -> list[str]:
    spec = bicep.main()["parameters"]["pythonVersion"]
    versions = allowed(spec)
    assert versions is not None
    assert spec["default"] in versions
    return [str(v) for v in versions]


@pytest.mark.parametrize("version", offered_python_versions())
def test_every_offered_python_version_installs_requirements(version):
    requirements = runtime_requirements(version)
    names = [r.name for r in requirements]
    assert len(names) == len(set(names)), f"{version}: a package pinned twice"
    (functions,) = [r for r in requirements if r.name == "azure-functions"]
    (pin,) = [s.version for s in functions.specifier if s.operator == "=="]
    assert pin in AZURE_FUNCTIONS_REQUIRES_PYTHON, f"record Requires-Python of {pin}"
    assert version in AZURE_FUNCTIONS_REQUIRES_PYTHON[pin], (
        f"Python {version} gets azure-functions {pin}, which requires "
        f"{AZURE_FUNCTIONS_REQUIRES_PYTHON[pin]}"
    )
    for requirement in requirements:
        assert any(s.operator == "==" for s in requirement.specifier), requirement


def test_the_recorded_requires_python_matches_the_installed_release():
    from importlib.metadata import metadata, version  # noqa: PLC0415

    installed = version("azure-functions")
    recorded = AZURE_FUNCTIONS_REQUIRES_PYTHON[installed]
    assert SpecifierSet(metadata("azure-functions")["Requires-Python"]) == recorded


def test_the_parameter_file_default_python_is_offered():
    match = _ENV_REF.match(parameter_file()["pythonVersion"]["value"])
    assert match
    assert match.group("default") in offered_python_versions()


# ----------------------------------------------------------------------------- .funcignore
RUNTIME_ENTRIES = {"function_app.py", "host.json", "requirements.txt", "shared"}


def test_funcignore_keeps_everything_but_the_app_out_of_the_package():
    patterns = [
        line.strip().rstrip("/")
        for line in (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    entries = {p.name for p in ROOT.iterdir()} | {
        ".azure",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".run",
        ".bench",
        "local.settings.json",
    }
    for name in sorted(entries - RUNTIME_ENTRIES):
        assert any(fnmatch.fnmatch(name, p) for p in patterns), f".funcignore misses {name}"
    for name in RUNTIME_ENTRIES:
        assert not any(fnmatch.fnmatch(name, p) for p in patterns), f".funcignore drops {name}"
