"""Node.js client test: the real router in a subprocess, driven by tests/node/client.mjs over gRPC.

Needs Node.js and the npm packages in tests/node (`make node-env`, or `cd tests/node && npm ci`).
"""

from __future__ import annotations

import shutil

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
