#!/usr/bin/env bash
# Router processes on one port (server.workers = 1, 2, 4, 8) on the GPU host's 16 cores
# (bench/scale.py): against real vLLM 0.26 (random Qwen2-0.5B), then against the instant engine
# (bench/_instant.py), which leaves only the router's own cost. ENGINES="vllm instant" picks.
# Detectors run on the GPU (DETECT_DEVICE=cpu to compare), as a GPU host would run them.
# Staging as in bench/gpu/engines.sh (.whl-p0..3, .whl, .gpu-tools).
set -u
source "$(dirname "$0")/vllm_site.sh"
export ROADWORK__DETECTORS__0__DEVICE=${DETECT_DEVICE:-cuda} ROADWORK__DETECTORS__1__DEVICE=${DETECT_DEVICE:-cuda}
ARGS="--router-workers ${WORKERS:-1 2 4 8} --clients ${CLIENTS:-8} --concurrency ${CONC:-16} --seconds ${SECONDS_:-10}"
for E in ${ENGINES:-vllm instant}; do
  # where the host's CPU goes, once a second by process role (bench/proc_cpu.py)
  timeout ${SCALE_S:-420} python3 -m bench.proc_cpu --seconds ${SCALE_S:-420} > "$OUT/cpu-by-process-$E.txt" 2>&1 &
  SAMPLER=$!
  if [ "$E" = vllm ]; then
    start_vllm --gpu-memory-utilization 0.5 || exit 1
    timeout ${SCALE_S:-420} python3 -m bench.scale --vllm-url http://127.0.0.1:8000 --model qwen2-rand $ARGS \
      --json "$OUT/scale-vllm-h100.json" > "$OUT/scale-vllm.txt" 2>&1
    echo "scale vllm rc=$?"
    kill -- -$VLLM 2>/dev/null
    grep -v "Loading\|Writing" "$OUT/scale-vllm.txt" | tail -12
  else
    timeout ${SCALE_S:-420} python3 -m bench.scale --instant ${INSTANT:-4} $ARGS \
      --json "$OUT/scale-instant-h100.json" > "$OUT/scale-instant.txt" 2>&1
    echo "scale instant rc=$?"
    grep -v "Loading\|Writing" "$OUT/scale-instant.txt" | tail -12
  fi
  kill $SAMPLER 2>/dev/null
done
