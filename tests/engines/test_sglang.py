"""SGLang: launch command and /metrics parsing (fixtures in the exposition SGLang's collector writes)."""

from __future__ import annotations

import pytest

from engines import sglang
from engines.prometheus import EngineLoad
from engines.servers import LaunchSpec

LABELS = 'engine_type="unified",model_name="qwen2-rand",moe_ep_rank="0",pp_rank="0"'

# Shapes from python/sglang/srt/metrics/collector.py (names, HELP texts) and the labels recorded on the GPU
# host (gpu-sglang/README.md); two DP ranks, and TP rank 1 duplicating rank 0 as with
# --enable-metrics-for-all-schedulers.
METRICS = f"""\
# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{{{LABELS},dp_rank="0",tp_rank="0"}} 40.0
sglang:num_running_reqs{{{LABELS},dp_rank="0",tp_rank="1"}} 40.0
sglang:num_running_reqs{{{LABELS},dp_rank="1",tp_rank="0"}} 24.0
# HELP sglang:num_queue_reqs The number of requests in the waiting queue.
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{{{LABELS},dp_rank="0",tp_rank="0"}} 3.0
sglang:num_queue_reqs{{{LABELS},dp_rank="1",tp_rank="0"}} 5.0
# HELP sglang:num_grammar_queue_reqs The number of requests in the grammar waiting queue.
# TYPE sglang:num_grammar_queue_reqs gauge
sglang:num_grammar_queue_reqs{{{LABELS},dp_rank="0",tp_rank="0"}} 1.0
# HELP sglang:token_usage The token usage.
# TYPE sglang:token_usage gauge
sglang:token_usage{{{LABELS},dp_rank="0",tp_rank="0"}} 0.3
sglang:token_usage{{{LABELS},dp_rank="1",tp_rank="0"}} 0.5
# HELP sglang:cache_hit_rate The prefix cache hit rate.
# TYPE sglang:cache_hit_rate gauge
sglang:cache_hit_rate{{{LABELS},dp_rank="0",tp_rank="0"}} 0.2
sglang:cache_hit_rate{{{LABELS},dp_rank="1",tp_rank="0"}} 0.4
# HELP sglang:gen_throughput The generation throughput (token/s).
# TYPE sglang:gen_throughput gauge
sglang:gen_throughput{{{LABELS},dp_rank="0",tp_rank="0"}} 29674.1
# HELP sglang:prompt_tokens_total Number of prefill tokens processed.
# TYPE sglang:prompt_tokens_total counter
sglang:prompt_tokens_total{{model_name="qwen2-rand"}} 8576.0
# HELP sglang:cached_tokens_total Number of cached prompt tokens by source (device/host/storage).
# TYPE sglang:cached_tokens_total counter
sglang:cached_tokens_total{{cache_source="device",model_name="qwen2-rand"}} 3000.0
sglang:cached_tokens_total{{cache_source="host",model_name="qwen2-rand"}} 216.0
"""


def test_launch_command_has_metrics_and_cache_report() -> None:
    spec = LaunchSpec(model="/root/qwen2-rand", host="0.0.0.0", port=30001, gpu_ids=(0, 1), tensor_parallel=2,
                      served_model_name="qwen2-rand", extra_args=("--attention-backend", "triton"))  # fmt: skip
    argv, env = sglang.launch_command(spec, python="/usr/bin/python3")
    assert argv == [
        "/usr/bin/python3", "-m", "sglang.launch_server", "--model-path", "/root/qwen2-rand",
        "--host", "0.0.0.0", "--port", "30001", "--tp-size", "2", "--served-model-name", "qwen2-rand",
        "--enable-metrics", "--enable-cache-report", "--attention-backend", "triton",
    ]  # fmt: skip
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert spec.url == "http://127.0.0.1:30001"


def test_launch_command_without_served_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    argv, env = sglang.launch_command(LaunchSpec(model="m", port=30000))
    assert "--served-model-name" not in argv
    assert argv[-2:] == ["--enable-metrics", "--enable-cache-report"]
    assert env["CUDA_VISIBLE_DEVICES"] == "3"  # no gpu_ids: the inherited value stays


def test_parse_load_sums_dp_ranks_once_per_tp_group() -> None:
    load = sglang.parse_load(METRICS)
    assert load.running == 64.0  # 40 (dp 0, reported by two TP ranks) + 24
    assert load.waiting == 9.0  # 3 + 5 queued, 1 in the grammar queue
    assert load.kv_cache_usage == pytest.approx(0.4)
    assert load.prefix_cache_hit_rate == pytest.approx(0.3)
    assert load.prefix_cache_hits == 3216.0  # device + host
    assert load.prefix_cache_queries == 8576.0
    assert load.hit_rate_since() == pytest.approx(3216 / 8576)


def test_parse_load_without_grammar_queue_or_counters() -> None:
    text = (
        "# TYPE sglang:num_queue_reqs gauge\n"
        'sglang:num_queue_reqs{model_name="m",tp_rank="0"} 2.0\n'
        "# TYPE sglang:cache_hit_rate gauge\n"
        'sglang:cache_hit_rate{model_name="m",tp_rank="0"} 0.007507552643049313\n'
    )
    load = sglang.parse_load(text)
    assert load.waiting == 2.0
    assert load.running is None and load.kv_cache_usage is None
    assert load.prefix_cache_hits is None and load.prefix_cache_queries is None
    assert load.hit_rate_since() == pytest.approx(0.007507552643049313)


def test_metrics_off_gives_all_none() -> None:
    load = sglang.parse_load('# HELP python_info x\n# TYPE python_info gauge\npython_info{version="3.12"} 1.0\n')
    assert load == EngineLoad()
