"""Decides a request's kind from its shape."""

from __future__ import annotations

from router.types import RequestKind


def classify(*, bulk: bool, session_id: str = "", open_session: bool = False) -> RequestKind:
    """Bulk-API items are BATCH; a session (given or opened) is MULTI_TURN; anything else SINGLE_SHOT."""
    if bulk:
        return RequestKind.BATCH
    if session_id or open_session:
        return RequestKind.MULTI_TURN
    return RequestKind.SINGLE_SHOT
