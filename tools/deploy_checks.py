#!/usr/bin/env python3
"""Offline checks of FeedRank's deployment artifacts (run by scripts/validate-deploy.sh).

    deploy_checks.py compose    docker/compose.yaml against the Compose Specification schema
                                (vendored: docker/schema/compose-spec.json) plus the stack's
                                wiring: Prometheus targets, Grafana provisioning, the dashboard
    deploy_checks.py dockerfile every COPY source of docker/Dockerfile exists and is not ignored
    deploy_checks.py helm       helm lint, render (Helm's Go library via helm-python-sdk) with
                                the default values and each helm/feedrank/ci/*.yaml, every
                                manifest checked by kubernetes-validate (strict) for the oldest
                                and newest supported Kubernetes; ci/invalid/*.yaml must fail
                                with the message in their "# expect:" line

Each prints one line per check and exits 1 when any failed.
"""
import argparse
import fnmatch
import glob
import json
import os
import re
import sys

import jsonschema
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKER = os.path.join(ROOT, "docker")
CHART = os.path.join(ROOT, "helm", "feedrank")

# The worker's metrics (the lead's brief for the stream worker); the dashboard may use no other.
METRICS = {
    "ranking_requests_total", "ranking_latency_seconds", "ranking_errors_total", "predictions_total",
    "cache_hits_total", "items_served_total", "feed_diversity_score", "feedrank_consumer_lag",
    "feedrank_events_applied_total", "feedrank_dlq_records_total", "feedrank_items_dropped_total",
    "feed_freshness_seconds",
}
# Panels the issue asks for: a title fragment and a metric each must use.
REQUIRED_PANELS = {
    "request rate": "ranking_requests_total",
    "latency": "ranking_latency_seconds",
    "lag": "feedrank_consumer_lag",
    "freshness": "feed_freshness_seconds",
    "dead-letter": "feedrank_dlq_records_total",
    "cache hit": "cache_hits_total",
    "dropped per rule": "feedrank_items_dropped_total",
}
# Kubernetes versions to validate against: the chart's minimum and the newest schemas we have.
KUBE_VERSIONS = ("1.25.0", "1.37.0")


class Checks:
    def __init__(self, name):
        self.name, self.failures, self.count = name, [], 0

    def check(self, ok, what, detail=""):
        self.count += 1
        if ok:
            print(f"  ok    {what}")
        else:
            print(f"  FAIL  {what}{': ' + detail if detail else ''}")
            self.failures.append(what)
        return ok

    def done(self):
        status = "passed" if not self.failures else f"{len(self.failures)} FAILED"
        print(f"{self.name}: {self.count} checks, {status}")
        return 0 if not self.failures else 1


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def schema_errors(schema, doc):
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return sorted((f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in
                   cls(schema).iter_errors(doc)))


# ----------------------------------------------------------------------------------- compose

