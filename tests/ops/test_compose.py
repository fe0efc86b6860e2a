"""docker-compose.yml is valid and says what it must (the image is not built: no engine runs here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

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


def compose(*args: str, secrets: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the compose client on the project's file, with or without the required secrets set."""
    env = {k: v for k, v in os.environ.items() if k not in ("API_TOKEN", "SECRET_KEY")}
    if secrets:
        env.update(API_TOKEN="placeholder-token", SECRET_KEY="placeholder-key")
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


def test_every_python_service_waits_for_what_it_needs() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert text.count("condition: service_completed_successfully") == 3  # api, worker, beat after migrate
    assert text.count("condition: service_healthy") == 8  # postgres and/or redis, per service
    assert '"worker", "-E"' in text and "${API_TOKEN?" in text and "${SECRET_KEY?" in text
