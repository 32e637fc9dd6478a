#!/usr/bin/env bash
# Train the demo VLM (training/vlm.py) on the offline GPU host, then evaluate it on held-out scenes
# (training/evaluate_vlm.py): one device command, every result under $OUT.
#
#   device run, carry [".whl-train"]:  MINUTES=6 bash bench/gpu/train_vlm.sh
#
# .whl-train/ holds the cp312 wheels the host lacks (the host has torch, torchvision, transformers,
# numpy, pillow, opencv, matplotlib, scipy); fetch them on the CPU machine with
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl-train ultralytics==8.4.190 ultralytics-thop==2.2.3 grpcio==1.85.3 protobuf==7.36.2 \
#     pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
#     tenacity==9.2.1 typing-extensions==4.16.0
# The whole script keeps within BUDGET_S (default 580 s, under the 600 s command limit): training
# gets what is left after the other steps' reserves, and the training loop itself stops early
# (--wall-minutes) rather than be killed. $OUT gets at most 7 files: steps.txt (timings, versions,
# GPU), pip.log, train.log, eval.log, train-report.json, eval-report.json, and model.tar (the model
# folder, about 13 MB).
set -u
OUT=${OUT:-/tmp/roadwork-vlm}
MINUTES=${MINUTES:-6}        # training loop
SCENES=${SCENES:-6000}       # training scenes (a quarter also StreetVision-augmented)
EVAL_N=${EVAL_N:-250}        # held-out scenes (each clean and augmented), asked with and without the summary
BUDGET_S=${BUDGET_S:-580}
EVAL_RESERVE_S=${EVAL_RESERVE_S:-150}
DEVICE=${DEVICE:-cuda}       # DEVICE=cpu SHAPE=smoke SCENES=8 MINUTES=0.2 EVAL_N=2: a dry run on a CPU machine
SHAPE=${SHAPE:-demo}
WORK=${WORK:-/root/vlm-work}
SITE=${SITE:-/root/roadwork-site}
MODEL=$WORK/roadwork-qwen2vl-demo
mkdir -p "$OUT" "$WORK"
STEPS="$OUT/steps.txt"
: > "$STEPS"

# left, step: the step timer shared by the GPU scripts
. "$(dirname "$0")/steps.sh"

step pip 90 "$OUT/pip.log" python3 -m pip install -q --no-index --no-deps --target "$SITE" .whl-train/*.whl
export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1 YOLO_OFFLINE=true YOLO_AUTOINSTALL=false
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo "cpus $(nproc)"
  df -h /dev/shm | tail -1
} >> "$STEPS" 2>&1
step versions 60 "$STEPS" python3 -c "import sys, torch, torchvision, transformers, ultralytics, pydantic, grpc; \
print('python', sys.version.split()[0], 'torch', torch.__version__, 'torchvision', torchvision.__version__, \
'transformers', transformers.__version__, 'ultralytics', ultralytics.__version__, 'pydantic', pydantic.__version__, \
'grpcio', grpc.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"

TRAIN_S=$(( $(left) - EVAL_RESERVE_S - 15 ))
WALL_MIN=$(python3 -c "print(round(max(0.5, ($TRAIN_S - 15) / 60), 2))")
rm -rf "$MODEL"
step train "$TRAIN_S" "$OUT/train.log" python3 -m training.vlm "$MODEL" --scenes "$SCENES" --minutes "$MINUTES" \
  --wall-minutes "$WALL_MIN" --device "$DEVICE" --shape "$SHAPE" --workers 14 --jobs 16 --report "$OUT/train-report.json"

if [ -f "$MODEL/model.safetensors" ]; then
  step eval $(( $(left) - 10 )) "$OUT/eval.log" python3 -m training.evaluate_vlm "$MODEL" --n "$EVAL_N" \
    --device "$DEVICE" --workers 14 --jobs 16 --out "$OUT/eval-report.json"
  tar -C "$WORK" -cf "$OUT/model.tar" "$(basename "$MODEL")" && ls -l "$OUT/model.tar" >> "$STEPS"
else
  echo "no model saved: see train.log" >> "$STEPS"
fi
echo "total ${SECONDS}s" >> "$STEPS"
cat "$STEPS"
grep -E "^(rendered|detected|model:|trained|final|saved)" "$OUT/train.log" 2>/dev/null
grep -E "^step " "$OUT/train.log" 2>/dev/null | tail -4
grep -E "^\||^goal|^## " "$OUT/eval.log" 2>/dev/null
