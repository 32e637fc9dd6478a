"""One nested, validated configuration: a TOML file, then `ROADWORK__SECTION__KEY=value` env overrides.

Defaults are the quick start's: every pool served by the embedded engine, one placeholder detector.
Validation errors name the bad key, e.g. `pools.vllm.replicas: ...`.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engines.registry import SERVER_KINDS
from router.errors import ConfigError

ENV_PREFIX = "ROADWORK__"
DEFAULT_CONFIG = Path(__file__).parent / "config" / "default.toml"
Kind = Literal["multi_turn", "batch", "single_shot"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(50051, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9464, ge=0, le=65535, description="0 disables the Prometheus endpoint")
    max_message_bytes: int = Field(16 * 1024 * 1024, gt=0)
    max_concurrent_streams: int = Field(256, gt=0)
    grace_s: float = Field(10.0, ge=0)
    auth_token_env: str = Field(
        "", description="env var holding a bearer token every RouterService call must send ('' = no check)"
    )
    workers: int = Field(
        1, ge=1, le=64,
        description="processes serving the port (SO_REUSEPORT; > 1 needs a fixed port); the first one owns "
        "launched engine servers and /metrics, all of them run bulk items",
    )  # fmt: skip
    worker_index: int = Field(0, ge=0, description="set by the router for its extra worker processes; leave 0")
    tls_cert_file: str = Field("", description="PEM certificate (chain): serve TLS instead of plaintext")
    tls_key_file: str = Field("", description="PEM private key for tls_cert_file")

    @model_validator(mode="after")
    def _workers_need_a_port(self) -> ServerConfig:
        if self.workers > 1 and self.port == 0:
            raise ValueError("workers > 1 needs a fixed port (the processes share it), not port 0")
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerConfig:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        return self


class LimitsConfig(_Strict):
    max_image_bytes: int = Field(10 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(40_000_000, gt=0)
    max_question_chars: int = Field(4000, gt=0)
    max_batch_items: int = Field(10_000, gt=0)


class StorageConfig(_Strict):
    path: str = Field("~/.local/state/roadwork-router/router.sqlite3", description="SQLite file; ':memory:' for none")
    url: str = Field("", description="postgresql://user:password@host:port/db for replicas on several hosts; '': path")
    pool_max: int = Field(8, ge=1, description="PostgreSQL connections this process may hold")
    connect_timeout_s: float = Field(5.0, gt=0, description="how long to wait for PostgreSQL at start")

    @field_validator("url")
    @classmethod
    def _postgresql_url(cls, url: str) -> str:
        if url and not url.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"{url!r} is not a postgresql:// URL (leave it empty for the SQLite file at storage.path)")
        return url

    def resolved(self) -> str:
        return self.path if self.path == ":memory:" else str(Path(self.path).expanduser())


class SessionsConfig(_Strict):
    ttl_s: int = Field(1800, gt=0)
    max_ttl_s: int = Field(86400, gt=0)
    max_history_turns: int = Field(8, ge=0)


class GenerationConfig(_Strict):
    max_tokens: int = Field(128, gt=0)
    max_tokens_cap: int = Field(2048, gt=0)
    temperature: float = Field(0.0, ge=0, le=2)
    system_prompt: str = (
        "You answer questions about street images for roadwork (construction zones). "
        "Use the detection summary; say when you are unsure."
    )
    detections_in_prompt: bool = Field(
        True, description="give the model the detection summary in its system prompt (False: the image alone)"
    )
    verdict_model_weight: float = Field(
        0.5, ge=0, le=1, description="weight of the model's call against the detection's in a merged verdict"
    )


class RoutingConfig(_Strict):
    """Request kind -> engine pools, first choice first, then the fallback order."""

    multi_turn: list[str] = ["sglang", "vllm", "lmdeploy"]
    batch: list[str] = ["lmdeploy", "vllm", "sglang"]
    single_shot: list[str] = ["vllm", "sglang", "lmdeploy"]
    degrade_to_detections: bool = Field(True, description="answer from detections alone when no pool can")

    def pools_for(self, kind: Kind) -> list[str]:
        return list(getattr(self, kind))


class BreakerConfig(_Strict):
    """Circuit breakers (per pool and per replica): when to open, how long to wait, how to probe."""

    enabled: bool = True
    consecutive_failures: int = Field(5, ge=1, description="engine failures in a row that open the breaker")
    failure_rate: float = Field(0.5, gt=0, le=1, description="...or this share of failures within window_s")
    min_requests: int = Field(10, ge=1, description="outcomes in the window before failure_rate applies")
    window_s: float = Field(30.0, gt=0)
    cooldown_s: float = Field(5.0, gt=0, description="OPEN this long, then HALF_OPEN lets probes through")
    half_open_probes: int = Field(1, ge=1, description="probe requests in flight at once while HALF_OPEN")
    probe_successes: int = Field(2, ge=1, description="successful probes that close the breaker again")


class RetryConfig(_Strict):
    """Retries of one pool's engine calls before the first token: exponential backoff with jitter."""

    max_attempts: int = Field(3, ge=1, description="tries per pool (each on another replica when there is one)")
    initial_backoff_s: float = Field(0.05, ge=0)
    max_backoff_s: float = Field(1.0, ge=0)
    jitter_s: float = Field(0.05, ge=0)


