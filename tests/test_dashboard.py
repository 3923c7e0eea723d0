"""The migration dashboard (infra/grafana/) and the compose services that show it: every metric a
panel asks for is one the server exports, and the files compose mounts exist and agree.

Grafana and Prometheus cannot run here (no Docker engine): these check what can be checked
without them, against a real /metrics."""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "infra" / "grafana" / "dashboards" / "migration.json"
SUFFIXES = re.compile(r"_(bucket|count|sum|total|created)$")


def _base(name: str) -> str:
    return SUFFIXES.sub("", name)


def test_every_metric_the_dashboard_asks_for_is_exported(app):
    exported = app.test_client().get("/metrics").get_data(as_text=True)
    families = {_base(m) for m in re.findall(r"^# TYPE (\S+)", exported, re.M)}
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    exprs += [board["templating"]["list"][0]["definition"]]
    asked = {_base(m) for e in exprs for m in re.findall(r"\bshop_[a-z_]+", e)}
    assert asked and asked <= families, sorted(asked - families)
    # The entity panels and the guard's: per entity.
    for metric in ("shop_entity_read_seconds", "shop_entity_comparisons", "shop_guard_steps", "shop_exposure_percent"):
        assert metric in asked


def test_compose_mounts_the_dashboard_and_its_datasource():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    grafana = compose["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"])
    for host in mounts:
        assert (ROOT / host).exists(), host
    provisioning = ROOT / "infra" / "grafana" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090" and "prometheus" in compose
    provider = yaml.safe_load((provisioning / "dashboards" / "shop.yml").read_text())["providers"][0]
    assert provider["options"]["path"] == mounts["./infra/grafana/dashboards"]
    board = json.loads(DASHBOARD.read_text())
    uids = {t["datasource"]["uid"] for p in board["panels"] for t in p["targets"]}
    assert uids == {datasource["uid"]}
    assert grafana["ports"] == ["3001:3000"]  # the workshop's frontend keeps 3000
