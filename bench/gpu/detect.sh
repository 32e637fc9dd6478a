#!/usr/bin/env bash
# Detection on the offline GPU host (docs/benchmarks.md): one command, every result under $OUT.
#
#   device run, carry [".whl"]:  bash bench/gpu/detect.sh
#
# .whl/ holds cp312 wheels the host lacks (ultralytics, ultralytics-thop, grpcio 1.85, protobuf 7,
# pydantic, httpx, prometheus-client, tenacity, pytest...); fetch them on the CPU machine with
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d .whl <packages>
# Each step has its own timeout and log, so one failure still returns the others' results.
set -u
OUT=${OUT:-/tmp/roadwork-gpu}
mkdir -p "$OUT"
SITE=/root/roadwork-site
python3 -m pip install -q --no-index --no-deps --target "$SITE" .whl/*.whl > "$OUT/pip.log" 2>&1 || true
export PYTHONPATH="$SITE:$PWD" YOLO_OFFLINE=true PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
python3 -c "import torch, torchvision, ultralytics, grpc, google.protobuf as pb; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'ultralytics', ultralytics.__version__, 'grpcio', grpc.__version__, 'protobuf', pb.__version__, torch.cuda.get_device_name())" > "$OUT/versions.txt" 2>&1

step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  echo "$name rc=$? $((SECONDS - t0))s" >> "$OUT/steps.txt"
}

# 1. The fused runner agrees with predict() on the GPU (fp16, CUDA graphs) and batches requests.
ROADWORK_TEST_DEVICE=cuda:0 step fused-tests 150 python3 -m pytest -q -p no:cacheprovider tests/detectors/test_fused.py
# 2. Ensemble of N = 1, 2, 4: fused vs predict, parallel vs sequential vs slowest member; img/s at batch 1 and 16.
step ensemble 240 python3 -m bench.ensemble --device cuda:0 --images 40 --imgsz 640 --json "$OUT/ensemble-gpu.json"
# 3. Detect through gRPC with 1 and 16 concurrent clients, both backends, detectors on the GPU.
step detect-grpc 240 python3 -m bench.detect_grpc --device cuda --backends fused predict --requests 256 \
  --concurrency 1 16 --json "$OUT/detect-grpc-gpu.json"
cat "$OUT/steps.txt"
