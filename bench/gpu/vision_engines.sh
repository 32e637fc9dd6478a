#!/usr/bin/env bash
# The demo VLM on vLLM 0.26, SGLang 0.5.14 and LMDeploy 0.18 at once on one GPU, each launched by the
# router (bench/gpu/vision_engines.py; figures in docs/engines-gpu.md). Device calls, back to back (the
# host is released about 30 s after a call, and with it everything copied; servers started in their own
# sessions run on between calls):
#   carry [".stage-N"] (one folder each):  bash bench/gpu/vision_engines.sh stage
#   carry [last ".stage-N"]:               bash bench/gpu/vision_engines.sh start
#   then, one call each:  kinds, options, budget, stop
# ARGS passes options to the Python steps, e.g. ARGS="--engines sglang,lmdeploy --tiny 0" (start, kinds,
# options: those engines only; no tiny servers, so no budget step).
# The .stage-N folders hold, split to fit a copy (64 MiB with the tree): core.txz.part* (the vLLM
# tree, ../shared/tools/gpu-vllm: dl.sh, build_site.sh, tar | xz), sg.txz.part* (SGLang, gpu-sglang,
# the same with xz), lm.txz (LMDeploy, gpu-lmdeploy) and whl/ (the router's cp312 wheels:
# bench/gpu/train_vlm.sh's list plus grpcio-health-checking and grpcio-reflection 1.85.1).
set -u
STEP=${1:?stage|start|kinds|options|budget|stop}
OUT=${OUT:-/tmp/roadwork-gpu}
WORK=/root/vision
mkdir -p "$OUT" "$WORK" /root/stage
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 YOLO_OFFLINE=true YOLO_AUTOINSTALL=false
export TOKENIZERS_PARALLELISM=false
t0=$SECONDS
for d in .stage-*; do [ -d "$d" ] && cp -r "$d"/* /root/stage/; done
echo "staged: $(ls /root/stage | tr '\n' ' ') ($((SECONDS - t0)) s)" | tee -a "$OUT/steps.txt"
[ "$STEP" = stage ] && exit 0

tails() {  # the end of every router and engine log, into $OUT/logs.txt
  for f in "$WORK"/*/router.log "$WORK"/*/engine-logs/*.log "$WORK"/tiny-vllm-*.log; do
    [ -f "$f" ] && { echo "=== $f"; grep -av "^\s*$" "$f" | tail -${TAIL:-40} | cut -c1-400; }
  done > "$OUT/logs.txt" 2>&1
}

if [ "$STEP" = start ]; then
  unpack() {  # unpack NAME DIR COMMAND: one tree, in the background
    [ -d "$2/$1" ] || { mkdir -p "$2" && eval "$3" | tar -x -C "$2"; }
  }
  unpack vllm /root/site "cat /root/stage/core.txz.part* | xz -dc -T4" & P1=$!
  unpack sglang /root/sgsite "cat /root/stage/sg.txz.part* | xz -dc -T4" & P2=$!
  unpack lmdeploy /root/lmsite "xz -dc -T4 /root/stage/lm.txz" & P3=$!
  [ -d /root/roadwork-site/pydantic ] || python3 -m pip install -q --no-index --no-deps --target /root/roadwork-site \
    /root/stage/whl/*.whl > "$OUT/pip.log" 2>&1
  wait $P1 $P2 $P3  # never a bare wait: servers started later in this shell would hang it
  echo "unpacked ($((SECONDS - t0)) s): $(du -sh /root/site /root/sgsite /root/lmsite | tr '\n\t' '  ')" | tee -a "$OUT/steps.txt"
  if [ ! -d "$WORK/repo" ]; then  # the routers outlive this call: they run from their own copy of the tree
    mkdir -p "$WORK/repo" && tar -cf - --exclude='./.stage-*' . | tar -x -C "$WORK/repo"
    cp -r engines/models/roadwork-vlm "$WORK/roadwork-vlm"
  fi
  cd "$WORK/repo"
  export PYTHONPATH="/root/roadwork-site:$PWD"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/steps.txt"
  python3 -c "import torch, transformers, grpc, ultralytics; print('torch', torch.__version__, 'transformers', \
transformers.__version__, 'grpcio', grpc.__version__, 'ultralytics', ultralytics.__version__)" 2>&1 | tee -a "$OUT/steps.txt"
  [ -f "$WORK/tiny-vlm/model.safetensors" ] || timeout 120 python3 -c "
from dataclasses import replace; from pathlib import Path
from engines.tiny_vlm import TINY, build_vlm
build_vlm(Path('$WORK/tiny-vlm'), replace(TINY, max_pixels=12845056, context=32768))" >> "$OUT/steps.txt" 2>&1
  timeout ${START_S:-480} python3 -m bench.gpu.vision_engines start --out "$OUT" --deadline-s $(( ${START_S:-480} - 20 )) \
    ${ARGS:-} > "$OUT/start.txt" 2>&1
  echo "start rc=$? at $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
  tail -c 3000 "$OUT/start.txt"
  nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader >> "$OUT/steps.txt" 2>&1
  tails
  exit 0
fi

export PYTHONPATH="/root/roadwork-site:$PWD"
case "$STEP" in
  kinds|options|stop)
    timeout ${STEP_S:-540} python3 -m bench.gpu.vision_engines "$STEP" --out "$OUT" ${ARGS:-} > "$OUT/$STEP.txt" 2>&1
    echo "$STEP rc=$? at $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
    tail -c 6000 "$OUT/$STEP.txt" ;;
  budget)
    timeout 250 python3 -m bench.vision budget --vllm-url http://127.0.0.1:8300 --model tiny-vlm --rounds 6 \
      --workdir "$WORK/budget" --json "$OUT/vision-budget-h200.json" > "$OUT/budget.txt" 2>&1
    echo "budget rc=$? at $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
    timeout 250 python3 -m bench.vision affinity --vllm-url http://127.0.0.1:8300 --vllm-url http://127.0.0.1:8400 \
      --model tiny-vlm --workdir "$WORK/affinity" --json "$OUT/vision-affinity-h200.json" > "$OUT/affinity.txt" 2>&1
    echo "affinity rc=$? at $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
    tail -n 12 "$OUT/budget.txt" "$OUT/affinity.txt" ;;
esac
tails
