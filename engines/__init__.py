"""Engines: the LLM backends the router dispatches to (they never import `router` or `detectors`)."""
