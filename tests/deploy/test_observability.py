"""The Grafana dashboard and the Prometheus alert rules: every metric they query is one the
gateway's source really registers (so renaming a metric fails here), the alerts fire on what
they name and not on the near-miss (promtool), and the chart ships exactly these files."""

import json
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import REPO, find, objects

DASHBOARD = REPO / "deploy" / "grafana" / "forge-dashboard.json"
ALERTS = REPO / "deploy" / "prometheus" / "forge-alerts.yaml"
ALERT_TESTS = REPO / "deploy" / "prometheus" / "forge-alerts.test.yaml"

# A metric is registered where its name is the first argument of a prometheus constructor or
# of the small `counter(`/`gauge(` helpers the metric modules define around them.
REGISTRATION = re.compile(
    r"\b(Opts::new|HistogramOpts::new|IntCounter::new|IntGauge::new|Counter::new|Gauge::new|counter|gauge)"
    r"\(\s*\"(forge_[a-z0-9_]+)\""
)
METRIC = re.compile(r"\bforge_[a-z0-9_]+\b")
# Metrics the dashboard and alerts use that are registered on branches not merged into this
# tree yet, with where they are registered there (names read from those branches). A name
# passes while it is listed here or registered; once it is registered, the last test below
# asks for its line to go, so this list cannot hide a rename for long.
LANDING = {
    # name: (where it is registered, its labels)
    "forge_plugin_calls_total": ("plugin-host: src/plugins/metrics.rs", {"plugin", "outcome"}),
    "forge_plugin_duration_seconds": ("plugin-host: src/plugins/metrics.rs (histogram)", {"plugin"}),
    "forge_plugin_findings_total": ("plugin-host: src/plugins/metrics.rs", {"plugin", "category"}),
    "forge_plugin_reloads_total": ("plugin-host: src/plugins/metrics.rs", {"result"}),
    "forge_evidence_records_total": ("evidence: src/evidence/log.rs", set()),
    "forge_evidence_records_dropped_total": ("evidence: src/evidence/log.rs", {"reason"}),
    "forge_evidence_checkpoints_total": ("evidence: src/evidence/log.rs", set()),
    "forge_evidence_write_errors_total": ("evidence: src/evidence/log.rs", set()),
}
# The labels a Kubernetes scrape adds to every series.
TARGET_LABELS = {"namespace", "pod"}
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


# A metric's label names: the first `&["a", "b"]` after its name (before the next metric), or
# the third string argument of a one-label helper (`counter(name, help, "outcome")`).
LABEL_LIST = re.compile(r'&\[((?:\s*"[a-z_]+"\s*,?)*)\]')
ONE_LABEL = re.compile(r'^"[a-z0-9_]+"\s*,\s*"[^"]*"\s*,\s*"([a-z_]+)"\s*\)')
UNLABELLED = {"IntCounter::new", "IntGauge::new", "Counter::new", "Gauge::new"}


def registered_metrics():
    """{name: (is_histogram, label names)} for every metric registered under src/."""
    found = {}
    for source in (REPO / "src").rglob("*.rs"):
        text = source.read_text()
        matches = list(REGISTRATION.finditer(text))
        for i, match in enumerate(matches):
            constructor, name = match.groups()
            end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
            rest = text[match.start(2) - 1 : min(end, match.end() + 400)]
            labels = set()
            if constructor not in UNLABELLED:
                if one := ONE_LABEL.match(rest):
                    labels = {one.group(1)}
                elif listed := LABEL_LIST.search(rest):
                    labels = set(re.findall(r'"([a-z_]+)"', listed.group(1)))
            histogram = found.get(name, (False, set()))[0] or constructor == "HistogramOpts::new"
            found[name] = (histogram, labels)
    return found


def known_metrics(landing=True):
    metrics = registered_metrics()
    if landing:
        metrics = {name: (name.endswith("_seconds"), labels) for name, (_, labels) in LANDING.items()} | metrics
    return metrics


def series_base(name, metrics):
    """The metric a series belongs to (histograms expose _bucket, _sum and _count)."""
    if name in metrics:
        return name
    base = next((name[: -len(s)] for s in HISTOGRAM_SERIES if name.endswith(s)), None)
    return base if base in metrics and metrics[base][0] else None


