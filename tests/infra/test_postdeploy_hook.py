"""infra/hooks/postdeploy.sh against a stand-in `az` (tests/infra/fake_az.py), no network.

Checks that the Event Grid filter is the input container the template gives the app, that
the endpoint is the `submit` function's blobs extension URL, and that the Speech web hook
is registered once and updated (never duplicated) on re-runs, with the secret kept out of
every command line.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra import bicep

HOOK = bicep.HOOKS / "postdeploy.sh"
SECRET = "Zx9" * 16
HOSTNAME = "func-abc.azurewebsites.net"
SPEECH_ENDPOINT = "https://spch-abc.cognitiveservices.azure.com"

pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")


def template_input_container() -> str:
    """INPUT_CONTAINER as the template sets it for the app (and outputs it for the hook)."""
    evaluator = bicep.Evaluator(bicep.main())
    setting = evaluator.variable("appSettings")["INPUT_CONTAINER"]
    output = evaluator.value(bicep.main()["outputs"]["INPUT_CONTAINER"]["value"])
    assert setting == output
    return str(output)


def blob_trigger_function_name() -> str:
    """The name of function_app.py's blob-triggered function (what Event Grid must call)."""
    tree = ast.parse((bicep.ROOT / "function_app.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        decorators = {
            d.func.attr: d
            for d in node.decorator_list
            if isinstance(d, ast.Call)
            if isinstance(d.func, ast.Attribute)
        }
        if "blob_trigger" in decorators and "function_name" in decorators:
            arg = decorators["function_name"].args[0]
            assert isinstance(arg, ast.Constant)
            return str(arg.value)
    raise AssertionError("no blob-triggered function in function_app.py")


class Azure:
    """The fake `az` on PATH and its state."""

    def __init__(self, tmp_path: Path) -> None:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        script = bin_dir / "az"
        fake = Path(__file__).with_name("fake_az.py")
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{fake}" "$@"\n', encoding="utf-8")
        script.chmod(0o755)
        self.bin_dir = bin_dir
        self.state_path = tmp_path / "az-state.json"
        self.save({"blobs_extension_key": "blobKey_123-abc==", "hooks": []})

    def save(self, state: dict[str, Any]) -> None:
        self.state_path.write_text(json.dumps(state), encoding="utf-8")

    @property
    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self.state_path.read_text(encoding="utf-8"))
        return state

    def update(self, **changes: Any) -> None:
        state = self.state
        state.update(changes)
        self.save(state)

    def run_hook(self, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(self.bin_dir.parent),
            "FAKE_AZ_STATE": str(self.state_path),
            "AZURE_RESOURCE_GROUP": "rg-test",
            "AZURE_FUNCTION_APP_NAME": "func-abc",
            "AZURE_FUNCTION_APP_HOSTNAME": HOSTNAME,
            "AZURE_EVENTGRID_SYSTEM_TOPIC_NAME": "evgt-abc",
            "INPUT_CONTAINER": template_input_container(),
            "SPEECH_ENDPOINT": SPEECH_ENDPOINT,
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_SECRET_IN_APP": "true",
            "HOOK_RETRY_SECONDS": "0",
            "HOOK_WAIT_SECONDS": "30",
        }
        environment.update(env)
        return subprocess.run(
            ["sh", str(HOOK)],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def calls(self, *prefix: str) -> list[dict[str, Any]]:
        return [c for c in self.state["calls"] if c["argv"][: len(prefix)] == list(prefix)]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.fixture
def azure(tmp_path: Path) -> Azure:
    return Azure(tmp_path)


def test_event_grid_subscription_filters_the_input_container_to_submit(azure):
    result = azure.run_hook()
    assert result.returncode == 0, result.stderr
    (create,) = azure.calls("eventgrid", "system-topic", "event-subscription", "create")
    argv = create["argv"]
    container = template_input_container()
    subject_filter = option(argv, "--subject-begins-with")
    assert subject_filter == f"/blobServices/default/containers/{container}/blobs/"
    # What the filter does with real event subjects:
    assert f"/blobServices/default/containers/{container}/blobs/call 1.wav".startswith(
        subject_filter
    )
    assert not f"/blobServices/default/containers/{container}2/blobs/x.wav".startswith(
        subject_filter
    )
    assert option(argv, "--included-event-types") == "Microsoft.Storage.BlobCreated"
    assert option(argv, "--endpoint-type") == "webhook"
    assert option(argv, "--system-topic-name") == "evgt-abc"
    assert option(argv, "--endpoint") == (
        f"https://{HOSTNAME}/runtime/webhooks/blobs"
        f"?functionName=Host.Functions.{blob_trigger_function_name()}&code=blobKey_123-abc=="
    )


def test_the_hook_waits_for_the_blobs_extension_key(azure):
    azure.update(key_missing_times=2)
    result = azure.run_hook()
    assert result.returncode == 0, result.stderr
    assert len(azure.calls("functionapp", "keys", "list")) == 3
    assert "Waiting for the app's host to start" in result.stdout


def test_the_speech_web_hook_is_registered_once_and_updated_on_reruns(azure):
    assert azure.run_hook().returncode == 0
    (hook,) = azure.state["hooks"]
    assert hook["webUrl"] == f"https://{HOSTNAME}/api/speech-webhook"
    assert hook["events"] == {"transcriptionCompletion": True}
    assert hook["secret"] == SECRET
    assert hook["self"].startswith(f"{SPEECH_ENDPOINT}/speechtotext/webhooks/")

    result = azure.run_hook(WEBHOOK_SECRET="rotated" + SECRET)
    assert result.returncode == 0, result.stderr
    hooks = azure.state["hooks"]
    assert len(hooks) == 1, "a re-run must update the hook, not add one"
    assert hooks[0]["self"] == hook["self"]
    assert hooks[0]["secret"] == "rotated" + SECRET
    methods = [option(c["argv"], "--method") for c in azure.calls("rest")]
    assert methods.count("post") == 1
    assert methods.count("patch") == 1
    assert "updated" in result.stdout


def test_a_hook_found_by_its_url_is_updated_and_a_failed_one_replaced(azure):
    old: dict[str, Any] = {
        "self": f"{SPEECH_ENDPOINT}/speechtotext/webhooks/old-1?api-version=2024-11-15",
        "displayName": "renamed by someone",
        "webUrl": f"https://{HOSTNAME}/api/speech-webhook",
        "events": {"transcriptionCompletion": True},
        "status": "Succeeded",
    }
    other = dict(old, self=old["self"].replace("old-1", "other"), webUrl="https://x/hook")
    azure.update(hooks=[other, old])
    assert azure.run_hook().returncode == 0
    assert [h["self"] for h in azure.state["hooks"]] == [other["self"], old["self"]]

    azure.update(hooks=[other, dict(old, status="Failed")])
    result = azure.run_hook()
    assert result.returncode == 0, result.stderr
    selves = [h["self"] for h in azure.state["hooks"]]
    assert other["self"] in selves
    assert old["self"] not in selves
    assert len(selves) == 2


def test_the_secret_never_appears_on_a_command_line(azure):
    assert azure.run_hook().returncode == 0  # registers (POST)
    assert azure.run_hook().returncode == 0  # updates (PATCH)
    for call in azure.state["calls"]:
        assert not any(SECRET in arg for arg in call["argv"]), call["argv"]
    bodies = [c["body"] for c in azure.calls("rest") if c["body"]]
    assert len(bodies) == 2
    assert all(b["properties"]["secret"] == SECRET for b in bodies)


def test_the_hook_retries_until_the_speech_role_takes_effect(azure):
    azure.update(rest_failures=2)
    result = azure.run_hook()
    assert result.returncode == 0, result.stderr
    assert "Waiting for the Speech role assignment" in result.stdout
    assert len(azure.state["hooks"]) == 1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WEBHOOK_SECRET": ""}, "WEBHOOK_SECRET is not in the azd environment"),
        ({"WEBHOOK_SECRET_IN_APP": "false"}, "provisioned without WEBHOOK_SECRET"),
        ({"WEBHOOK_SECRET": 'bad"secret'}, "may only hold letters"),
        ({"INPUT_CONTAINER": ""}, "INPUT_CONTAINER is not in the azd environment"),
    ],
)
def test_missing_or_bad_inputs_stop_the_hook_with_a_reason(azure, env, message):
    result = azure.run_hook(**env)
    assert result.returncode != 0
    assert message in result.stderr
    assert azure.state["hooks"] == []


def test_a_failed_challenge_fails_the_hook_with_the_reason(azure):
    azure.update(challenge_status="Failed")
    result = azure.run_hook()
    assert result.returncode != 0
    assert "could not reach" in result.stderr