class Price(_Strict):
    prompt_per_1k: float = Field(0.0, ge=0)
    completion_per_1k: float = Field(0.0, ge=0)
    cached_prompt_per_1k: float | None = Field(None, ge=0, description="default: prompt_per_1k")


class LaunchConfig(_Strict):
    """An engine server the router starts itself (and restarts when it dies, and stops on shutdown)."""

    model: str = Field(description="model directory or hub id")
    port: int = Field(gt=0, lt=65536)
    host: str = "127.0.0.1"
    gpus: list[int] = Field(default_factory=list, description="CUDA_VISIBLE_DEVICES; [] = inherit")
    tensor_parallel: int = Field(1, ge=1)
    served_model_name: str = ""
    python: str = Field("", description="interpreter of the engine's environment; '' = the router's")
    extra_args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    start_timeout_s: float = Field(600.0, gt=0, description="until /health answers")
    nice: int = Field(0, ge=0, le=19)
    quantization: str = Field(
        "", description="weights, in the engine's names: vLLM/SGLang --quantization (fp8, awq, gptq...), LMDeploy "
        "--model-format (awq, fp8, ...); '' = none or the checkpoint's own",
    )  # fmt: skip
    kv_cache_dtype: str = Field(
        "", description="KV cache: vLLM/SGLang --kv-cache-dtype (fp8, fp8_e4m3, fp8_e5m2...), LMDeploy int8, int4, "
        "fp8, fp8_e5m2 (--quant-policy); '' = the engine's default",
    )  # fmt: skip
    prefix_caching: bool = Field(True, description="the engine's prefix cache (follow-ups and repeated images)")

    @model_validator(mode="after")
    def _tp_fits(self) -> LaunchConfig:
        if self.gpus and self.tensor_parallel > len(self.gpus):
            raise ValueError(f"tensor_parallel {self.tensor_parallel} needs at least that many gpus, got {self.gpus}")
        return self


SERVER_ENGINES = ("vllm", "sglang", "lmdeploy")