def unregistered(expressions, landing=True):
    metrics = known_metrics(landing)
    return {name for expr in expressions for name in METRIC.findall(expr) if not series_base(name, metrics)}


SELECTOR = re.compile(r"\b(forge_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_]+)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\bby \(([^)]*)\)")


def unknown_labels(expressions):
    """Label names an expression uses that its metrics do not have: in selectors, and in
    `by (...)` (which may name any label of the metrics the expression reads)."""
    metrics = known_metrics()
    problems = set()
    for expr in expressions:
        bases = {series_base(n, metrics) for n in METRIC.findall(expr)} - {None}
        allowed = (
            TARGET_LABELS | {"le"} if any(n.endswith("_bucket") for n in METRIC.findall(expr)) else set(TARGET_LABELS)
        )
        for base in bases:
            allowed |= metrics[base][1]
        for name, matchers in SELECTOR.findall(expr):
            base = series_base(name, metrics)
            own = (
                TARGET_LABELS | (metrics[base][1] if base else set()) | ({"le"} if name.endswith("_bucket") else set())
            )
            problems |= {f"{name}{{{label}}}" for label in MATCHER.findall(matchers) if label not in own}
        for group in GROUPING.findall(expr):
            problems |= {f"by ({label})" for label in re.findall(r"[a-z_]+", group) if label not in allowed}
    return problems


def dashboard_panels():
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def dashboard_expressions():
    return [t["expr"] for p in dashboard_panels() for t in p["targets"]]


def alert_rules():
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def test_source_scan_finds_the_gateways_metrics_and_their_labels():
    metrics = registered_metrics()
    # If the scan broke, every name would be "unregistered" for the wrong reason.
    assert {"forge_mcp_requests_total", "forge_policy_decisions_total", "forge_upstream_errors_total"} <= set(metrics)
    assert metrics["forge_mcp_request_duration_seconds"] == (True, {"method", "outcome"})
    assert metrics["forge_mcp_requests_total"] == (False, {"method", "outcome"})
    assert metrics["forge_policy_decisions_total"] == (False, {"outcome"})
    assert metrics["forge_sessions_active"] == (False, set())
    assert metrics["forge_tls_handshake_failures_total"] == (False, set())


def test_unregistered_names_are_caught():
    assert unregistered(["rate(forge_mcp_requests_totl[5m])"]) == {"forge_mcp_requests_totl"}
    assert unregistered(["rate(forge_plugin_calls_totl[5m])"]) == {"forge_plugin_calls_totl"}
    assert unregistered(["forge_mcp_requests_total_bucket"]) == {"forge_mcp_requests_total_bucket"}
    assert unregistered(["histogram_quantile(0.9, rate(forge_mcp_request_duration_seconds_bucket[5m]))"]) == set()


def test_unknown_labels_are_caught():
    assert unknown_labels(['sum by (tool) (rate(forge_mcp_requests_total{outcome="denied"}[5m]))']) == {"by (tool)"}
    assert unknown_labels(['rate(forge_upstream_errors_total{reason="connect"}[5m])']) == {
        "forge_upstream_errors_total{reason}"
    }
    assert (
        unknown_labels(['sum by (le, pod) (rate(forge_mcp_request_duration_seconds_bucket{method="x"}[5m]))']) == set()
    )


def test_dashboard_queries_only_metrics_and_labels_the_gateway_exports():
    assert unregistered(dashboard_expressions()) == set()
    assert unknown_labels(dashboard_expressions()) == set()


def test_alerts_query_only_metrics_and_labels_the_gateway_exports():
    assert unregistered(r["expr"] for r in alert_rules()) == set()
    assert unknown_labels(r["expr"] for r in alert_rules()) == set()
    for rule in alert_rules():
        # Annotations can only use labels the expression keeps.
        kept = set(re.findall(r"[a-z_]+", " ".join(GROUPING.findall(rule["expr"])))) | {"severity"}
        used = set(re.findall(r"\$labels\.([a-z_]+)", " ".join(rule["annotations"].values())))
        assert used <= kept, (rule["alert"], used - kept)