def metric_names(expr):
    """Metric names in a PromQL expression (identifiers followed by { or [ or used bare)."""
    names = set()
    for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{|\[)", expr):
        names.add(m.group(1))
    return names


def base_metric(name):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in METRICS:
            return name[: -len(suffix)]
    return name


def check_compose(doc=None, dashboards=None):
    """`doc`/`dashboards` replace docker/compose.yaml and the dashboard files (tests)."""
    c = Checks("compose")
    if doc is None:
        doc = load_yaml(os.path.join(DOCKER, "compose.yaml"))
    schema = load_json(os.path.join(DOCKER, "schema", "compose-spec.json"))
    errs = schema_errors(schema, doc)
    c.check(not errs, "compose.yaml satisfies the Compose Specification schema", "; ".join(errs[:5]))

    services = doc.get("services", {})
    for need in ("kafka", "redis", "topics-init", "prometheus", "grafana"):
        c.check(need in services, f"service {need} exists")
    workers = {n: s for n, s in services.items() if s.get("command", [None])[0] == "serve"}
    c.check(len(workers) >= 2, "at least two feedrank replicas run `serve`", f"got {sorted(workers)}")
    groups = {s.get("environment", {}).get("FEEDRANK_GROUP") for s in workers.values()}
    c.check(len(groups) == 1 and None not in groups, "the replicas share one consumer group", f"{groups}")
    for n, s in workers.items():
        env = s.get("environment", {})
        grace = str(s.get("stop_grace_period", "10s"))
        secs = int(re.fullmatch(r"(\d+)s", grace).group(1)) if re.fullmatch(r"(\d+)s", grace) else 0
        c.check(secs > 30, f"{n}: stop_grace_period {grace} exceeds the 30 s drain")
        c.check(env.get("FEEDRANK_BROKERS", "").split(":")[0] == "kafka", f"{n}: FEEDRANK_BROKERS points at the kafka service")
        c.check(env.get("FEEDRANK_REDIS", "").startswith("redis://redis:"), f"{n}: FEEDRANK_REDIS points at the redis service")
        dep = s.get("depends_on", {})
        c.check(dep.get("topics-init", {}).get("condition") == "service_completed_successfully",
                f"{n}: starts after topics-init completed")
        c.check(s.get("read_only") is True and "ALL" in s.get("cap_drop", []), f"{n}: read-only root, no capabilities")
        c.check(str(s.get("user", "")).split(":")[0] not in ("", "0", "root"), f"{n}: runs as a non-root user")
    init = services.get("topics-init", {})
    c.check(init.get("command", [])[:2] == ["topics", "apply"], "topics-init runs `feedrank topics apply`")
    kafka_env = services.get("kafka", {}).get("environment", {})
    c.check("controller" in kafka_env.get("KAFKA_PROCESS_ROLES", ""), "kafka runs in KRaft mode (controller role)")
    c.check(kafka_env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false", "kafka does not auto-create topics")
    for n, s in services.items():
        for dep in (s.get("depends_on") or {}):
            c.check(dep in services, f"{n}: depends_on {dep} exists")
        for p in s.get("ports", []):
            c.check(str(p).startswith("127.0.0.1:"), f"{n}: port {p} is published on loopback only")
        for v in s.get("volumes", []):
            src = str(v).split(":")[0]
            if src.startswith("."):
                c.check(os.path.exists(os.path.join(DOCKER, src)), f"{n}: bind mount {src} exists")
        build = s.get("build")
        if isinstance(build, dict):
            ctx = os.path.normpath(os.path.join(DOCKER, build.get("context", ".")))
            dockerfile = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
            ok = os.path.isfile(dockerfile)
            c.check(ok, f"{n}: build dockerfile {os.path.relpath(dockerfile, ROOT)} exists")
            if ok and "target" in build:
                stages = re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", open(dockerfile).read())
                c.check(build["target"] in stages, f"{n}: build target {build['target']} is a Dockerfile stage", f"{stages}")

    prom = load_yaml(os.path.join(DOCKER, "prometheus", "prometheus.yml"))
    jobs = {j["job_name"]: j for j in prom.get("scrape_configs", [])}
    fr = jobs.get("feedrank")
    c.check(fr is not None, "prometheus scrapes a job named feedrank")
    if fr:
        targets = [t for sc in fr.get("static_configs", []) for t in sc.get("targets", [])]
        want = {f"{n}:{s.get('environment', {}).get('FEEDRANK_HTTP_PORT', '8080')}" for n, s in workers.items()}
        c.check(set(targets) == want, "prometheus targets are exactly the replicas' HTTP ports", f"{targets} vs {sorted(want)}")
        c.check(fr.get("metrics_path", "/metrics") == "/metrics", "prometheus scrapes /metrics")

    ds = load_yaml(os.path.join(DOCKER, "grafana", "provisioning", "datasources", "prometheus.yaml"))
    sources = ds.get("datasources", [])
    c.check(len(sources) == 1 and sources[0].get("url") == "http://prometheus:9090", "grafana's datasource is the prometheus service")
    uid = sources[0].get("uid") if sources else None
    prov = load_yaml(os.path.join(DOCKER, "grafana", "provisioning", "dashboards", "feedrank.yaml"))
    path_in_container = prov["providers"][0]["options"]["path"]
    mounts = [v for v in services.get("grafana", {}).get("volumes", []) if str(v).split(":")[1] == path_in_container]
    c.check(len(mounts) == 1, f"the dashboards directory is mounted at {path_in_container}")
    if dashboards is None:
        dashboards = [(os.path.relpath(f, ROOT), load_json(f))
                      for f in sorted(glob.glob(os.path.join(DOCKER, "grafana", "dashboards", "*.json")))]
    c.check(len(dashboards) >= 1, "a dashboard JSON is provisioned")
    for name, dash in dashboards:
        c.check(bool(dash.get("uid")) and bool(dash.get("title")), f"{name}: has a uid and a title")
        panels = [p for p in dash.get("panels", []) if p.get("type") != "row"]
        used = set()
        bad_ds = []
        for p in panels:
            if p.get("datasource", {}).get("uid") != uid:
                bad_ds.append(p.get("title"))
            for t in p.get("targets", []):
                used |= {base_metric(m) for m in metric_names(t.get("expr", ""))}
        c.check(not bad_ds, f"{name}: every panel uses the provisioned datasource", f"{bad_ds}")
        functions = {"rate", "sum", "histogram_quantile", "scalar", "avg", "max", "label_values"}
        unknown = sorted(used - METRICS - functions)
        c.check(not unknown, f"{name}: queries use only the worker's metrics", f"unknown {unknown}")
        c.check(METRICS <= used, f"{name}: every worker metric is on a panel", f"missing {sorted(METRICS - used)}")
        ids = [p.get("id") for p in dash.get("panels", [])]
        c.check(len(ids) == len(set(ids)), f"{name}: panel ids are unique")
        for fragment, metric in REQUIRED_PANELS.items():
            hit = [p["title"] for p in panels if fragment in p["title"].lower()
                   and any(metric in t.get("expr", "") for t in p.get("targets", []))]
            c.check(bool(hit), f"{name}: a '{fragment}' panel queries {metric}")
    return c.done()


# -------------------------------------------------------------------------------- dockerfile

def check_dockerfile():
    c = Checks("dockerfile")
    text = open(os.path.join(DOCKER, "Dockerfile")).read().replace("\\\n", " ")
    ignore = [l.strip() for l in open(os.path.join(DOCKER, "Dockerfile.dockerignore")) if l.strip() and not l.startswith("#")]

    def included(rel):
        keep = True
        for pat in ignore:
            neg = pat.startswith("!")
            p = pat[1:] if neg else pat
            p = p.rstrip("/")
            if fnmatch.fnmatch(rel, p) or rel.startswith(p + "/"):
                keep = neg
        return keep

    for line in text.splitlines():
        m = re.match(r"\s*COPY\s+(.*)", line)
        if not m or "--from=" in m.group(1):
            continue
        parts = [p for p in m.group(1).split() if not p.startswith("--")]
        for src in parts[:-1]:
            rel = src.rstrip("/")
            c.check(os.path.exists(os.path.join(ROOT, rel)), f"COPY source {rel} exists")
            c.check(included(rel), f"COPY source {rel} is in the build context (Dockerfile.dockerignore)")
    c.check(re.search(r"(?m)^USER\s+(?!0\b|root\b)\S+", text) is not None, "the runtime runs as a non-root USER")
    c.check("HEALTHCHECK" in text, "the image has a HEALTHCHECK")
    stages = re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", text)
    last = re.findall(r"(?im)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text)[-1]
    c.check(last[1] == "runtime", "the default (last) stage is the runtime image", f"{last}")
    c.check({"librdkafka", "builder", "runtime-base", "demo", "runtime"} <= set(stages), "stages: librdkafka, builder, runtime, demo", f"{stages}")
    return c.done()


# -------------------------------------------------------------------------------------- helm

SERVICEMONITOR_SCHEMA = {
    # FeedRank's own subset of the prometheus-operator ServiceMonitor v1 CRD: the fields the
    # chart sets, with the CRD's types and patterns (the full CRD is not vendored here).
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {"type": "object", "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}}},
                "endpoints": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False,
                    "properties": {
                        "port": {"type": "string"}, "path": {"type": "string"},
                        "interval": {"type": "string", "pattern": r"^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                        "scrapeTimeout": {"type": "string", "pattern": r"^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                    }}},
            },
        },
    },
}


