"""The documentation stays true: the README is a landing page of at most 200 lines linking every page of
docs/, no link or path points at a file the repository lacks, the CLI's import example imports as
written, and the README's walkthrough runs against a started stack."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.stack.test_one_configuration import stack_here  # noqa: F401  (the fixture)
from tests.stack.test_stack import HEALTH_TIMEOUT_S, log_tail, log_text
from tests.support.processes import wait_until
from worker.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *PAGES]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
PATH = re.compile(r"`((?:[\w.-]+/)+[\w.-]+\.(?:py|md|yml|yaml|toml|txt|png|ini|json))`")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (outside code blocks)."""
    found, fence = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


def test_readme_is_a_landing_page_linking_every_page() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    linked = {(ROOT / target.split("#")[0]).resolve() for target in LINK.findall(readme)}
    missing = [p.name for p in [*PAGES, ROOT / "CONTRIBUTING.md"] if p.resolve() not in linked]
    assert not missing, f"not linked from the README: {missing}"
    assert (ROOT / "bench" / "README.md").resolve() in linked


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_and_path_exists(document: Path) -> None:
    text = document.read_text()
    assert "DESIGN.md" not in text
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        path = (document.parent / file_part).resolve() if file_part else document
        assert path.exists(), f"{document.name}: link to a missing file {target}"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), f"{document.name}: no heading for #{anchor} in {path.name}"
    for named in PATH.findall(text):
        assert (ROOT / named).exists() or (document.parent / named).exists(), \
            f"{document.name}: names a file the repository lacks: {named}"


def test_the_cli_import_example_imports_as_written(db: Session, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    example = json.loads(re.findall(r"```json\n(.*?)```", text, re.S)[0])
    (tmp_path / "example.json").write_text(json.dumps(example))
    assert main(["import", str(tmp_path / "example.json")]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "created" in out and "suppliers-daily" in out


def walkthrough() -> str:
    """The shell blocks of the README's walkthrough, as one script."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Walkthrough"):]
    section = section[:section.index("\n## ", 5)]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert blocks and len("".join(blocks).splitlines()) <= 20
    return "set -euo pipefail\n" + "\n".join(blocks)


def jq_available() -> None:
    """jq, installed from Debian when missing (root); skip only when impossible."""
    if shutil.which("jq") is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "jq"], capture_output=True, timeout=300,
                       check=False, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if shutil.which("jq") is None or shutil.which("curl") is None:
        pytest.skip("curl and jq are needed by the walkthrough and could not be installed")


@pytest.mark.slow
def test_the_readme_walkthrough_sends_sandbox_records(stack_here: dict[str, Any]) -> None:  # noqa: F811
    jq_available()
    info, proc = stack_here, stack_here["proc"]
    assert wait_until(lambda: proc.poll() is not None or "automation-worker is running" in log_text(info),
                      HEALTH_TIMEOUT_S, 0.5) and proc.poll() is None, log_tail(info)
    env = {k: v for k, v in os.environ.items() if k not in ("API_TOKEN", "SECRET_KEY")}
    env["API"] = info["api"]
    result = subprocess.run(["bash", "-c", walkthrough()], cwd=info["cwd"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr + log_tail(info)
    outcome = json.loads(result.stdout[:result.stdout.rindex("}") + 1])
    assert outcome["status"] == "succeeded" and outcome["records_sent"] == outcome["records_matched"] > 0
    assert int(result.stdout.strip().splitlines()[-1]) >= 1  # the sandbox's count of invocations
