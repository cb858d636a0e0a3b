"""deploy/prometheus/alerts.yml and the Grafana dashboard: well-formed, and every metric they query is one that
/metrics really exposes (promtool is not at hand; this is the check that matters most)."""

import json
import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from billing.quotas import QuotaExceeded
from billing.tests.factories import workspace_on_plan
from monitoring.metrics import session_open
from rag.search import search
from tools.executors import tool_call

DEPLOY = Path(settings.BASE_DIR) / "deploy"
TOKEN = "rules-secret-7"
# A metric name right before its label matcher or range: `name{...}` or `name[5m]`.
METRIC = re.compile(r"\b([a-z_][a-z0-9_]*)\s*[{\[]")
PROMQL_WORDS = {"by", "without", "on", "ignoring", "offset"}


def _rules() -> list[dict]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "toolport-operations.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_alert_is_complete():
    rules = _rules()
    names = {rule["alert"] for rule in rules}
    assert {
        "ToolportReadinessFailing",
        "ToolportHttpErrorRate",
        "ToolportToolCallErrorRate",
        "ToolportToolCallLatencyP95High",
        "ToolportIngestionBacklog",
        "ToolportQuotaDenialsSpike",
    } <= names
    assert len(names) == len(rules)
    for rule in rules:
        assert rule["expr"].strip()
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s"))
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


@pytest.mark.django_db
def test_the_rules_and_the_dashboard_query_metrics_that_exist(client, settings):
    settings.METRICS_TOKEN = TOKEN
    workspace = workspace_on_plan(api_calls=1, ai_operations=None)
    tool_call(workspace_id=workspace.pk, name="echo", arguments={"text": "hi"}, transport="rest")
    with pytest.raises(QuotaExceeded):
        tool_call(workspace_id=workspace.pk, name="echo", arguments={"text": "hi"}, transport="rest")
    search(workspace_id=workspace.pk, query="anything")
    client.get("/readyz")
    client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    with session_open("websocket"):  # as a WebSocket connection holds it
        exposition = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    exposed = {sample.name for family in text_string_to_metric_families(exposition) for sample in family.samples}
    exposed |= {"up"}  # Prometheus's own, per target

    expressions = [rule["expr"] for rule in _rules()] + _dashboard_expressions()
    queried = {name for expression in expressions for name in METRIC.findall(expression)} - PROMQL_WORDS

    assert queried, "no metric found in the expressions"
    assert queried <= exposed, sorted(queried - exposed)
    assert {"mcp_tool_calls_total", "mcp_tool_call_duration_seconds_bucket", "celery_queue_length"} <= queried
