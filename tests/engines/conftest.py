"""The engine stream's two HTTP clients (pools.<name>.http_client), for tests that run on both."""

from __future__ import annotations

import pytest

from engines.openai_http import OpenAIHTTPEngine


@pytest.fixture(params=["aiohttp", "lean"])
def http_client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every OpenAIHTTPEngine the test builds streams through this client."""
    defaults = OpenAIHTTPEngine.__init__.__kwdefaults__
    assert defaults is not None and "http_client" in defaults
    monkeypatch.setitem(defaults, "http_client", request.param)
    return str(request.param)
