"""The gRPC face: protobuf to domain objects and back, error details, process wiring."""
