"""`python -m devhost` as a subprocess: settings, banner, logs, HTTP, graceful shutdown."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devhost.__main__ import instance_options, parse_args
from devhost.instances import instance_argv
from devhost.services import PROJECT_ROOT, wait_for
from tests.devhost.conftest import APPS, Output


@pytest.fixture
def app_root(tmp_path: Path) -> Path:
    shutil.copy(APPS / "http_app.py", tmp_path / "function_app.py")
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0"}))
    sample = {"IsEncrypted": False, "Values": {"FROM_ENV": "file", "FROM_FILE": "file"}}
    (tmp_path / "local.settings.sample.json").write_text(json.dumps(sample))
    return tmp_path


def test_devhost_command_runs_the_app_and_stops_on_sigterm(app_root):
    env = {**os.environ, "FROM_ENV": "env", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--root", str(app_root), "--port", "0"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(process)
    try:
        banner = wait_for(
            lambda: output.find(r"hello: \[GET,POST\] http://localhost:(\d+)/api/hello/\{who\}"),
            timeout=30,
            what=f"the banner; output so far:\n{output.text()}",
        )
        assert (app_root / "local.settings.json").exists()
        assert output.find(r"Created .*local.settings.json")
        assert output.find(
            r"Skipping 'FROM_ENV' from local settings as it's already defined in current "
            r"environment variables\."
        )
        assert not output.find("Skipping 'FROM_FILE'")
        port = int(banner.group(1))
        response = httpx.get(f"http://127.0.0.1:{port}/api/hello/ada")
        assert response.status_code == 201
        wait_for(
            lambda: output.find(
                r"Executed 'Functions.hello' \(Succeeded, Id=[0-9a-f-]{36}, "
                r"Duration=\d+ms\)"
            ),
            timeout=10,
            what="the execution log",
        )
        assert output.find(r"^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] Functions.hello: hello called for ada")
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        wait_for(lambda: output.find("Host stopped."), timeout=5, what="the stop message")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_devhost_command_reports_bad_settings_and_exits_2(tmp_path):
    (tmp_path / "local.settings.json").write_text("{broken")
    process = subprocess.run(
        [sys.executable, "-m", "devhost", "--root", str(tmp_path)],
        cwd=PROJECT_ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 2
    assert "devhost cannot start" in process.stdout
    assert "not valid JSON" in process.stdout


def test_instances_share_every_option_but_the_port() -> None:
    args = parse_args(["--instances", "3", "--port", "7071", "--blob-scan-interval", "0.5"])
    base = instance_options(args)
    assert instance_argv(base, 2, 7071)[-4:] == ["--port", "7073", "--instance-index", "2"]
    assert instance_argv(base, 2, 0)[-4:] == ["--port", "0", "--instance-index", "2"]
    assert "--instances" not in base  # an instance never starts instances of its own
    assert base[base.index("--blob-scan-interval") + 1] == "0.5"


def test_instances_must_be_at_least_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--instances", "0"])
    assert "--instances must be at least 1" in capsys.readouterr().err