def test_dashboard_covers_what_operators_need():
    titles = " | ".join(p["title"].lower() for p in dashboard_panels())
    for needed in [
        "requests by method",
        "denials by method",
        "by tool",
        "latency",
        "detector findings by category",
        "plugin errors",
        "plugin call time",
        "policy reloads",
        "evidence",
        "upstream errors",
    ]:
        assert needed in titles, f"no panel for {needed}"
    latency = next(p for p in dashboard_panels() if p["title"] == "Request latency")
    assert [t["legendFormat"] for t in latency["targets"]] == ["p50", "p95", "p99"]


def test_dashboard_is_well_formed_grafana_json():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "namespace", "pod"}
    for panel in dashboard_panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"] and panel["description"], panel["title"]
        for target in panel["targets"]:
            # Every query follows the namespace and pod pickers.
            assert 'namespace=~"$namespace"' in target["expr"] and 'pod=~"$pod"' in target["expr"], target["expr"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24


def test_alerts_cover_the_failures_operators_page_on():
    names = {r["alert"] for r in alert_rules()}
    assert {
        "ForgeDenialSpike",
        "ForgePluginFailures",
        "ForgePolicyReloadFailed",
        "ForgeEvidenceWriteFailures",
        "ForgeUpstreamDown",
    } <= names
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def promtool():
    path = shutil.which("promtool")
    assert path, "promtool is missing: run tests/deploy/install.sh"
    return path


def test_promtool_accepts_the_rules():
    done = subprocess.run([promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_alerts_fire_on_failures_and_not_on_near_misses():
    """deploy/prometheus/forge-alerts.test.yaml: for each alert, series that must fire it and
    beside them series that must not."""
    done = subprocess.run(
        [promtool(), "test", "rules", ALERT_TESTS.name],
        cwd=ALERT_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tested = set(re.findall(r"alertname: (\w+)", ALERT_TESTS.read_text()))
    assert tested == {r["alert"] for r in alert_rules()}, "every alert has a unit test"


def test_a_broken_threshold_fails_the_alert_tests(tmp_path):
    """The unit tests can fail: a denial alert that needs 60% instead of 25% misses the spike."""
    shutil.copy(ALERT_TESTS, tmp_path)
    (tmp_path / ALERTS.name).write_text(ALERTS.read_text().replace(") > 0.25", ") > 0.6"))
    done = subprocess.run(
        [promtool(), "test", "rules", ALERT_TESTS.name], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "ForgeDenialSpike" in done.stdout + done.stderr


def test_chart_ships_these_alerts_and_this_dashboard():
    rendered = objects({"monitoring": {"prometheusRule": {"enabled": True}}})
    (rule,) = find(rendered, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text())
    (dashboard,) = find(rendered, "ConfigMap", "forge-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["forge-dashboard.json"]) == json.loads(DASHBOARD.read_text())


@pytest.mark.parametrize("enabled", [False, True])
def test_monitoring_objects_follow_their_switches(enabled):
    switch = {"enabled": enabled}
    rendered = objects({"monitoring": {"serviceMonitor": switch, "podMonitor": switch, "prometheusRule": switch}})
    kinds = {o["kind"] for o in rendered} & {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    assert kinds == ({"ServiceMonitor", "PodMonitor", "PrometheusRule"} if enabled else set())
    if enabled:
        (pods,) = find(rendered, "PodMonitor")
        # The sidecar's admin port name, as the webhook declares it.
        assert pods["spec"]["podMetricsEndpoints"][0]["port"] == "forge-admin"
        (service,) = find(rendered, "ServiceMonitor")
        injector = find(rendered, "Service")[0]
        assert service["spec"]["selector"]["matchLabels"].items() <= injector["metadata"]["labels"].items()


def test_landing_metrics_are_not_registered_yet():
    """When a branch in LANDING is merged, its metrics are registered: drop their lines, so
    from then on they are checked against the source like every other."""
    landed = set(LANDING) & set(registered_metrics())
    assert not landed, f"registered now, remove from LANDING in {__file__}: {sorted(landed)}"
