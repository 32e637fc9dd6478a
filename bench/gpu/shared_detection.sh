#!/usr/bin/env bash
# Issue 16, the shared detection process, on the offline GPU host: one command, results under $OUT.
#
#   device run, carry [".whl-speed"]:  COMMIT=<hash> bash bench/gpu/shared_detection.sh
#
# The wheels are speed.sh's (.whl-speed/: grpcio 1.85, grpcio-health-checking, grpcio-reflection,
# protobuf 7, pydantic and its deps, tenacity, ultralytics 8.4.190, ultralytics-thop,
# googleapis-common-protos, grpcio-status, and the py-spy executable). As for speed.sh, a device run
# sends the session's checkout: run it from /work/main once issue16d is merged.
# Steps: the wire (bench.detect_ipc), then bench.detect_speed --compare-process: server.workers = N
# router processes with detection.process = local (every process its own models, batches never
# merge) against shared (one detection process fed by all N), in turns, WORKERS=8 by default;
# Detect at 1 and 64 clients (8 client processes), a detect-only job of 5,000 items, each as a ratio
# to the fused runner alone at its best batch, and the shared / local ratios; py-spy --gil profiles
# of the first router process at 64 clients in each variant (and of the detection process in shared-N:
# profile-shared-N-detection.txt). A device command has 600 s: if 2 rounds
# of 8-process starts do not fit, ROUNDS=1 (or WORKERS=4).
set -u
OUT=${OUT:-/tmp/roadwork-gpu}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
SITE=/root/roadwork-site
python3 -m pip install -q --no-index --no-deps --target "$SITE" .whl-speed/*.whl >> "$LOG" 2>&1 || true
export PYTHONPATH="$SITE:$PWD" YOLO_OFFLINE=true PYTHONUNBUFFERED=1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
WORKERS=${WORKERS:-8}
{
  echo "commit ${COMMIT:-?}, $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, torchvision, ultralytics, grpc; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'ultralytics', ultralytics.__version__, 'grpcio', grpc.__version__)"
  nproc
} >> "$LOG" 2>&1

step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  echo "=== $name" >> "$LOG"
  timeout "$limit" "$@" >> "$LOG" 2>&1
  echo "=== $name rc=$? $((SECONDS - t0))s" >> "$LOG"
}

# 1. The wire: length-prefixed frames vs gRPC on one Unix socket (client CPU per round trip).
step ipc 40 python3 -m bench.detect_ipc --requests 2000 --json "$OUT/detect-ipc-h200.json"
# 2. local-N vs shared-N, in turns, medians of the rounds.
step compare "${SPEED_S:-540}" python3 -m bench.detect_speed --device cuda --compare-process "$WORKERS" \
  --rounds "${ROUNDS:-2}" --clients 64 --client-procs 8 --requests "${REQUESTS:-2048}" --bulk-items "${BULK_ITEMS:-5000}" \
  --scenes 128 --profile "${PROFILE_S:-5}" --profile-variants "local-$WORKERS" "shared-$WORKERS" \
  --py-spy "$PWD/.whl-speed/py-spy" --profile-dir "$OUT" --json "$OUT/detect-shared-h200.json"
grep "^===" "$LOG"
