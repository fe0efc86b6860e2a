"""docker-compose.yml is valid and says what it must (the image is not built: no engine runs here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"redis", "postgres", "migrate", "api", "worker", "beat", "flower"}


def compose_command() -> list[str]:
    """`docker compose` (the plugin), else the standalone `docker-compose`; skip when neither works."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("no docker compose client on this machine")


REQUIRED = {"API_TOKEN": "placeholder-token", "SECRET_KEY": "placeholder-key", "FLOWER_BASIC_AUTH": "ops:pw"}


def compose(*args: str, secrets: bool = True, **env_values: str) -> subprocess.CompletedProcess[str]:
    """Run the compose client on the project's file, with or without the required secrets set (and any
    other variables given)."""
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED and not k.startswith("FLOWER_")}
    if secrets:
        env.update(REQUIRED)
    env.update(env_values)
    return subprocess.run([*compose_command(), "-f", str(ROOT / "docker-compose.yml"), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def test_compose_config_is_valid() -> None:
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_has_every_service() -> None:
    result = compose("config", "--services")
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == SERVICES


def test_compose_refuses_to_start_without_the_secrets() -> None:
    result = compose("config", "-q", secrets=False)
    assert result.returncode != 0 and ("API_TOKEN" in result.stderr or "SECRET_KEY" in result.stderr)
    for name in ("API_TOKEN", "SECRET_KEY"):
        missing = compose("config", "-q", secrets=False, **{k: v for k, v in REQUIRED.items() if k != name})
        assert missing.returncode != 0 and name in missing.stderr, (name, missing.stderr)


def test_compose_refuses_a_missing_flower_basic_auth() -> None:
    env = {k: v for k, v in REQUIRED.items() if k != "FLOWER_BASIC_AUTH"}
    result = compose("config", "-q", secrets=False, **env)
    assert result.returncode != 0 and "FLOWER_BASIC_AUTH" in result.stderr, result.stderr


def flower_start(tmp_path: Path, **env_values: str) -> subprocess.CompletedProcess[str]:
    """Flower's compose command, run with the compose file's environment, `celery` a stand-in that prints
    the login Flower would get (no container engine here)."""
    result = compose("config", **env_values)
    assert result.returncode == 0, result.stderr
    flower = yaml.safe_load(result.stdout)["services"]["flower"]
    fake = tmp_path / "bin" / "celery"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text('#!/bin/sh\necho "flower started with FLOWER_BASIC_AUTH=${FLOWER_BASIC_AUTH-unset} '
                    'FLOWER_AUTH=$FLOWER_AUTH"\n')
    fake.chmod(0o755)
    command = [part.replace("$$", "$") for part in flower["command"]]
    env = {k: str(v) for k, v in flower["environment"].items()}
    env["PATH"] = f"{fake.parent}:{os.environ['PATH']}"
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)


def test_flower_starts_only_behind_a_login(tmp_path: Path) -> None:
    basic = flower_start(tmp_path, FLOWER_BASIC_AUTH="ops:s3cret")
    assert basic.returncode == 0 and "FLOWER_BASIC_AUTH=ops:s3cret FLOWER_AUTH=" in basic.stdout
    oauth = flower_start(tmp_path, FLOWER_BASIC_AUTH="", FLOWER_AUTH=r".*@example\.com",
                         FLOWER_AUTH_PROVIDER="flower.views.auth.GithubLoginHandler")
    assert oauth.returncode == 0 and "FLOWER_BASIC_AUTH=unset FLOWER_AUTH=.*@example" in oauth.stdout
    neither = flower_start(tmp_path, FLOWER_BASIC_AUTH="")
    assert neither.returncode == 78 and "refuses to start without a login" in neither.stderr
    assert "flower started" not in neither.stdout


def test_every_python_service_waits_for_what_it_needs() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert text.count("condition: service_completed_successfully") == 3  # api, worker, beat after migrate
    assert text.count("condition: service_healthy") == 8  # postgres and/or redis, per service
    assert '"worker", "-E"' in text and "${API_TOKEN?" in text and "${SECRET_KEY?" in text
    assert "${FLOWER_BASIC_AUTH?" in text
