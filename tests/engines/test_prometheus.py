"""Prometheus exposition parsing and the EngineLoad summary (no server needed)."""

from __future__ import annotations

import pytest

from engines.prometheus import EngineLoad, add, mean, parse_samples, total

TEXT = """\
# HELP demo:requests_total Requests.
# TYPE demo:requests_total counter
demo:requests_total{engine="0",model_name="m"} 12.0
demo:requests_total{engine="1",model_name="m"} 30.0
# HELP demo:requests_created Requests.
# TYPE demo:requests_created gauge
demo:requests_created{engine="0",model_name="m"} 1.7957360060852067e+09
# HELP demo:usage Usage.
# TYPE demo:usage gauge
demo:usage{engine="0",model_name="m"} 0.25
demo:usage{engine="1",model_name="m"} 0.75
demo:broken{path="a\\"b"} NaN
untyped_total 3
"""


def test_samples_are_keyed_by_sample_name_with_labels() -> None:
    s = parse_samples(TEXT)
    assert s["demo:requests_total"] == [
        ({"engine": "0", "model_name": "m"}, 12.0),
        ({"engine": "1", "model_name": "m"}, 30.0),
    ]
    assert "demo:requests" not in s  # the counter's family name is not a sample name
    assert s["untyped_total"] == [({}, 3.0)]
    assert "demo:broken" not in s  # NaN samples are dropped


def test_total_and_mean_over_label_sets() -> None:
    s = parse_samples(TEXT)
    assert total(s, "demo:requests_total") == 42.0
    assert mean(s, "demo:usage") == 0.5
    assert total(s, "nope") is None and mean(s, "nope") is None


def test_first_present_name_wins_and_aliases_are_never_added() -> None:
    s = parse_samples(TEXT)
    assert total(s, "demo:new_total", "demo:requests_total") == 42.0
    assert total(s, "demo:requests_total", "untyped_total") == 42.0


def test_collapse_counts_series_differing_only_in_those_labels_once() -> None:
    s = parse_samples('r{dp="0",tp="0"} 4\nr{dp="0",tp="1"} 4\nr{dp="1",tp="0"} 2\nr{dp="1",tp="1"} 3\n')
    assert total(s, "r") == 13.0
    assert total(s, "r", collapse=("tp",)) == 7.0  # max within each dp: 4 + 3


def test_add_skips_missing_values() -> None:
    assert add(1.0, None, 2.5) == 3.5
    assert add(None, None) is None
    assert add(0.0) == 0.0


def test_malformed_text_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse_samples('vllm:num_requests_running{engine="0"} many\n')


def test_hit_rate_from_counters_over_an_interval() -> None:
    before = EngineLoad(prefix_cache_hits=100.0, prefix_cache_queries=400.0)
    after = EngineLoad(prefix_cache_hits=400.0, prefix_cache_queries=800.0)
    assert after.hit_rate_since() == 0.5  # lifetime
    assert after.hit_rate_since(before) == 0.75  # 300 of the last 400
    assert before.hit_rate_since(after) == 0.25  # counters went down (restart): lifetime figure
    assert EngineLoad(prefix_cache_hits=0.0, prefix_cache_queries=0.0).hit_rate_since() is None


def test_hit_rate_falls_back_to_the_engine_gauge() -> None:
    assert EngineLoad(prefix_cache_hit_rate=0.3).hit_rate_since(EngineLoad()) == 0.3
    assert EngineLoad().hit_rate_since() is None