def pod_specs(doc):
    kind = doc["kind"]
    if kind in ("Deployment", "Job"):
        return [doc["spec"]["template"]["spec"]]
    if kind == "CronJob":
        return [doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    return []


def check_rendered(c, label, docs, values):
    import kubernetes_validate

    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
        if d["kind"] == "ServiceMonitor":
            errs = schema_errors(SERVICEMONITOR_SCHEMA, d)
            c.check(not errs, f"{label}: ServiceMonitor {d['metadata']['name']} (FeedRank's subset schema)", "; ".join(errs))
            continue
        for v in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(d, v, strict=True)
                c.check(True, f"{label}: {d['kind']} {d['metadata']['name']} valid for Kubernetes {v} (strict)")
            except Exception as e:  # ValidationError, SchemaNotFoundError
                c.check(False, f"{label}: {d['kind']} {d['metadata']['name']} valid for Kubernetes {v} (strict)",
                        str(e).splitlines()[0][:300])

    deps = by_kind.get("Deployment", [])
    if not c.check(len(deps) == 1, f"{label}: one Deployment"):
        return
    dep = deps[0]
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    labels = pod["metadata"]["labels"]
    main = next(x for x in spec["containers"] if x["name"] == "feedrank")
    c.check(main["args"][0] == "serve", f"{label}: the container runs `feedrank serve`")
    c.check(main["livenessProbe"]["httpGet"]["path"] == "/health", f"{label}: liveness probe on /health")
    c.check(main["readinessProbe"]["httpGet"]["path"] == "/ready", f"{label}: readiness probe on /ready")
    c.check(main.get("startupProbe", {}).get("httpGet", {}).get("path") == "/health", f"{label}: startup probe on /health")
    c.check(spec.get("terminationGracePeriodSeconds", 30) > 30, f"{label}: terminationGracePeriodSeconds exceeds the 30 s drain")
    res = main.get("resources", {})
    c.check("memory" in res.get("requests", {}) and "memory" in res.get("limits", {}), f"{label}: memory requests and limits set")
    for name, s in [(x["name"], x) for x in spec["containers"] + spec.get("initContainers", [])]:
        sc = s.get("securityContext", {})
        c.check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
                and "ALL" in sc.get("capabilities", {}).get("drop", []),
                f"{label}: container {name} read-only root, no privilege escalation, no capabilities")
    psc = spec.get("securityContext", {})
    c.check(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0, f"{label}: pod runs as non-root")
    cms = {d["metadata"]["name"] for d in by_kind.get("ConfigMap", [])}
    for ps in [spec] + [p for d in docs for p in pod_specs(d) if d is not dep]:
        for x in ps["containers"]:
            for ef in x.get("envFrom", []):
                ref = ef.get("configMapRef", {}).get("name")
                c.check(ref in cms, f"{label}: envFrom ConfigMap {ref} is rendered")
            envs = [e["name"] for e in x.get("env", [])]
            for e in x.get("env", []):
                for var in re.findall(r"\$\(([A-Z0-9_]+)\)", str(e.get("value", ""))):
                    c.check(var in envs[: envs.index(e["name"])], f"{label}: {e['name']} uses $({var}) defined before it")
                if "secretKeyRef" in e.get("valueFrom", {}):
                    c.check(bool(e["valueFrom"]["secretKeyRef"].get("name")), f"{label}: {e['name']} names its Secret")
        vols = {v["name"] for v in ps.get("volumes", [])}
        for x in ps["containers"] + ps.get("initContainers", []):
            for m in x.get("volumeMounts", []):
                c.check(m["name"] in vols, f"{label}: {x['name']} mounts volume {m['name']}, which exists")
    bundle_source = values.get("bundle", {}).get("source", "pvc")
    mounts = {m["mountPath"] for m in main.get("volumeMounts", [])}
    c.check((bundle_source == "image") != ("/bundle" in mounts), f"{label}: bundle from {bundle_source}")
    for svc in by_kind.get("Service", []):
        sel = svc["spec"]["selector"]
        c.check(all(labels.get(k) == v for k, v in sel.items()), f"{label}: Service selects the worker pods")
        ports = {p["name"] for p in main["ports"]}
        c.check(all(p["targetPort"] in ports for p in svc["spec"]["ports"]), f"{label}: Service targets a named container port")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        sel = pdb["spec"]["selector"]["matchLabels"]
        c.check(all(labels.get(k) == v for k, v in sel.items()), f"{label}: PodDisruptionBudget selects the worker pods")
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        c.check(hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"], f"{label}: HPA scales the Deployment")
        c.check("replicas" not in dep["spec"], f"{label}: with an HPA the Deployment leaves replicas to it")
    for sm in by_kind.get("ServiceMonitor", []):
        svc = by_kind["Service"][0]
        c.check(all(svc["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items()),
                f"{label}: ServiceMonitor selects the Service")
        c.check(sm["spec"]["endpoints"][0]["port"] in {p["name"] for p in svc["spec"]["ports"]}
                and sm["spec"]["endpoints"][0]["path"] == "/metrics", f"{label}: ServiceMonitor scrapes the http port's /metrics")
    for job in by_kind.get("Job", []):
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        c.check(args[:2] == ["topics", "apply"], f"{label}: Job {job['metadata']['name']} runs `feedrank topics apply`")
        c.check("pre-install" in job["metadata"].get("annotations", {}).get("helm.sh/hook", ""), f"{label}: the topics Job is a pre-install hook")


def check_helm():
    import helm_python as helm

    c = Checks("helm")
    print(f"  helm SDK {helm.helm_sdk_version()} (helm-c {helm.helm_c_version()}), library {helm.library_path}")
    value_sets = [("default values", {})]
    for f in sorted(glob.glob(os.path.join(CHART, "ci", "*.yaml"))):
        value_sets.append((os.path.relpath(f, CHART), load_yaml(f) or {}))
    c.check(len(value_sets) >= 3, "default values plus at least two ci/ value sets")
    for label, values in value_sets:
        for kv in ("v" + KUBE_VERSIONS[0], "v" + KUBE_VERSIONS[1]):
            report = helm.lint(CHART, values, strict=True, namespace="feedrank", kube_version=kv)
            problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + \
                       [{"error": e} for e in report.get("errors", [])]
            c.check(not problems, f"{label}: helm lint --strict (kube {kv})", "; ".join(str(p.get("error")) for p in problems))
        with helm.Chart.load(CHART) as chart:
            try:
                rendered = chart.render(values, name="fr", namespace="feedrank", is_install=True)
            except helm.HelmError as e:
                c.check(False, f"{label}: renders", str(e))
                continue
        docs = []
        for name, text in sorted(rendered.items()):
            if not name.endswith((".yaml", ".yml")):
                continue
            for d in yaml.safe_load_all(text):
                if d:
                    docs.append(d)
        c.check(bool(docs), f"{label}: renders {len(docs)} manifests")
        check_rendered(c, label, docs, values)
    for f in sorted(glob.glob(os.path.join(CHART, "ci", "invalid", "*.yaml"))):
        first = open(f).readline()
        m = re.match(r"#\s*expect:\s*(.+)", first)
        label = os.path.relpath(f, CHART)
        if not c.check(m is not None, f"{label}: has an '# expect:' line"):
            continue
        with helm.Chart.load(CHART) as chart:
            try:
                chart.render(load_yaml(f) or {}, name="fr", namespace="feedrank", is_install=True)
                c.check(False, f"{label}: is refused", "it rendered")
            except helm.HelmError as e:
                c.check(m.group(1).strip() in str(e), f"{label}: is refused with '{m.group(1).strip()}'", str(e)[:300])
    return c.done()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["compose", "dockerfile", "helm"])
    args = ap.parse_args()
    return {"compose": check_compose, "dockerfile": check_dockerfile, "helm": check_helm}[args.what]()


if __name__ == "__main__":
    sys.exit(main())
