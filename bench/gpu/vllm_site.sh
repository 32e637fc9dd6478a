# Sourced by engines.sh, bulk.sh and scale.sh: unpack the staged vLLM 0.26 tree, set the
# environment the router and vLLM run with, build the random Qwen2-0.5B once. Leaves OUT set and
# created, and defines start_vllm.
OUT=${OUT:-/tmp/roadwork-gpu}
mkdir -p "$OUT"
if [ ! -d /root/site/vllm ]; then
  mkdir -p /root/site && cat /root/stage/core.txz.part* | xz -d -T0 | tar -x -C /root/site || exit 1
fi
export PYTHONPATH="/root/roadwork-site:/root/site:$PWD" PYTHONUNBUFFERED=1 YOLO_OFFLINE=true
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 VLLM_USE_FLASHINFER_SAMPLER=0
[ -f /root/qwen2-rand/model.safetensors ] || timeout 120 python3 .gpu-tools/make_model.py /root/qwen2-rand > "$OUT/model.txt" 2>&1

start_vllm() {  # start_vllm [vLLM args...]: serve the random Qwen2 on :8000 (VLLM = its pid) and wait for health
  setsid python3 -m vllm.entrypoints.openai.api_server --model /root/qwen2-rand --tokenizer /root/qwen2-rand-tok \
    --served-model-name qwen2-rand --host 127.0.0.1 --port 8000 --max-model-len 4096 "$@" > "$OUT/vllm.log" 2>&1 &
  VLLM=$!
  for _ in $(seq 1 240); do
    python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health', timeout=2)" 2>/dev/null && return 0
    kill -0 $VLLM 2>/dev/null || { echo "vLLM died"; tail -40 "$OUT/vllm.log"; return 1; }
    sleep 1
  done
}
