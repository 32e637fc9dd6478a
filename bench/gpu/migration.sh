#!/usr/bin/env bash
# Request migration and SGLang's abort by request id on SGLang 0.5.14 and LMDeploy 0.18, two replicas of
# each launched by the router on one GPU (bench/gpu/migration.py; figures in docs/engines-gpu.md).
# Device calls, back to back (the host is released about 30 s after a call, and with it everything
# copied; router L and its servers, started in their own session, run on between calls):
#   carry [".stage-1"], then [".stage-2"]:  bash bench/gpu/migration.sh stage
#   carry [".stage-3", ".gpu"]:             bash bench/gpu/migration.sh start   (unpack, launch, measure)
#   then, as needed, one call each:         measure, stop
# The .stage-N folders are bench/gpu/vision_engines.sh's (sg.txz.part0/1, lm.txz, whl/). .gpu/head.tar,
# when there (`git archive -o .gpu/head.tar HEAD router engines/*.py`; its commit in .gpu/head.rev), is
# laid over the copied tree, so uncommitted edits of the router elsewhere in the checkout do not travel
# into the run. ARGS passes options to the measure step (e.g. ARGS="--late 60 --cancel-trials 8").
set -u
STEP=${1:?stage|start|measure|stop}
OUT=${OUT:-/tmp/roadwork-gpu}
WORK=/root/migr
mkdir -p "$OUT" "$WORK" /root/stage
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 YOLO_OFFLINE=true YOLO_AUTOINSTALL=false
export TOKENIZERS_PARALLELISM=false
t0=$SECONDS
for d in .stage-*; do [ -d "$d" ] && cp -r "$d"/* /root/stage/; done
echo "staged: $(ls /root/stage | tr '\n' ' ') ($((SECONDS - t0)) s)" | tee -a "$OUT/steps.txt"
[ "$STEP" = stage ] && exit 0

tails() {  # the end of every router and engine log, into $OUT/logs.txt
  for f in "$WORK"/L/router.log "$WORK"/M.log "$WORK"/*/engine-logs/*.log; do
    [ -f "$f" ] && { echo "=== $f"; grep -av "^\s*$" "$f" | tail -${TAIL:-40} | cut -c1-400; }
  done > "$OUT/logs.txt" 2>&1
}

tree() {  # tree DEST: this call's working tree, with HEAD's router laid over it where .gpu/head.tar is
  rm -rf "$1" && mkdir -p "$1" && tar -cf - --exclude='./.stage-*' --exclude='./.gpu' . | tar -x -C "$1"
  [ -f .gpu/head.tar ] && tar -xf .gpu/head.tar -C "$1" && echo "router/ and engines/ from HEAD $(cat .gpu/head.rev 2>/dev/null)" | tee -a "$OUT/steps.txt"
  return 0
}

measure() {
  timeout "$1" python3 -m bench.gpu.migration measure --out "$OUT" --deadline-s $(( $1 - 15 )) ${ARGS:-} \
    > "$OUT/measure.txt" 2>&1
  echo "measure rc=$? at $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
  head -c 3000 "$OUT/measure.txt"
}

if [ "$STEP" = start ]; then
  unpack() {  # unpack NAME DIR COMMAND: one tree, in the background
    [ -d "$2/$1" ] || { mkdir -p "$2" && eval "$3" | tar -x -C "$2"; }
  }
  unpack sglang /root/sgsite "cat /root/stage/sg.txz.part* | xz -dc -T8" & P2=$!
  unpack lmdeploy /root/lmsite "xz -dc -T8 /root/stage/lm.txz" & P3=$!
  [ -d /root/roadwork-site/pydantic ] || python3 -m pip install -q --no-index --no-deps --target /root/roadwork-site \
    /root/stage/whl/*.whl > "$OUT/pip.log" 2>&1
  wait $P2 $P3  # never a bare wait: servers started later in this shell would hang it
  echo "unpacked ($((SECONDS - t0)) s): $(du -sh /root/sgsite /root/lmsite | tr '\n\t' '  ')" | tee -a "$OUT/steps.txt"
  [ -d "$WORK/repo" ] || { tree "$WORK/repo" && cp -r engines/models/roadwork-vlm "$WORK/roadwork-vlm"; }
  cd "$WORK/repo"
  export PYTHONPATH="/root/roadwork-site:$PWD"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/steps.txt"
  python3 -c "import torch, transformers, grpc; print('torch', torch.__version__, 'transformers', \
transformers.__version__, 'grpcio', grpc.__version__)" 2>&1 | tee -a "$OUT/steps.txt"
  PYTHONPATH=/root/sgsite python3 -c "import sglang; print('sglang', sglang.__version__)" 2>&1 | tail -1 | tee -a "$OUT/steps.txt"
  PYTHONPATH=/root/lmsite python3 -c "import lmdeploy; print('lmdeploy', lmdeploy.__version__)" 2>&1 | tail -1 | tee -a "$OUT/steps.txt"
  timeout ${START_S:-350} python3 -m bench.gpu.migration launch --out "$OUT" --deadline-s $(( ${START_S:-350} - 10 )) \
    > "$OUT/launch.txt" 2>&1
  echo "launch rc=$? at $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
  tail -c 1500 "$OUT/launch.txt"
  nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader >> "$OUT/steps.txt" 2>&1
  left=$(( ${CALL_S:-575} - (SECONDS - t0) ))
  [ "$left" -gt 120 ] && measure "$left"
  tails
  exit 0
fi

tree "$WORK/run" && cd "$WORK/run"
export PYTHONPATH="/root/roadwork-site:$PWD"
case "$STEP" in
  measure) measure ${STEP_S:-560} ;;
  stop)
    timeout 90 python3 -m bench.gpu.migration stop --out "$OUT" > "$OUT/stop.txt" 2>&1
    echo "stop rc=$? at $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
    cat "$OUT/stop.txt" ;;
esac
tails
