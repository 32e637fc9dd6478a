// The generated Go client of roadwork.v1 (protos/roadwork/v1/router.proto): import
// github.com/roadwork-router/roadwork-router/gen/go/roadwork/v1 (package roadworkv1).
// Regenerate with `python scripts/gen_go.py` (protoc, protoc-gen-go 1.28.1, protoc-gen-go-grpc 1.0).
// The versions below are the oldest this code is known to build with (Debian 12's packages, which
// tests/test_go_client.py builds against); newer ones work.
module github.com/roadwork-router/roadwork-router/gen/go

go 1.19

require (
	google.golang.org/genproto v0.0.0-20200526211855-cb27e3aa2013
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
