"""Config loading, env overrides and error messages that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import detection_shared, load_config
from router.errors import ConfigError


def test_default_config_is_valid() -> None:
    cfg = load_config(env={})
    assert set(cfg.pools) == {"sglang", "lmdeploy", "vllm"}
    assert cfg.routing.multi_turn[0] == "sglang" and cfg.routing.batch[0] == "lmdeploy"
    assert cfg.routing.single_shot[0] == "vllm" and cfg.pools["sglang"].policy == "session_affinity"
    assert [d.weights for d in cfg.detectors] == ["roadwork-yolo11n.pt", "roadwork-yolov8n.pt"]
    assert all(d.notice for d in cfg.detectors)  # demo weights carry their caveat


def test_env_overrides_parse_json_values() -> None:
    cfg = load_config(env={
        "ROADWORK__SERVER__PORT": "6000",
        "ROADWORK__POOLS__VLLM__ENGINE": "openai_http",
        "ROADWORK__POOLS__VLLM__REPLICAS": '["http://127.0.0.1:8000", "http://127.0.0.1:8001"]',
        "ROADWORK__ROUTING__SINGLE_SHOT": '["vllm"]',
        "OTHER_VAR": "ignored",
    })  # fmt: skip
    assert cfg.server.port == 6000
    assert cfg.pools["vllm"].replicas == ["http://127.0.0.1:8000", "http://127.0.0.1:8001"]
    assert cfg.routing.single_shot == ["vllm"]


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"ROADWORK__SERVER__PORT": "abc"}, "server.port"),
        ({"ROADWORK__SERVER__PORT": "70000"}, "server.port"),
        ({"ROADWORK__SERVER__PROT": "1"}, "server.prot: Extra inputs are not permitted"),
        ({"ROADWORK__POOLS__VLLM__ENGINE": "openai_http"}, "pools.vllm: Value error, engine 'openai_http' needs"),
        ({"ROADWORK__POOLS__VLLM__POLICY": "random"}, "pools.vllm.policy"),
        ({"ROADWORK__ROUTING__BATCH": '["nope"]'}, "routing.batch names pool 'nope'"),
        ({"ROADWORK__LIMITS__MAX_IMAGE_BYTES": "0"}, "limits.max_image_bytes"),
        ({"ROADWORK__SERVER__PORT__X": "1"}, "server.port.x: cannot override"),
        ({"ROADWORK__DETECTORS__5__DEVICE": "cpu"}, "detectors.5.device: '5' is not an index of the 2 entries"),
        ({"ROADWORK__DETECTORS__0__BACKEND": "tensorrt"}, "detectors.0.backend"),
        ({"ROADWORK__DETECTION__MAJORITY": "0"}, "detection.majority"),
        ({"ROADWORK__DETECTION__PROCESS": "both"}, "detection.process: Input should be 'auto', 'shared' or 'local'"),
        ({"ROADWORK__BREAKER__COOLDOWN_S": "0"}, "breaker.cooldown_s"),
        ({"ROADWORK__RETRY__MAX_ATTEMPTS": "0"}, "retry.max_attempts"),
        ({"ROADWORK__POOLS__VLLM__BREAKER": '{"failure_rate": 2}'}, "pools.vllm.breaker.failure_rate"),
        ({"ROADWORK__POOLS__VLLM__MAX_QUEUE": "-1"}, "pools.vllm.max_queue"),
        ({"ROADWORK__POOLS__VLLM__BATCH_SHARE_BUSY": "1.5"}, "pools.vllm.batch_share_busy"),
        ({"ROADWORK__POOLS__VLLM__BATCH_SHARE_BUSY": "fast"}, "pools.vllm.batch_share_busy"),
        ({"ROADWORK__POOLS__VLLM__INTERACTIVE_SLOWDOWN": "0.9"}, "pools.vllm.interactive_slowdown"),
    ],
)
def test_errors_name_the_bad_key(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(env=env)
    assert words in str(exc.value)


@pytest.mark.parametrize(
    ("process", "workers", "shared"),
    [("auto", 1, False), ("auto", 2, True), ("shared", 1, True), ("local", 4, False)],
)
def test_detection_process_auto_is_shared_with_several_workers(process: str, workers: int, shared: bool) -> None:
    env = {"ROADWORK__DETECTION__PROCESS": process, "ROADWORK__SERVER__WORKERS": str(workers)}
    assert detection_shared(load_config(env=env)) is shared


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\nport = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, env={})
    dupes = tmp_path / "dupes.toml"
    dupes.write_text(
        '[pools.p]\nengine="embedded"\n[routing]\nmulti_turn=["p"]\nbatch=["p"]\nsingle_shot=["p"]\n'
        '[[detectors]]\nname="a"\nweights="w.pt"\n[[detectors]]\nname="a"\nweights="w.pt"\n'
    )
    with pytest.raises(ConfigError, match="detectors: Value error, detector names must be unique"):
        load_config(dupes, env={})


def test_env_overrides_step_into_lists() -> None:
    config = load_config(env={"ROADWORK__DETECTORS__1__DEVICE": "cuda", "ROADWORK__DETECTORS__0__WEIGHT": "2.5"})
    assert [d.device for d in config.detectors] == ["auto", "cuda"]
    assert [d.weight for d in config.detectors] == [2.5, 1.0]


def test_launched_vllm_schedules_by_priority_when_the_pool_sends_it() -> None:
    import json

    from router.dispatch.launcher import Launcher

    launch = [
        {"model": "/m", "port": 8001},
        {"model": "/m", "port": 8002, "extra_args": ["--scheduling-policy", "fcfs"]},
    ]
    env = {"ROADWORK__POOLS__VLLM__ENGINE": "vllm", "ROADWORK__POOLS__VLLM__LAUNCH": json.dumps(launch),
           "ROADWORK__POOLS__VLLM__PRIORITY_SCHEDULING": "true", "ROADWORK__STORAGE__PATH": ":memory:"}  # fmt: skip
    first, second = Launcher(load_config(env=env)).servers
    assert (
        first.server.argv[-2:] == ["--scheduling-policy", "priority"]
        and "vllm.entrypoints.openai.api_server" in first.server.argv
    )
    assert second.server.argv.count("--scheduling-policy") == 1  # the user's own choice stands
