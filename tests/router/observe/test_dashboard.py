"""docs/grafana-dashboard.json loads, covers what an operator watches, and names only metrics (and
labels) the router exports."""

from __future__ import annotations

import json
import re

from prometheus_client.metrics import MetricWrapperBase

from router.observe.metrics import Metrics
from tests.conftest import ROOT

DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported() -> dict[str, set[str]]:
    """Every series name the router exports, with its labels (`le` too for histogram buckets)."""
    out: dict[str, set[str]] = {}
    for metric in vars(Metrics()).values():
        if isinstance(metric, MetricWrapperBase):  # its declared name, type and label names
            for suffix in _SUFFIXES[metric._type]:
                out[metric._name + suffix] = set(metric._labelnames) | ({"le"} if suffix == "_bucket" else set())
    return out


def test_the_dashboard_names_only_exported_metrics_and_labels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert exprs and all(p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"])
    known = exported()
    used: set[str] = set()
    for expr in exprs:
        for name, selector in re.findall(r"\b(roadwork_[a-z_]+)(\{[^}]*\})?", expr):
            assert name in known, f"{name} (in {expr!r}) is not a metric the router exports"
            used.add(name)
            for label in re.findall(r"(\w+)\s*=~?", selector):
                assert label in known[name], f"{name} has no label {label!r} ({expr!r})"
        for group in re.findall(r"by \(([^)]*)\)", expr):
            names = set(re.findall(r"\b(roadwork_[a-z_]+)", expr))
            labels = set.union(*(known[n] for n in names))
            for label in (g.strip() for g in group.split(",")):
                assert label in labels, f"grouping by {label!r}, which {sorted(names)} lack ({expr!r})"
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("requests by kind and code", "first token", "detection latency", "breakers", "engine load", "bulk"):
        assert topic in titles, f"no panel on {topic}"
    must = {"roadwork_requests_total", "roadwork_ttft_seconds_bucket", "roadwork_detection_seconds_bucket",
            "roadwork_breaker_state", "roadwork_engine_load", "roadwork_batch_items_total"}  # fmt: skip
    assert must <= used, must - used
