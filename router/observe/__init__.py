"""Observability: metrics."""
