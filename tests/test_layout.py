"""The layout's rules (README "Layout"): imports point one way, no circle, no private name crosses
a module."""

from __future__ import annotations

import ast
from pathlib import Path

from tools import deps


def test_imports_point_one_way_without_a_circle() -> None:
    assert deps.breaches(deps.graph()) == []


def test_the_check_names_an_import_up_the_flow_and_a_circle() -> None:
    edges = {"tasks.run": {"worker.celery_app"}, "worker.celery_app": set(), "api.deps": {"worker.cli.main"},
             "models.a": {"models.b"}, "models.b": {"models.a"}}
    assert deps.breaches(edges) == ["api.deps imports worker.cli.main", "tasks.run imports worker.celery_app",
                                    "import circle: models.a <-> models.b"]


def test_no_private_name_is_imported_from_another_module() -> None:
    crossing = []
    for package in deps.PACKAGES:
        for path in (deps.ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in deps.PACKAGES:
                    private = [a.name for a in node.names if a.name.startswith("_") and a.name[1:2] != "_"]
                    crossing += [f"{path.relative_to(deps.ROOT)}: {node.module}.{name}" for name in private]
    assert crossing == []


def test_every_package_of_ours_is_checked() -> None:
    ours = {p.parent.name for p in Path(deps.ROOT).glob("*/__init__.py")} - {"tests", "tools", "migrations"}
    assert ours <= set(deps.PACKAGES)


def test_the_image_copies_every_package() -> None:
    dockerfile = (deps.ROOT / "Dockerfile").read_text()
    assert [p for p in deps.PACKAGES if f"COPY {p} {p}" not in dockerfile] == []
