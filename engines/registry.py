"""The engine servers the router knows by name: how to launch each, where its health and metrics are."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from engines import lmdeploy, sglang, vllm
from engines.openai_http import PixelOptions
from engines.prometheus import EngineLoad
from engines.servers import LaunchSpec


@dataclass(frozen=True)
class ServerKind:
    """One engine's server: its launch command, health and metrics endpoints, and metrics parser."""

    name: str
    launch_command: Callable[[LaunchSpec, str], tuple[list[str], dict[str, str]]]
    parse_load: Callable[[str], EngineLoad]
    health_path: str
    metrics_path: str
    default_port: int
    pixel_options: PixelOptions  # where a request's pixel budget goes (engines/openai_http.py)
    abort_path: str | None  # where a left stream is aborted by request id; None: leaving it is enough
    continue_fields: dict[str, bool]  # body fields that make it continue a final assistant message
    continuous_usage: bool  # whether it streams a running token count (stream_options.continuous_usage_stats)
    quantizations: frozenset[str]  # weight quantization values it takes (LaunchSpec.quantization)
    kv_cache_dtypes: frozenset[str]  # KV-cache dtypes it takes (LaunchSpec.kv_cache_dtype)


SERVER_KINDS: dict[str, ServerKind] = {
    m.__name__.rsplit(".", 1)[-1]: ServerKind(
        m.__name__.rsplit(".", 1)[-1],
        m.launch_command,
        m.parse_load,
        m.HEALTH_PATH,
        m.METRICS_PATH,
        m.DEFAULT_PORT,
        cast(PixelOptions, m.PIXEL_OPTIONS),
        m.ABORT_PATH,
        m.CONTINUE_FIELDS,
        m.CONTINUOUS_USAGE,
        m.QUANTIZATIONS,
        m.KV_CACHE_DTYPES,
    )
    for m in (vllm, sglang, lmdeploy)
}
