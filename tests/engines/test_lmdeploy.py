"""LMDeploy: launch command and /metrics parsing (fixtures in the exposition LMDeploy's logger writes)."""

from __future__ import annotations

import pytest

from engines import lmdeploy
from engines.prometheus import EngineLoad
from engines.servers import LaunchSpec

# Names, HELP texts and labels (model_name, engine = dp rank) from lmdeploy/metrics/loggers.py; the
# prefix-cache gauge as recorded on 0.18 (gpu-lmdeploy/README.md; its HELP text here is a stand-in).
# Two DP engines.
METRICS = """\
# HELP lmdeploy:num_api_requests_waiting Number of requests waiting for free request handles.
# TYPE lmdeploy:num_api_requests_waiting gauge
lmdeploy:num_api_requests_waiting{engine="0",model_name="qwen2-rand"} 2.0
lmdeploy:num_api_requests_waiting{engine="1",model_name="qwen2-rand"} 0.0
# HELP lmdeploy:num_requests_running Number of requests in model execution batches.
# TYPE lmdeploy:num_requests_running gauge
lmdeploy:num_requests_running{engine="0",model_name="qwen2-rand"} 7.0
lmdeploy:num_requests_running{engine="1",model_name="qwen2-rand"} 9.0
# HELP lmdeploy:num_requests_waiting Number of requests waiting to be processed.
# TYPE lmdeploy:num_requests_waiting gauge
lmdeploy:num_requests_waiting{engine="0",model_name="qwen2-rand"} 19.0
lmdeploy:num_requests_waiting{engine="1",model_name="qwen2-rand"} 4.0
# HELP lmdeploy:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE lmdeploy:gpu_cache_usage_perc gauge
lmdeploy:gpu_cache_usage_perc{engine="0",model_name="qwen2-rand"} 0.003
lmdeploy:gpu_cache_usage_perc{engine="1",model_name="qwen2-rand"} 0.007
# HELP lmdeploy:prefix_cache_hit_rate Prefix cache hit rate.
# TYPE lmdeploy:prefix_cache_hit_rate gauge
lmdeploy:prefix_cache_hit_rate{engine="0",model_name="qwen2-rand"} 0.25
lmdeploy:prefix_cache_hit_rate{engine="1",model_name="qwen2-rand"} 0.75
# HELP lmdeploy:prompt_tokens_total Number of prefill tokens processed.
# TYPE lmdeploy:prompt_tokens_total counter
lmdeploy:prompt_tokens_total{engine="0",model_name="qwen2-rand"} 8576.0
"""


def test_launch_command_uses_pytorch_backend_and_prefix_caching() -> None:
    spec = LaunchSpec(model="/root/llama-rand", port=23334, gpu_ids=(1,), served_model_name="qwen2-rand",
                      extra_args=("--session-len", "4096"))  # fmt: skip
    argv, env = lmdeploy.launch_command(spec, python="/usr/bin/python3")
    assert argv == [
        "/usr/bin/python3", "-m", "lmdeploy", "serve", "api_server", "/root/llama-rand", "--backend", "pytorch",
        "--server-name", "127.0.0.1", "--server-port", "23334", "--tp", "1", "--model-name", "qwen2-rand",
        "--enable-prefix-caching", "--session-len", "4096",
    ]  # fmt: skip
    assert "--enable-metrics" not in argv  # on by default in 0.18, and no longer a flag
    assert env["CUDA_VISIBLE_DEVICES"] == "1"


def test_launch_command_other_backend_and_tp() -> None:
    spec = LaunchSpec(model="m", host="0.0.0.0", port=23333, gpu_ids=(4, 5, 6, 7), tensor_parallel=4)
    argv, env = lmdeploy.launch_command(spec, backend="turbomind")
    assert argv[argv.index("--backend") + 1] == "turbomind"
    assert argv[argv.index("--tp") + 1] == "4"
    assert "--model-name" not in argv
    assert env["CUDA_VISIBLE_DEVICES"] == "4,5,6,7"


def test_parse_load_two_engines() -> None:
    load = lmdeploy.parse_load(METRICS)
    assert load.running == 16.0
    assert load.waiting == 25.0  # 19 + 4 in the engines, 2 waiting for a request handle
    assert load.kv_cache_usage == pytest.approx(0.005)
    assert load.prefix_cache_hit_rate == pytest.approx(0.5)
    assert load.prefix_cache_hits is None and load.prefix_cache_queries is None
    assert load.hit_rate_since() == pytest.approx(0.5)


def test_older_server_without_api_queue_or_hit_rate() -> None:
    text = '# TYPE lmdeploy:num_requests_waiting gauge\nlmdeploy:num_requests_waiting{engine="0",model_name="m"} 0.0\n'
    load = lmdeploy.parse_load(text)
    assert load.waiting == 0.0  # present and zero stays zero
    assert load.running is None and load.prefix_cache_hit_rate is None and load.kv_cache_usage is None


def test_no_metrics_gives_all_none() -> None:
    assert lmdeploy.parse_load("") == EngineLoad()
