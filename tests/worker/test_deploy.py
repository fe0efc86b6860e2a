"""deploy/: the Prometheus alert rules pass `promtool check rules` and their unit test (`promtool test
rules`), and every metric the rules and the Grafana dashboard use is one GET /metrics exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.main import app
from tests.api.conftest import AUTH

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "automation-worker.json"
METRIC = re.compile(r"\bautomation_worker_[a-z_]+\b")
PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian's `prometheus` package; "
                                             ".ci/run installs it when it can)")
def test_promtool_checks_the_rules_and_their_unit_test() -> None:
    assert PROMTOOL is not None
    checked = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout
    tested = subprocess.run([PROMTOOL, "test", "rules", "alerts_test.yml"], cwd=RULES.parent,
                            capture_output=True, text=True, timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def _exposed(db: Session) -> set[str]:
    """Every sample name GET /metrics declares (families and their _total/_bucket/_sum/_count)."""
    with TestClient(app, headers=AUTH) as client:
        text = client.get("/metrics").text
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def test_rules_and_dashboard_use_only_exposed_metrics(db: Session, redis_url: str) -> None:
    exposed = _exposed(db)
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    alerts = {r["alert"] for r in rules}
    assert {"AutomationWorkerBeatStale", "AutomationsLate", "AutomationRunFailureRate",
            "AutomationPartnerThrottling", "AutomationDeferredRunsPilingUp"} <= alerts
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [r["expr"] for r in rules] + [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in METRIC.findall(e)}
    assert used and used <= exposed, used - exposed
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"]) >= 8
    assert all(p["targets"] and p["datasource"]["type"] == "prometheus" for p in dashboard["panels"])
