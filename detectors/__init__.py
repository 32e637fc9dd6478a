"""Detectors: the shared detection stage (they never import `router` or `engines`)."""
