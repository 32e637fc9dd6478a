"""SGLang's server (`python -m sglang.launch_server`): launch command, endpoints, Prometheus load metrics.

Cached tokens: `usage.prompt_tokens_details.cached_tokens`, only with `--enable-cache-report` ("Return number
of cached tokens in usage.prompt_tokens_details for each openai request", python/sglang/srt/server_args.py),
always added below. `/metrics` exists only with `--enable-metrics` (SGLang's docs/references/production_metrics.md
and the GPU host's tested launch script), also always added.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engines.prometheus import EngineLoad, add, mean, parse_samples, total
from engines.servers import LaunchSpec, ManagedServer, launch_env

HEALTH_PATH = "/health"  # also /health_generate, which runs a one-token generation (gpu-sglang/README.md)
METRICS_PATH = "/metrics"
# Where a request's pixel budget goes: nowhere, SGLang has no per-request pixel options (--mm-process-config).
PIXEL_OPTIONS = "none"
DEFAULT_PORT = 30000
# A stream the client leaves is aborted only 2 s after SGLang's response ends (create_abort_task in
# srt/managers/tokenizer_manager.py): on the H200 a cancelled Ask kept generating 3.3 s (988 tokens). So
# the router names each request (`rid`) and aborts it by name at once (POST /abort_request {"rid": ...}).
ABORT_PATH = "/abort_request"
# A final (text) assistant message becomes a prefix of the answer; without the flag SGLang 0.5.14 turns it
# into a user message (sglang/srt/entrypoints/openai/serving_chat.py, _handle_last_assistant_message).
CONTINUE_FIELDS = {"continue_final_message": True}
CONTINUOUS_USAGE = True  # `stream_options.continuous_usage_stats` (srt/entrypoints/openai/protocol.py)
# By default only (attention-)TP rank 0 records scheduler metrics; with --enable-metrics-for-all-schedulers
# (server_args.py) each TP rank reports its batch, so series differing only in tp_rank count once (their
# max). Assumes DP-attention ranks are told apart by a dp_rank label (not confirmed on a multi-GPU run).
_RANK_LABELS = ("tp_rank",)


# `--quantization` (QUANTIZATION_CHOICES) and `--kv-cache-dtype` choices of SGLang 0.5.14 (srt/server_args.py).
QUANTIZATIONS = frozenset(
    "awq fp8 mxfp8 gptq marlin gptq_marlin awq_marlin bitsandbytes gguf modelopt modelopt_fp8 modelopt_fp4 "
    "nvfp4_online modelopt_mixed petit_nvfp4 w8a8_int8 w8a8_fp8 moe_wna16 qoq w4afp8 mxfp4 auto-round "
    "compressed-tensors modelslim quark quark_int4fp8_moe quark_mxfp4 mlx_q4 mlx_q8 unquant".split()
)
KV_CACHE_DTYPES = frozenset("auto fp8_e5m2 fp8_e4m3 bf16 bfloat16 fp4_e2m1".split())


def launch_options(spec: LaunchSpec) -> list[str]:
    """SGLang's flags for the spec's quantization, KV-cache dtype and prefix (radix) caching."""
    argv = ["--quantization", spec.quantization] if spec.quantization else []
    argv += ["--kv-cache-dtype", spec.kv_cache_dtype] if spec.kv_cache_dtype else []
    return argv + ([] if spec.prefix_caching else ["--disable-radix-cache"])


def launch_command(spec: LaunchSpec, python: str = sys.executable) -> tuple[list[str], dict[str, str]]:
    """argv and environment that start SGLang's OpenAI-compatible server for `spec`."""
    argv = [python, "-m", "sglang.launch_server", "--model-path", spec.model, "--host", spec.host,
            "--port", str(spec.port), "--tp-size", str(spec.tensor_parallel)]  # fmt: skip
    if spec.served_model_name:
        argv += ["--served-model-name", spec.served_model_name]
    argv += ["--enable-metrics", "--enable-cache-report", *launch_options(spec), *spec.extra_args]
    return argv, launch_env(spec)


def parse_load(text: str) -> EngineLoad:
    """Load from SGLang's /metrics (labels engine_type, model_name, tp_rank, pp_rank, ...).

    Gauges from SchedulerMetricsCollector, counters from TokenizerMetricsCollector, both in
    python/sglang/srt/metrics/collector.py. Waiting counts the grammar queue too. Prefix-cache counters:
    `sglang:cached_tokens_total` (newer versions split it by `cache_source`) over `sglang:prompt_tokens_total`,
    both counted per finished request.
    """
    s = parse_samples(text)
    queued = total(s, "sglang:num_queue_reqs", collapse=_RANK_LABELS)
    grammar_queued = total(s, "sglang:num_grammar_queue_reqs", collapse=_RANK_LABELS)
    return EngineLoad(
        running=total(s, "sglang:num_running_reqs", collapse=_RANK_LABELS),
        waiting=add(queued, grammar_queued),
        kv_cache_usage=mean(s, "sglang:token_usage"),
        prefix_cache_hit_rate=mean(s, "sglang:cache_hit_rate"),
        prefix_cache_hits=total(s, "sglang:cached_tokens_total"),
        prefix_cache_queries=total(s, "sglang:prompt_tokens_total"),
    )


def managed_server(spec: LaunchSpec, log_path: Path, *, python: str = sys.executable, nice: int = 0) -> ManagedServer:
    """A ManagedServer running SGLang for `spec` (not started yet)."""
    argv, env = launch_command(spec, python)
    return ManagedServer(argv, env, spec.url, log_path, health_path=HEALTH_PATH, nice=nice)
