"""Launch options (quantization, KV-cache dtype, prefix caching) mapped to each engine's own flags."""

from __future__ import annotations

import pytest

from engines import lmdeploy, sglang, vllm
from engines.servers import LaunchSpec
from router.config import PoolConfig
from router.errors import ConfigError


def _spec(**kw: object) -> LaunchSpec:
    return LaunchSpec(model="m", **kw)  # type: ignore[arg-type]


def test_each_engine_gets_its_own_flags() -> None:
    fp8 = _spec(quantization="fp8", kv_cache_dtype="fp8_e5m2", prefix_caching=False)
    assert vllm.launch_options(fp8) == [
        "--quantization",
        "fp8",
        "--kv-cache-dtype",
        "fp8_e5m2",
        "--no-enable-prefix-caching",
    ]
    assert sglang.launch_options(fp8) == [
        "--quantization",
        "fp8",
        "--kv-cache-dtype",
        "fp8_e5m2",
        "--disable-radix-cache",
    ]
    assert lmdeploy.launch_options(fp8) == ["--model-format", "fp8", "--quant-policy", "17"]
    plain = _spec()
    assert vllm.launch_options(plain) == ["--enable-prefix-caching"]
    assert sglang.launch_options(plain) == []  # the radix cache is on by default
    assert lmdeploy.launch_options(plain) == ["--enable-prefix-caching"]  # off by default there
    assert lmdeploy.launch_options(_spec(kv_cache_dtype="int8"))[:2] == ["--quant-policy", "8"]


@pytest.mark.parametrize(
    ("engine", "key", "value"),
    [("lmdeploy", "quantization", "gptq"), ("sglang", "kv_cache_dtype", "fp8"), ("vllm", "kv_cache_dtype", "int8")],
)
def test_a_value_the_engine_does_not_take_is_refused_naming_the_key(engine: str, key: str, value: str) -> None:
    from pydantic import ValidationError

    launch = {"model": "m", "port": 8000, key: value}
    with pytest.raises(ValidationError, match=rf"launch\[0\]\.{key} = '{value}' is not one {engine} takes"):
        PoolConfig.model_validate({"engine": engine, "launch": [launch]})


def test_the_config_file_path_names_the_pool(tmp_path: object) -> None:
    from router.config import load_config

    env = {
        "ROADWORK__POOLS__VLLM__ENGINE": "lmdeploy",
        "ROADWORK__POOLS__VLLM__LAUNCH": '[{"model": "m", "port": 8000, "quantization": "gptq"}]',
    }
    with pytest.raises(ConfigError, match=r"pools\.vllm: .*launch\[0\]\.quantization = 'gptq'"):
        load_config(env=env)
