"""The deployment checkers (tools/deploy_checks.py) must pass the repository's artifacts and
fail on broken ones: each test breaks one thing and expects the named check to fail."""
import copy
import glob
import json
import os
import sys

import pytest

yaml = pytest.importorskip("yaml", reason="install tools/requirements-deploy.txt")
pytest.importorskip("jsonschema", reason="install tools/requirements-deploy.txt")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import deploy_checks as dc  # noqa: E402


def compose():
    return yaml.safe_load(open(os.path.join(dc.DOCKER, "compose.yaml")))


def dashboards():
    return [(os.path.basename(f), json.load(open(f)))
            for f in sorted(glob.glob(os.path.join(dc.DOCKER, "grafana", "dashboards", "*.json")))]


def failures(fn, *args, **kw):
    c = dc.Checks("test")
    orig = dc.Checks
    dc.Checks = lambda name: c
    try:
        fn(*args, **kw)
    finally:
        dc.Checks = orig
    return c.failures


def test_repository_compose_and_dashboard_pass(capsys):
    assert failures(dc.check_compose) == []


def test_compose_schema_violation_is_caught():
    doc = compose()
    doc["services"]["redis"]["restart"] = ["always"]  # must be a string
    doc["services"]["redis"]["bogus_key"] = 1
    assert "compose.yaml satisfies the Compose Specification schema" in failures(dc.check_compose, doc, dashboards())


def test_replicas_in_different_groups_are_caught():
    doc = compose()
    doc["services"]["feedrank-2"] = copy.deepcopy(doc["services"]["feedrank-2"])
    doc["services"]["feedrank-2"]["environment"] = dict(doc["services"]["feedrank-2"]["environment"], FEEDRANK_GROUP="other")
    assert "the replicas share one consumer group" in failures(dc.check_compose, doc, dashboards())


def test_short_grace_period_and_public_port_are_caught():
    doc = compose()
    doc["services"]["feedrank-1"] = dict(doc["services"]["feedrank-1"], stop_grace_period="10s", ports=["8081:8080"])
    f = failures(dc.check_compose, doc, dashboards())
    assert "feedrank-1: stop_grace_period 10s exceeds the 30 s drain" in f
    assert "feedrank-1: port 8081:8080 is published on loopback only" in f


def test_dashboard_with_unknown_metric_or_missing_panel_is_caught():
    (name, dash), = dashboards()
    dash = copy.deepcopy(dash)
    lat = next(p for p in dash["panels"] if p["title"] == "Latency percentiles")
    lat["targets"][0]["expr"] = "rate(ranking_latency_ms_bucket[5m])"
    dash["panels"] = [p for p in dash["panels"] if "dropped" not in p["title"].lower()]
    f = failures(dc.check_compose, compose(), [(name, dash)])
    assert f"{name}: queries use only the worker's metrics" in f
    assert f"{name}: a 'dropped per rule' panel queries feedrank_items_dropped_total" in f


def test_metric_names_are_read_from_promql():
    expr = 'histogram_quantile(0.95, sum by (le) (rate(ranking_latency_seconds_bucket{job=~"$job"}[5m])))'
    assert {dc.base_metric(m) for m in dc.metric_names(expr)} == {"ranking_latency_seconds"}


helm = pytest.importorskip("helm_python", reason="install tools/requirements-deploy.txt")
pytest.importorskip("kubernetes_validate", reason="install tools/requirements-deploy.txt")


def rendered(values=None):
    with helm.Chart.load(dc.CHART) as chart:
        out = chart.render(values or {}, name="fr", namespace="t")
    return [d for k, v in sorted(out.items()) if k.endswith(".yaml") for d in yaml.safe_load_all(v) if d]


def test_default_render_passes():
    c = dc.Checks("t")
    dc.check_rendered(c, "t", rendered(), {})
    assert c.failures == []


def test_broken_manifests_are_caught():
    docs = rendered()
    for d in docs:
        if d["kind"] == "Deployment":
            pod = d["spec"]["template"]["spec"]
            pod["terminationGracePeriodSeconds"] = 30
            pod["containers"][0]["readinessProbe"]["httpGet"]["path"] = "/health"
            pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
            pod["containers"][0]["resourcez"] = {}
        if d["kind"] == "Service":
            d["spec"]["ports"][0]["port"] = "http"
    c = dc.Checks("t")
    dc.check_rendered(c, "t", docs, {})
    f = c.failures
    assert "t: readiness probe on /ready" in f
    assert "t: terminationGracePeriodSeconds exceeds the 30 s drain" in f
    assert "t: container feedrank read-only root, no privilege escalation, no capabilities" in f
    assert any("Deployment fr-feedrank valid for Kubernetes" in x for x in f)
    assert any("Service fr-feedrank valid for Kubernetes" in x for x in f)


def test_servicemonitor_subset_schema_rejects_a_bad_interval():
    docs = rendered({"serviceMonitor": {"enabled": True}})
    for d in docs:
        if d["kind"] == "ServiceMonitor":
            d["spec"]["endpoints"][0]["interval"] = "15 seconds"
    c = dc.Checks("t")
    dc.check_rendered(c, "t", docs, {})
    assert c.failures == ["t: ServiceMonitor fr-feedrank (FeedRank's subset schema)"]
