"""Node.js client test: the real router in a subprocess, driven by tests/node/client.mjs over gRPC.

Needs Node.js and the npm packages in tests/node (`make node-env`, or `cd tests/node && npm ci`).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.client_router import REPO, router_server, run_client

pytestmark = [pytest.mark.node, pytest.mark.slow]

NODE_DIR = REPO / "tests" / "node"
CLIENT = NODE_DIR / "client.mjs"
__all__ = ["router_server"]  # the fixture, for pytest


def test_node_client(request: pytest.FixtureRequest) -> None:
    # Checked before the router starts: a missing npm install fails fast (never skips).
    node_bin = shutil.which("node")
    assert node_bin, "Node.js (`node`) is not on PATH; install Node.js 20+ to run the Node client test"
    assert (NODE_DIR / "node_modules").is_dir(), (
        f"{NODE_DIR / 'node_modules'} is missing: run `npm ci` in tests/node (cd tests/node && npm ci)"
    )
    addr, log_path = request.getfixturevalue("router_server")
    run_client([node_bin, str(CLIENT.relative_to(REPO))], addr, log_path, "node client")


def test_the_node_quick_start_in_docs_runs(request: pytest.FixtureRequest) -> None:
    """docs/clients.md's JavaScript block, on plaintext to the test router: an answer, then an error's details."""
    node_bin = shutil.which("node")
    assert node_bin, "Node.js (`node`) is not on PATH"
    block = re.search(r"```js\n(.*?)```", (REPO / "docs" / "clients.md").read_text(), re.S)
    assert block, "docs/clients.md has no JavaScript block"
    tls, address = "grpc.credentials.createSsl(readFileSync('router.crt'))", "'127.0.0.1:50051'"
    assert tls in block[1] and address in block[1], "the block's connect line changed: update this test"
    addr, _ = request.getfixturevalue("router_server")
    image = "const image = readFileSync('router/assets/sample_roadwork.jpg'), token = '';\n"
    code = block[1].replace(tls, "grpc.credentials.createInsecure()").replace(address, f"'{addr}'")
    code = code.replace("\nconst def", f"\n{image}const def", 1)
    outputs: list[str] = []
    for question in ("Is there roadwork?", ""):  # "" is INVALID_ARGUMENT FIELD_MISSING
        script = NODE_DIR / f".docs_block_{len(outputs)}.mjs"  # in tests/node: its node_modules resolve
        script.write_text(code.replace("question: 'Is there roadwork?'", f"question: '{question}'"))
        try:
            proc = subprocess.run([node_bin, str(script)], cwd=REPO, capture_output=True, text=True, timeout=60)
        finally:
            script.unlink()
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    assert "\nsession s_" in outputs[0], outputs[0]
    assert "INVALID_ARGUMENT" in outputs[1] and "reason: 'FIELD_MISSING'" in outputs[1], outputs[1]
