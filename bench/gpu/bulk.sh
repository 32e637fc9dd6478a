#!/usr/bin/env bash
# Against real vLLM 0.26 on the GPU host: a bulk job through the router vs a direct client with
# interactive traffic (bench/bulk.py: the bulk window whole and shrunk while interactive requests
# are present, FCFS and priority scheduling), then the routing overhead (bench/overhead.py), and
# with BASE_TREE=<an older checkout> the overhead again from that tree (before/after on one card);
# SCALE_WORKERS="1 4" measures 16 and 64 clients with that many router processes (server.workers).
# Staging as in bench/gpu/engines.sh (.whl-p0..3, .whl, .gpu-tools).
# With the peers' wheels copied to /root/stage-peers by earlier calls (sglang-router==0.3.2, orjson,
# vllm-router==0.1.17: about 56 MB, so two calls of their own), the overhead runs against both peers.
set -u
source "$(dirname "$0")/vllm_site.sh"
start_vllm --gpu-memory-utilization 0.6 --enable-prompt-tokens-details --scheduling-policy priority || exit 1
if [ "${BULK:-1}" = 1 ]; then
  timeout ${BULK_S:-240} python3 -m bench.bulk --vllm-url http://127.0.0.1:8000 --model qwen2-rand --items 1000 \
    --workers 64 --modes ${BULK_MODES:-fcfs priority} --busy-shares ${BUSY_SHARES:-off 0.25} \
    --json "$OUT/bulk-h100.json" > "$OUT/bulk.txt" 2>&1
  echo "bulk rc=$?"
  grep -v "Loading\|Writing" "$OUT/bulk.txt" | tail -24
fi
for W in ${SCALE_WORKERS:-}; do  # requests/s with W router processes on the port (server.workers)
  timeout ${OVERHEAD_S:-150} python3 -m bench.overhead --vllm-url http://127.0.0.1:8000 --model qwen2-rand \
    --rounds 30 --concurrency 16 64 --cancel-trials 0 --router-workers "$W" \
    --json "$OUT/scale-w$W-h100.json" > "$OUT/scale-w$W.txt" 2>&1
  echo "scale workers=$W rc=$?"
  grep -v "Loading\|Writing" "$OUT/scale-w$W.txt" | tail -14
done
PEERS=()
if ls /root/stage-peers/*.whl > /dev/null 2>&1; then  # the peers, started through wrappers on PYTHONPATH
  python3 -m pip install -q --no-index --no-deps --target /root/peers /root/stage-peers/*.whl > "$OUT/peers-pip.txt" 2>&1
  printf '#!/bin/sh\nPYTHONPATH=/root/peers:/root/site exec python3 "$@"\n' > /root/sgr-python
  printf '#!/bin/sh\nPYTHONPATH=/root/peers:/root/site exec python3 -c "import sys; from vllm_router.launch_router import main; sys.exit(main())" "$@"\n' > /root/vllm-router
  chmod +x /root/sgr-python /root/vllm-router
  PEERS=(--sglang-router /root/sgr-python --vllm-router /root/vllm-router)
fi
if [ "${OVERHEAD:-1}" = 1 ]; then
  timeout ${OVERHEAD_S:-150} python3 -m bench.overhead --vllm-url http://127.0.0.1:8000 --model qwen2-rand --rounds ${OVERHEAD_ROUNDS:-40} \
    --concurrency 1 16 --cancel-trials 10 "${PEERS[@]}" --json "$OUT/overhead-h100.json" > "$OUT/overhead.txt" 2>&1
  echo "overhead rc=$?"
  grep -v "Loading\|Writing" "$OUT/overhead.txt" | tail -24
  if [ -n "${BASE_TREE:-}" ]; then  # the same bench from an older checkout, for a before/after on this card
    (cd "$BASE_TREE" && PYTHONPATH="/root/roadwork-site:/root/site:$BASE_TREE" timeout ${OVERHEAD_S:-150} \
      python3 -m bench.overhead --vllm-url http://127.0.0.1:8000 --model qwen2-rand --rounds 40 --concurrency 1 16 \
      --cancel-trials 10 --json "$OUT/overhead-base-h100.json" > "$OUT/overhead-base.txt" 2>&1)
    echo "overhead (base tree) rc=$?"
    grep -v "Loading\|Writing" "$OUT/overhead-base.txt" | tail -24
  fi
fi
kill -- -$VLLM 2>/dev/null
