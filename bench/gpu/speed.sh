#!/usr/bin/env bash
# Detection speed on the offline GPU host (issue 16, docs/benchmarks.md): one command, results under $OUT.
#
#   device run, carry [".whl-speed"]:  COMMIT=<hash> bash bench/gpu/speed.sh
#
# .whl-speed/ holds the router's cp312 wheels the host lacks (grpcio 1.85, grpcio-health-checking,
# grpcio-reflection, protobuf 7, pydantic, pydantic-core, annotated-types, typing-inspection,
# typing-extensions, tenacity, ultralytics 8.4.190, ultralytics-thop; /work/gpu-stage/whl has them)
# and the `py-spy` executable (from the project venv), which profiles the router process.
# A device run sends the session's checkout, not a helper's worktree: on 2026-12-01 the branch's
# bench/ router/ detectors/ tests/ travelled as a `git archive` tar in an ignored .stage-* folder of
# that checkout (with the wheels), unpacked over the copy there before this script ran.
# googleapis-common-protos and grpcio-status are needed too (google.rpc, the error details).
# Each step has its own timeout; everything printed goes to $OUT/log.txt.
set -u
OUT=${OUT:-/tmp/roadwork-gpu}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
SITE=/root/roadwork-site
python3 -m pip install -q --no-index --no-deps --target "$SITE" .whl-speed/*.whl >> "$LOG" 2>&1 || true
export PYTHONPATH="$SITE:$PWD" YOLO_OFFLINE=true PYTHONUNBUFFERED=1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
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

# 1. The fused runner on CUDA: nvjpeg decode agrees with PIL pixels, an undecodable JPEG fails alone.
# (The host has no pytest-asyncio: the async test is left out.)
ROADWORK_TEST_DEVICE=cuda:0 step fused-tests 120 python3 -m pytest -q -p no:cacheprovider -k "not concurrent_requests" \
  tests/detectors/test_fused.py tests/detectors/test_batching.py
# 2. The runner alone vs Detect (1 and 64 clients) vs a detect-only bulk job, per variant.
step speed "${SPEED_S:-400}" python3 -m bench.detect_speed --device cuda --variants ${VARIANTS:-default cpu-decode bulk-1 workers-4} \
  --bulk-variants ${BULK_VARIANTS:-default cpu-decode bulk-1} --profile "${PROFILE_S:-5}" --profile-variants ${PROFILE_VARIANTS:-default cpu-decode} \
  --py-spy "$PWD/.whl-speed/py-spy" --requests "${REQUESTS:-2048}" --scenes 128 --profile-dir "$OUT" --json "$OUT/detect-speed-h200.json"
grep "^===" "$LOG"
