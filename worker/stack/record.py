"""What `make run` records of the settings it chose: VAR_DIR/stack.env, read by every later command.

`automation-worker ...` and `celery -A worker ...` started in the same folder (or with the same VAR_DIR)
take from it whatever their environment does not set (models/settings.get_settings), so a command in a
second shell encrypts with the stack's SECRET_KEY and reaches its database and Redis.
"""

from __future__ import annotations

import os
from pathlib import Path

from models.settings import RECORDED_FILE

#: The settings recorded: secrets, where the data is, where the services listen.
RECORDED = ("SECRET_KEY", "API_TOKEN", "DATABASE_URL", "REDIS_URL", "API_PORT", "FLOWER_PORT", "SANDBOX_URL",
            "API_CLIENT_ID", "API_CLIENT_SECRET")
HEADER = ("# Written by `automation-worker run` (make run) at each start: the settings it chose. Commands\n"
          "# started in this checkout use them for whatever their environment does not set. Holds secrets.\n")


def _quoted(value: str) -> str:
    """A dotenv value in single quotes (nothing inside is expanded)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def record_settings(var_dir: Path, env: dict[str, str]) -> Path:
    """Write the RECORDED names `env` holds to var_dir/stack.env (mode 0600, replaced atomically)."""
    path = var_dir / RECORDED_FILE
    lines = [f"{name}={_quoted(env[name])}\n" for name in RECORDED if env.get(name)]
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(HEADER + "".join(lines))
    os.replace(temp, path)
    return path


def who_reads(var_dir: Path, cwd: Path) -> str:
    """The banner's words for which commands read the file."""
    if var_dir == (cwd / "var").resolve():
        return f"commands started in {cwd} use them"
    return f"commands started with VAR_DIR={var_dir} use them"
