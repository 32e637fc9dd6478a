"""The engine servers the router knows by name: how to launch each, where its health and metrics are."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engines import lmdeploy, sglang, vllm
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


SERVER_KINDS: dict[str, ServerKind] = {
    m.__name__.rsplit(".", 1)[-1]: ServerKind(
        m.__name__.rsplit(".", 1)[-1], m.launch_command, m.parse_load, m.HEALTH_PATH, m.METRICS_PATH, m.DEFAULT_PORT
    )
    for m in (vllm, sglang, lmdeploy)
}