class PoolConfig(_Strict):
    engine: Literal["embedded", "openai_http", "vllm", "sglang", "lmdeploy"] = Field(
        "embedded", description="vllm/sglang/lmdeploy: openai_http plus that server's metrics and launcher"
    )
    replicas: list[str] = Field(default_factory=list, description="base URLs of servers started elsewhere")
    launch: list[LaunchConfig] = Field(default_factory=list, description="servers the router starts itself")
    metrics_interval_s: float = Field(2.0, ge=0, description="scrape each server's /metrics; 0 = off")
    priority_scheduling: bool = Field(
        False,
        description="send each request's priority (interactive 0, bulk 1); the servers must schedule by it "
        "(vLLM --scheduling-policy priority, added to launched vLLM servers)",
    )
    model: str = Field("", description="served model id; '' = ask the server (/v1/models)")
    vision: bool = Field(False, description="send the image to the model (a vision-language model)")
    min_pixels: int = Field(56 * 56, gt=0, description="vision: smaller images are enlarged to this area")
    max_pixels: int = Field(
        1280 * 28 * 28, gt=0, description="vision: larger images are shrunk to this area (aspect kept) before sending"
    )
    pixel_multiple: int = Field(
        28, gt=0, description="vision: the model's image sides snap to multiples of this (Qwen2/2.5-VL 28, Qwen3-VL 32)"
    )
    per_request_pixels: bool = Field(
        False,
        description="vision: also send min/max_pixels as per-request processor options (vLLM: mm_processor_kwargs, "
        "which vLLM >= 0.3x takes only with --trust-request-mm-kwargs; LMDeploy: in image_url; SGLang has none)",
    )
    context_tokens: int = Field(
        0, ge=0, description="the model's context length; 0 = what the server reports (/v1/models max_model_len)"
    )
    api_key_env: str = Field("", description="env var holding a bearer token for the servers")
    http_client: Literal["aiohttp", "lean"] = Field(
        "lean",
        description="the engine stream's HTTP client: aiohttp (traced by its OpenTelemetry instrumentation) or "
        "lean (the router's own HTTP/1.1 for plain http without a proxy; docs/benchmarks.md compares them)",
    )
    policy: Literal["round_robin", "least_loaded", "power_of_two", "session_affinity", "image_affinity"] = (
        "least_loaded"
    )
    max_in_flight: int = Field(64, gt=0, description="concurrent requests per replica")
    batch_share: float = Field(0.5, gt=0, le=1, description="share of max_in_flight bulk items may use")
    batch_share_busy: float | Literal["auto"] | None = Field(
        None,
        description="bulk share while interactive requests are in flight or were within interactive_hold_s "
        "(None = batch_share: no shrinking; 'auto' = sized by AIMD so that interactive answers' time per token "
        "stays within interactive_slowdown x its value without bulk)",
    )
    interactive_slowdown: float = Field(
        1.3, gt=1, description="with batch_share_busy = 'auto': the interactive slowdown bulk may cause"
    )
    interactive_hold_s: float = Field(1.0, ge=0, description="how long the bulk window stays shrunk after one")
    timeout_s: float = Field(120.0, gt=0, description="longest gap between two bytes from the engine")
    first_token_timeout_s: float = Field(
        30.0,
        gt=0,
        description="an engine silent this long (at most half the request's time left) before its first token"
        " is failed over (hung replica)",
    )
    stall_s: float = Field(
        5.0,
        ge=0,
        description="a replica whose streams in flight yield nothing this long, while other replicas' streams do,"
        " is marked hung: new requests go elsewhere and its streams fail over (0 = off; engine servers only)",
    )
    migrate_on_failure: bool = Field(
        True,
        description="an answer whose replica fails after some text resumes on another replica of this pool, or a"
        " later pool of the same model (the partial answer sent as an assistant message to continue)",
    )
    max_queue: int = Field(
        256, ge=0, description="interactive requests waiting for a replica slot; beyond: RESOURCE_EXHAUSTED"
    )
    breaker: BreakerConfig | None = Field(None, description="this pool's breakers; None = the top-level [breaker]")
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="fields merged into every request, e.g. {ignore_eos = true}, top_k"
    )
    price: Price = Price()

    @field_validator("batch_share_busy")
    @classmethod
    def _share(cls, v: float | str | None) -> float | str | None:
        if isinstance(v, float) and not 0 < v <= 1:
            raise ValueError("must be a share in (0, 1], 'auto' or unset")
        return v

    @model_validator(mode="after")
    def _pixels(self) -> PoolConfig:
        if self.min_pixels > self.max_pixels:
            raise ValueError(f"min_pixels {self.min_pixels} is over max_pixels {self.max_pixels}")
        if self.min_pixels < self.pixel_multiple**2:
            raise ValueError(f"min_pixels {self.min_pixels} is under one token's area, pixel_multiple^2")
        if self.per_request_pixels and self.engine == "sglang":
            raise ValueError("per_request_pixels: SGLang takes none per request (set its --mm-process-config)")
        return self

    @model_validator(mode="after")
    def _replicas_match_engine(self) -> PoolConfig:
        if self.engine == "openai_http" and not self.replicas:
            raise ValueError("engine 'openai_http' needs at least one URL in replicas")
        if self.engine in SERVER_ENGINES and not (self.replicas or self.launch):
            raise ValueError(f"engine '{self.engine}' needs replicas (URLs) or launch (servers to start)")
        if self.launch and self.engine not in SERVER_ENGINES:
            raise ValueError(f"launch needs engine = one of {', '.join(SERVER_ENGINES)}, not '{self.engine}'")
        for i, lc in enumerate(self.launch):
            _check_launch_options(self.engine, i, lc)
        ports = [lc.port for lc in self.launch]
        if len(set(ports)) != len(ports):
            raise ValueError(f"launch ports must differ, got {ports}")
        for url in self.replicas:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"replica '{url}' is not an http(s) URL")
        return self


