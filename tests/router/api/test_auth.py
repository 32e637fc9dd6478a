"""The optional bearer token: RouterService calls without it are UNAUTHENTICATED; health stays open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from router._proto.roadwork.v1 import router_pb2 as pb
from router.api.server import auth_token
from router.errors import ConfigError
from tests.conftest import ErrorDetails, RunningRouter, make_config


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ROADWORK_TEST_TOKEN", "s3cret-token")
        cfg = make_config(tmp_path_factory.mktemp("auth"), ROADWORK__SERVER__AUTH_TOKEN_ENV="ROADWORK_TEST_TOKEN")
        r = RunningRouter(cfg).wait_ready()
    yield r
    r.stop()


def test_calls_need_the_bearer_token(guarded: RunningRouter, sample_jpeg: bytes) -> None:
    request = pb.DetectRequest(image=sample_jpeg)
    for metadata in ((), (("authorization", "Bearer wrong"),), (("authorization", "s3cret-token"),)):
        with pytest.raises(grpc.RpcError) as err:
            guarded.stub.Detect(request, metadata=metadata, timeout=60)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "authorization: Bearer <token>" in (err.value.details() or "")
        assert ErrorDetails(err.value).reason == "TOKEN_INVALID"
    with pytest.raises(grpc.RpcError) as err:  # streaming RPCs too
        list(guarded.stub.Ask(pb.AskRequest(image=sample_jpeg, question="?"), timeout=60))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and ErrorDetails(err.value).reason == "TOKEN_INVALID"
    ok = guarded.stub.Detect(request, metadata=(("authorization", "Bearer s3cret-token"),), timeout=60)
    assert 0.0 <= ok.detection.roadwork_probability <= 1.0
    health = health_pb2_grpc.HealthStub(guarded.channel)  # probes need no token
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING


def test_a_named_but_unset_token_variable_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROADWORK_UNSET_TOKEN", raising=False)
    cfg = make_config(tmp_path, ROADWORK__SERVER__AUTH_TOKEN_ENV="ROADWORK_UNSET_TOKEN")
    with pytest.raises(ConfigError, match=r"server\.auth_token_env names ROADWORK_UNSET_TOKEN"):
        auth_token(cfg)


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A throwaway certificate for localhost / 127.0.0.1 and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1)).add_extension(san, critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def test_tls(tmp_path: Path, sample_jpeg: bytes) -> None:
    from router._proto.roadwork.v1 import router_pb2_grpc as pb_grpc

    cert, key = _self_signed(tmp_path)
    cfg = make_config(tmp_path, ROADWORK__SERVER__TLS_CERT_FILE=str(cert), ROADWORK__SERVER__TLS_KEY_FILE=str(key))
    r = RunningRouter(cfg).wait_ready()
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(f"localhost:{r.port}", creds) as channel:
            stub = pb_grpc.RouterServiceStub(channel)  # type: ignore[no-untyped-call]
            assert stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=60).detection.image_sha256
        with pytest.raises(grpc.RpcError) as err:  # a plaintext client cannot talk to it
            r.stub.Detect(pb.DetectRequest(image=sample_jpeg), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        r.stop()


def test_tls_needs_both_files(tmp_path: Path) -> None:
    from router.errors import ConfigError as Err

    with pytest.raises(Err, match="tls_cert_file and tls_key_file go together"):
        make_config(tmp_path, ROADWORK__SERVER__TLS_CERT_FILE="/x.pem")
