# CPU image of the router (gRPC API, detection ensemble on the CPU, embedded engine as a fallback).
# Engines run as their own containers (vLLM / SGLang / LMDeploy images) and are named in the config:
# see README "Deploying with GPU engine servers".
FROM python:3.11-slim

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    YOLO_OFFLINE=true YOLO_AUTOINSTALL=false \
    ROADWORK_CACHE_DIR=/var/cache/roadwork-router \
    ROADWORK__SERVER__HOST=0.0.0.0 ROADWORK__SERVER__METRICS_HOST=0.0.0.0 \
    ROADWORK__STORAGE__PATH=/var/lib/roadwork-router/router.sqlite3

RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# CPU wheels of torch/torchvision keep the image small; pass TORCH_INDEX="" to use PyPI's default build.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install torch torchvision ${TORCH_INDEX:+--index-url $TORCH_INDEX}
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY router ./router
COPY engines ./engines
COPY detectors ./detectors
RUN pip install . && python -m engines.tiny_model  # build the placeholder model into the image

VOLUME ["/var/lib/roadwork-router"]
EXPOSE 50051 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s CMD python -c "import grpc,sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; s=g.HealthStub(grpc.insecure_channel('127.0.0.1:50051')); sys.exit(0 if s.Check(h.HealthCheckRequest(), timeout=2).status == 1 else 1)"
ENTRYPOINT ["roadwork-router"]
CMD ["serve"]
