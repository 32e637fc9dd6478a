"""The client side: the command line, the Python client, the demo and the StreetVision adapter (may use the stubs)."""
