# Sourced by engines.sh and bulk.sh: unpack the staged vLLM 0.26 tree, set the environment the
# router and vLLM run with, build the random Qwen2-0.5B once. Leaves OUT set and created.
OUT=${OUT:-/tmp/roadwork-gpu}
mkdir -p "$OUT"
if [ ! -d /root/site/vllm ]; then
  mkdir -p /root/site && cat /root/stage/core.txz.part* | xz -d -T0 | tar -x -C /root/site || exit 1
fi
export PYTHONPATH="/root/roadwork-site:/root/site:$PWD" PYTHONUNBUFFERED=1 YOLO_OFFLINE=true
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 VLLM_USE_FLASHINFER_SAMPLER=0
[ -f /root/qwen2-rand/model.safetensors ] || timeout 120 python3 .gpu-tools/make_model.py /root/qwen2-rand > "$OUT/model.txt" 2>&1
