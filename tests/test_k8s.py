"""The Kubernetes manifests (deploy/k8s) against the API's schemas, offline and strict
(kubernetes-validate ships them), and against the router's own config validation."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from router.config import load_config
from tests.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
VERSION = "1.33.0"  # the oldest release whose schemas the manifests must pass (sleep preStop: 1.30+)


def _docs() -> list[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"
    ), "kustomization.yaml lists every manifest"
    return [(name, d) for name in kustomization["resources"] for d in yaml.safe_load_all((K8S / name).read_text())]


def _find(kind: str, name: str) -> dict[str, Any]:
    return next(d for _, d in _docs() if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize("version", [VERSION, "1.37.0"])
def test_every_manifest_passes_the_strict_schema(version: str) -> None:
    for name, doc in _docs():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{name}: {doc['kind']} {doc['metadata']['name']}: {exc}") from exc


def test_the_validator_refuses_a_misspelt_field() -> None:
    deployment = copy.deepcopy(_find("Deployment", "roadwork-router"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grcp"] = {"port": 50051}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSION, strict=True)


def test_the_router_config_in_the_configmap_is_valid_and_fits_the_deployment(tmp_path: Path) -> None:
    text = _find("ConfigMap", "roadwork-router")["data"]["router.toml"]
    (tmp_path / "router.toml").write_text(text)
    url = _find("Secret", "roadwork-router")["stringData"]["storage-url"]
    config = load_config(tmp_path / "router.toml", env={"ROADWORK__STORAGE__URL": url})
    assert config.storage.url.startswith("postgresql://") and tomllib.loads(text)["server"]["host"] == "0.0.0.0"
    pod = _find("Deployment", "roadwork-router")["spec"]["template"]["spec"]
    (router,) = pod["containers"]
    assert {p["containerPort"] for p in router["ports"]} == {config.server.port, config.server.metrics_port}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert router[probe]["grpc"]["port"] == config.server.port  # the router's gRPC health service
    drain = router["lifecycle"]["preStop"]["sleep"]["seconds"] + config.server.grace_s
    assert pod["terminationGracePeriodSeconds"] > drain, "preStop and server.grace_s fit the grace period"
    env = {e["name"] for e in router["env"]}
    assert {config.server.auth_token_env, "ROADWORK__STORAGE__URL"} <= env
    assert _find("Service", "roadwork-router")["spec"]["clusterIP"] == "None", "headless: client-side balancing"
    for pool in ("vllm", "sglang", "lmdeploy"):
        engine = _find("Deployment", pool)["spec"]["template"]["spec"]["containers"][0]
        assert engine["resources"]["limits"]["nvidia.com/gpu"] == 1
        (replica,) = config.pools[pool].replicas
        assert replica.endswith(f"{pool}:{_find('Service', pool)['spec']['ports'][0]['port']}")
