"""Go client test: the real router in a subprocess, driven by tests/go (grpc-go and the generated
gen/go/roadwork/v1) over gRPC.

Built in GOPATH mode against Debian's packaged Go modules in /usr/share/gocode (`make go-env`);
nothing is downloaded. The build cache (`go env GOCACHE`) makes later runs take seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client_router import REPO, run_client, serve

pytestmark = [pytest.mark.go, pytest.mark.slow]

GO_DIR = REPO / "tests" / "go"
GOCODE = Path("/usr/share/gocode")  # Debian's golang-*-dev packages
GOPATH = REPO / "build" / "gopath"  # holds only a link to gen/, so the generated package has its import path
IMPORT_ROOT = "github.com/roadwork-router/roadwork-router"
BUILD_TIMEOUT_S = 300.0


@pytest.fixture(scope="module")
def placeholder_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The quick-start router with the random placeholder model (`embedded.model = ""`): its answers
    always run to max_tokens, so a long one (2048 tokens, seconds) reliably outlives a short deadline
    and holds the only slot; the demo VLM ends its answers after a sentence (0.2 s)."""
    with serve(tmp_path_factory.mktemp("go-router"), ROADWORK__EMBEDDED__MODEL="") as running:
        yield running


def _go_env() -> dict[str, str]:
    link = GOPATH / "src" / IMPORT_ROOT / "gen"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink() or link.resolve() != (REPO / "gen").resolve():
        link.unlink(missing_ok=True)
        link.symlink_to(REPO / "gen", target_is_directory=True)
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": f"{GOPATH}:{GOCODE}", "GOFLAGS": "", "GOPROXY": "off"}
    if "GOCACHE" not in env and "HOME" not in env and "XDG_CACHE_HOME" not in env:
        env["GOCACHE"] = str(REPO / "build" / "go-cache")
    return env


def _go(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    go_bin = shutil.which("go")
    assert go_bin, "Go (`go`) is not on PATH: run `make go-env` (Debian's golang-go and Go gRPC packages)"
    assert (GOCODE / "src" / "google.golang.org" / "grpc").is_dir(), f"no grpc-go in {GOCODE}: run `make go-env`"
    return subprocess.run(
        [go_bin, *args],
        cwd=cwd,
        env=_go_env(),
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )


def build_client(out: Path) -> float:
    """Builds tests/go into `out`; returns the seconds it took."""
    start = time.monotonic()
    proc = _go(["build", "-o", str(out), "."], GO_DIR)
    assert proc.returncode == 0, f"go build failed:\n{proc.stdout}\n{proc.stderr}"
    return time.monotonic() - start


def test_the_go_quick_start_in_docs_compiles(tmp_path: Path) -> None:
    """docs/clients.md's Go block, as the body of a function, passes `go vet` against gen/go."""
    doc = (REPO / "docs" / "clients.md").read_text()
    block = re.search(r"```go\n(import \(.*?\n\))\n(.*?)```", doc, re.S)
    assert block, "docs/clients.md has no Go block starting with its imports"
    imports, body = block.groups()
    func = f"func run(image []byte, token string) error {{\n{body}\n_ = stream\nreturn nil\n}}\n"
    program = f"package main\n\n{imports}\n\n{func}" + 'func main() { _ = run(nil, "") }\n'
    (tmp_path / "main.go").write_text(program)
    proc = _go(["vet", "."], tmp_path)
    assert proc.returncode == 0, f"go vet of the docs' Go block failed:\n{proc.stderr}\n{program}"


def test_go_client(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    client = tmp_path / "roadwork-go-client"
    took = build_client(client)  # before the router starts: a missing toolchain fails fast (never skips)
    print(f"go build: {took:.1f} s")
    addr, log_path = request.getfixturevalue("placeholder_router")
    run_client([str(client)], addr, log_path, "go client")
