#!/usr/bin/env bash
# The router against real vLLM 0.26 on the offline GPU host (docs/engines-gpu.md). Staging, one
# device call each, back to back (a copy lives only while the host is held):
#   carry [".whl-p0", ".whl"]: mkdir -p /root/stage && cp .whl-p0/* /root/stage/ && \
#        python3 -m pip install -q --no-index --no-deps --target /root/roadwork-site .whl/*.whl
#   carry [".whl-p1"]: cp .whl-p1/* /root/stage/      (and the same for .whl-p2)
#   carry [".whl-p3", ".gpu-tools"]: cp .whl-p3/* /root/stage/ && bash bench/gpu/engines.sh
# .whl-pN are the four parts of the vLLM 0.26 install tree (../shared/tools/gpu-vllm: dl.sh,
# build_site.sh, `tar | xz -9 | split -n 4`); .whl the router's wheels (bench/gpu/detect.sh);
# .gpu-tools/make_model.py builds the random Qwen2-0.5B and its tokenizer.
set -u
source "$(dirname "$0")/vllm_site.sh"
python3 -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__, torch.cuda.get_device_name())" \
  > "$OUT/versions.txt" 2>&1
timeout 560 python3 -m bench.gpu.engines --out "$OUT" > "$OUT/engines.txt" 2>&1
echo "engines rc=$?"
tail -c 3000 "$OUT/engines.txt"