def _check_launch_options(engine: str, index: int, lc: LaunchConfig) -> None:
    """Refuse a quantization or KV-cache dtype the engine does not take, naming the key."""
    kind = SERVER_KINDS[engine]
    for key, value, allowed in (
        ("quantization", lc.quantization, kind.quantizations),
        ("kv_cache_dtype", lc.kv_cache_dtype, kind.kv_cache_dtypes),
    ):
        if value and value not in allowed:
            raise ValueError(
                f"launch[{index}].{key} = {value!r} is not one {engine} takes; it takes: {', '.join(sorted(allowed))}"
            )


class EmbeddedConfig(_Strict):
    model: str = Field(
        "",
        description="local path, bundled model name (roadwork-vlm) or hub id; '' = a random placeholder built locally",
    )
    device: str = "cpu"
    threads: int = Field(0, ge=0, description="torch threads; 0 = torch's default")


class DetectorConfig(_Strict):
    name: str
    kind: Literal["yolo", "rtdetr", "classifier"] = Field(
        "yolo", description="yolo, rtdetr (ultralytics detectors) or classifier (an image-level P(roadwork), no boxes)"
    )
    weights: str
    weight: float = Field(1.0, ge=0)
    vote_threshold: float | None = Field(None, gt=0, le=1, description="None = detection.vote_threshold")
    device: str = Field(
        "auto",
        description='"auto" (the visible GPUs round-robin, else the CPU), "cpu", "cuda:N", or "cuda" (a GPU required)',
    )
    backend: Literal["auto", "fused", "predict"] = Field(
        "auto",
        description="fused: a device's YOLO members run as one step; predict: ultralytics predict(); "
        "auto: fused on GPUs, predict on the CPU",
    )
    conf: float = Field(0.25, gt=0, lt=1)
    imgsz: int = Field(640, gt=0)
    evidence_classes: list[str] = Field(default_factory=list, description="[] = every class is evidence")
    class_names: list[str] = Field(default_factory=list, description="names for a .yaml-built model")
    notice: str = Field("", description="caveat shown with every detection (e.g. demo weights)")


class DetectionConfig(_Strict):
    vote_threshold: float = Field(0.5, gt=0, le=1, description="evidence at which a member votes roadwork")
    majority: float = Field(2 / 3, gt=0, le=1, description="share of the answering weight a roadwork verdict needs")
    quorum: float = Field(0.5, ge=0, le=1, description="share of the configured weight that must answer")
    calibration: str = Field("", description="calibration JSON (training/calibrate.py); '' = uncalibrated")
    max_batch: int = Field(16, ge=1, le=256, description="most images one detector forward pass takes")
    batch_wait_ms: float = Field(0.0, ge=0, le=1000, description="wait for more images before a batch")
    cuda_graphs: bool = Field(True, description="replay fused members as CUDA graphs on GPUs")
    gpu_decode: bool = Field(True, description="fused runners on GPUs decode JPEGs there (nvjpeg), not PIL")
    deadline_s: float = Field(10.0, gt=0)
    cache_size: int = Field(4096, ge=0)
    shared_cache: str = Field("", description="redis://host:6379/0: a detection cache replicas share ('' = none)")
    shared_cache_ttl_s: int = Field(86400, gt=0, description="how long a shared detection is kept")
    process: Literal["auto", "shared", "local"] = Field(
        "auto", description="shared: one detection process per host fed by every router process; local: "
        "each router process runs its own models; auto: shared when server.workers > 1",
    )  # fmt: skip

    @field_validator("shared_cache")
    @classmethod
    def _redis_url(cls, url: str) -> str:
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"{url!r} is not a redis://, rediss:// or unix:// URL ('' for no shared cache)")
        return url


