"""JSON log lines carry the trace id of the client's traceparent, the span id and the request id."""

from __future__ import annotations

import io
import json
import logging

from router.observe import tracing


def test_a_json_log_line_names_the_trace_the_span_and_the_request() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(tracing.JsonLogFormatter())
    log = logging.getLogger("roadwork.test-json")
    log.addHandler(handler)
    log.propagate = False
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    try:
        with tracing.rpc_span("Ask", [("traceparent", f"00-{trace_id}-{parent}-01")]):
            token = tracing.REQUEST_ID.set("req-42")
            log.warning("engine %s is slow", "a")
            tracing.REQUEST_ID.reset(token)
        log.warning("outside any request")
    finally:
        log.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["message"] == "engine a is slow" and inside["level"] == "WARNING"
    assert inside["trace_id"] == trace_id and inside["request_id"] == "req-42" and len(inside["span_id"]) == 16
    assert "trace_id" not in outside and "request_id" not in outside
