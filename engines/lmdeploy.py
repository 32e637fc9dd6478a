"""LMDeploy's api_server (`lmdeploy serve api_server`): launch command, endpoints, Prometheus load metrics.

Metrics: on by default in 0.18 (`--disable-metrics` turns them off: lmdeploy/cli/utils.py,
ArgumentHelper.disable_metrics; seen on an LMDeploy 0.18 server). Older releases needed
`--enable-metrics` (docs/en/advance/metrics.md), which 0.18 no longer takes, so nothing is added for it.
Prefix caching is off by default (`--enable-prefix-caching`, lmdeploy/cli/utils.py): `prefix_caching` adds it.
Cached tokens: recent releases build the usage with `UsageInfo.build(..., cached_tokens=...)`
(lmdeploy/serve/openai/chat_completions/serving.py), read from `usage.prompt_tokens_details.cached_tokens`
like vLLM's; older ones report no cached tokens at all (UsageInfo had only prompt/completion/total).
Not confirmed on 0.18 itself: the GPU-host recording shows the counter `lmdeploy:cached_tokens_total`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engines.prometheus import EngineLoad, add, mean, parse_samples, total
from engines.servers import LaunchSpec, ManagedServer, launch_env

HEALTH_PATH = "/health"  # 200 while healthy or sleeping, else 503 (lmdeploy/serve/openai/endpoints/management.py)
METRICS_PATH = "/metrics"
# Where a request's pixel budget goes: min_pixels / max_pixels inside each image_url (lmdeploy/vl/model/qwen2.py).
PIXEL_OPTIONS = "image_url"
DEFAULT_PORT = 23333
ABORT_PATH = None  # a stream the client leaves is aborted at once (measured on the H200: 7 tokens)
# LMDeploy 0.18 continues a final assistant message by itself: its chat template drops the generation
# prompt and the assistant's end marker (lmdeploy/model.py, messages2prompt); no request field for it.
CONTINUE_FIELDS: dict[str, bool] = {}
CONTINUOUS_USAGE = False  # its StreamOptions has include_usage only
# TurboMind (LMDeploy's default backend) is a CUDA 12 build the GPU host cannot load; the PyTorch engine runs
# there (gpu-lmdeploy/run_lmdeploy.sh), so it is the default here.
DEFAULT_BACKEND = "pytorch"


# The PyTorch engine's weight formats (`--model-format`; awq and compressed-tensors checkpoints are found from
# their quantization_config anyway, fp8 also quantizes an unquantized model online; it has no GPTQ linear) and
# its KV-cache quantization (`--quant-policy`, lmdeploy/messages.py QuantPolicy), LMDeploy 0.18.
QUANTIZATIONS = frozenset({"awq", "compressed-tensors", "fp8", "mxfp4"})
QUANT_POLICY = {"int4": "4", "int8": "8", "fp8": "16", "fp8_e4m3": "16", "fp8_e5m2": "17"}
KV_CACHE_DTYPES = frozenset({"auto", *QUANT_POLICY})


def launch_options(spec: LaunchSpec) -> list[str]:
    """LMDeploy's flags for the spec's weight format, KV-cache quantization and prefix caching."""
    argv = ["--model-format", spec.quantization] if spec.quantization else []
    if spec.kv_cache_dtype in QUANT_POLICY:
        argv += ["--quant-policy", QUANT_POLICY[spec.kv_cache_dtype]]
    return argv + (["--enable-prefix-caching"] if spec.prefix_caching else [])


def launch_command(
    spec: LaunchSpec, python: str = sys.executable, *, backend: str = DEFAULT_BACKEND
) -> tuple[list[str], dict[str, str]]:
    """argv and environment that start LMDeploy's OpenAI-compatible api_server for `spec`."""
    argv = [python, "-m", "lmdeploy", "serve", "api_server", spec.model, "--backend", backend,
            "--server-name", spec.host, "--server-port", str(spec.port), "--tp", str(spec.tensor_parallel)]  # fmt: skip
    if spec.served_model_name:
        argv += ["--model-name", spec.served_model_name]
    argv += [*launch_options(spec), *spec.extra_args]
    return argv, launch_env(spec)


def parse_load(text: str) -> EngineLoad:
    """Load from LMDeploy's /metrics (labels model_name, engine = dp rank).

    Names from lmdeploy/metrics/loggers.py (PrometheusStatLogger) and the 0.18 recording in
    gpu-lmdeploy/README.md. Waiting adds the engine's queue (`lmdeploy:num_requests_waiting`) and requests the
    API server holds for a free request handle (`lmdeploy:num_api_requests_waiting`). LMDeploy exposes a
    hit-rate gauge, not hit/query token counters.
    """
    s = parse_samples(text)
    return EngineLoad(
        running=total(s, "lmdeploy:num_requests_running"),
        waiting=add(total(s, "lmdeploy:num_requests_waiting"), total(s, "lmdeploy:num_api_requests_waiting")),
        kv_cache_usage=mean(s, "lmdeploy:gpu_cache_usage_perc"),
        prefix_cache_hit_rate=mean(s, "lmdeploy:prefix_cache_hit_rate"),
    )


def managed_server(
    spec: LaunchSpec, log_path: Path, *, python: str = sys.executable, backend: str = DEFAULT_BACKEND, nice: int = 0
) -> ManagedServer:
    """A ManagedServer running LMDeploy for `spec` (not started yet)."""
    argv, env = launch_command(spec, python, backend=backend)
    return ManagedServer(argv, env, spec.url, log_path, health_path=HEALTH_PATH, nice=nice)