def detection_shared(config: Config) -> bool:
    """Whether detection runs in the host's shared detection process (`detection.process`)."""
    mode = config.detection.process
    return mode == "shared" or (mode == "auto" and config.server.workers > 1)


class BatchConfig(_Strict):
    workers: int = Field(4, gt=0, description="items in flight per router")
    detect_batch: int = Field(16, ge=1, le=256, description="a detect-only job's items detected together")
    poll_s: float = Field(0.2, gt=0)
    item_timeout_s: float = Field(
        300.0, gt=0, description="longest one bulk item may take; a job's options.item_timeout overrides it"
    )
    lease_s: float = Field(
        15.0, ge=0.5, description="a running item's lease, renewed by its router; expired, any replica reclaims it"
    )


class ObserveConfig(_Strict):
    trace_endpoint: str = Field(
        "", description="OTLP/gRPC collector for traces (e.g. http://127.0.0.1:4317); '' = off unless "
        "OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set",
    )  # fmt: skip
    service_name: str = Field("roadwork-router", description="the traces' service.name (OTEL_SERVICE_NAME wins)")
    log_format: Literal["text", "json"] = Field(
        "text", description="json: one object per line with trace_id, span_id and request_id"
    )


class Config(_Strict):
    server: ServerConfig = ServerConfig()
    limits: LimitsConfig = LimitsConfig()
    storage: StorageConfig = StorageConfig()
    sessions: SessionsConfig = SessionsConfig()
    generation: GenerationConfig = GenerationConfig()
    routing: RoutingConfig = RoutingConfig()
    pools: dict[str, PoolConfig] = Field(default_factory=dict)
    embedded: EmbeddedConfig = EmbeddedConfig()
    detection: DetectionConfig = DetectionConfig()
    detectors: list[DetectorConfig] = Field(default_factory=list)
    batch: BatchConfig = BatchConfig()
    breaker: BreakerConfig = BreakerConfig()
    retry: RetryConfig = RetryConfig()
    observe: ObserveConfig = ObserveConfig()

    @field_validator("detectors")
    @classmethod
    def _unique_detectors(cls, v: list[DetectorConfig]) -> list[DetectorConfig]:
        names = [d.name for d in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"detector names must be unique; repeated: {dupes}")
        return v

    @model_validator(mode="after")
    def _routes_name_pools(self) -> Config:
        for kind in ("multi_turn", "batch", "single_shot"):
            pools = self.routing.pools_for(kind)
            if not pools:
                raise ValueError(f"routing.{kind} must name at least one pool")
            for name in pools:
                if name not in self.pools:
                    raise ValueError(f"routing.{kind} names pool '{name}', which is not defined under [pools]")
        return self


def _set_path(tree: dict[str, Any], path: list[str], raw: str) -> None:
    """Set `tree[a][b]...` from an env string, parsed as JSON when it parses (numbers, bools, lists).

    A number steps into a list: ROADWORK__DETECTORS__0__DEVICE=cuda sets the first detector's device."""
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    node: Any = tree
    for depth, key in enumerate(path):
        where = ".".join(path[: depth + 1])
        last = depth == len(path) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError(
                    f"{'.'.join(path)}: '{key}' is not an index of the {len(node)} entries of {where[: -len(key) - 1]}"
                )
            if last:
                node[int(key)] = value
                return
            node = node[int(key)]
        elif isinstance(node, dict):
            if last:
                node[key] = value
                return
            node = node.setdefault(key, {})
        else:
            raise ConfigError(f"{'.'.join(path)}: cannot override inside '{path[depth - 1]}', which is not a table")


def apply_env(tree: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Apply `ROADWORK__A__B=value` overrides (keys lower-cased) to a config tree."""
    for name, raw in sorted(env.items()):
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            _set_path(tree, [p.lower() for p in name[len(ENV_PREFIX) :].split("__")], raw)
    return tree


def _format(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{loc}: {err['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Load the file (default: the bundled quick-start config), apply env overrides, validate."""
    source = Path(path) if path else DEFAULT_CONFIG
    try:
        tree = tomllib.loads(source.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {source} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {source} is not valid TOML: {exc}") from exc
    apply_env(tree, dict(os.environ) if env is None else env)
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_format(exc)}") from exc
