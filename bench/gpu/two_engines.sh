#!/usr/bin/env bash
# The router launching real SGLang 0.5.14 and LMDeploy 0.18 on one GPU (bench/gpu/two_engines.py,
# docs/engines-gpu.md). Staging, one device call each, back to back (a copy lives only while the
# host is held):
#   carry [".whl-sg1"]: mkdir -p /root/stage && cp .whl-sg1/* /root/stage/
#   carry [".whl-sg2"]: cp .whl-sg2/* /root/stage/
#   carry [".whl-lm", ".whl", ".gpu-tools"]: bash bench/gpu/two_engines.sh
# .whl-sg1/2 are the two halves of the SGLang install tree, .whl-lm the LMDeploy one
# (../shared/tools/gpu-sglang and gpu-lmdeploy: dl.sh, build_site.sh, tar | gzip, split -n 2);
# .whl the router's wheels (bench/gpu/detect.sh); .gpu-tools/sglang/make_model.py builds the models.
set -u
OUT=${OUT:-/tmp/roadwork-gpu}
mkdir -p "$OUT"
if [ ! -d /root/site/sglang ]; then
  mkdir -p /root/site && cat /root/stage/sg.tgz.part* | gzip -dc | tar -x -C /root/site || exit 1
fi
if [ ! -d /root/lmsite/lmdeploy ]; then
  mkdir -p /root/lmsite && gzip -dc .whl-lm/lm.tgz | tar -x -C /root/lmsite || exit 1
fi
[ -d /root/roadwork-site/pydantic ] || python3 -m pip install -q --no-index --no-deps --target /root/roadwork-site .whl/*.whl
# The models, with the image's own transformers (before any PYTHONPATH): a random Qwen2-0.5B with its
# tokenizer beside it for SGLang, the same shapes as a Llama with the tokenizer inside for LMDeploy.
[ -f /root/qwen2-rand/model.safetensors ] || timeout 120 python3 .gpu-tools/sglang/make_model.py /root/qwen2-rand > "$OUT/model.txt" 2>&1
[ -f /root/llama-rand/model.safetensors ] || ARCH=llama timeout 120 python3 .gpu-tools/sglang/make_model.py /root/llama-rand >> "$OUT/model.txt" 2>&1
export PYTHONPATH="/root/roadwork-site:$PWD" PYTHONUNBUFFERED=1 YOLO_OFFLINE=true HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1
timeout 540 python3 -m bench.gpu.two_engines --out "$OUT" > "$OUT/two_engines.txt" 2>&1
echo "two_engines rc=$?"
grep -v "Loading\|Writing" "$OUT/two_engines.txt" | tail -c 6000
for f in "$OUT"/engine-logs/*.log; do echo "== $f"; grep -v "^\s*$" "$f" | tail -15; done
