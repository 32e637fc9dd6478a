"""roadwork-router: classify -> detect -> dispatch -> engine, served over gRPC."""

__version__ = "0.1.0"
