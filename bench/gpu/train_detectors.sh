#!/usr/bin/env bash
# Train the two demo detectors on the offline GPU host, fit their
# calibration and measure the MCC table through Detect: one device command, every result under $OUT.
#
#   device run, carry [".whl-train"]:  bash bench/gpu/train_detectors.sh
#
# .whl-train/ holds the cp312 wheels the host lacks (see bench/gpu/train_vlm.sh for the download), plus
# grpcio-status, googleapis-common-protos, httpx, httpcore, h11, anyio, idna, certifi, prometheus-client
# for the router. The host has no polars, which ultralytics 8.4.190 reads results.csv with when it saves
# a checkpoint (its runs stopped after epoch 1 on 2026-12-01); training.train then reads it with csv.
# Data: training.synth with domain randomization, AUGMENT of the scenes given the StreetVision
# validator augmentation (boxes follow), JPEG quality 35-90. The held-out style (training.heldout)
# is only rendered by training.quality, never written to a dataset.
# The whole script keeps within BUDGET_S: training gets MINUTES each (ultralytics `time`; auto fits the
# budget, since on 2026-12-01 a fixed 1.2 min each plus ~50 s of caching and validation overran it), the other
# steps their own timeouts. $OUT (8 files): steps.txt, logs.tgz (logs, per-epoch CSVs), train-report.json,
# the two .pt files, and with EVAL=1 calibration.json, calibration-report.json, quality.json.
# DEVICE=cpu DETECT_DEVICE=cpu TRAIN=16 VAL=4 EPOCHS=1 MINUTES=0 IMGSZ=160 CAL_N=4 QUAL_N=4: a dry run.
set -u
OUT=${OUT:-/tmp/roadwork-det}
TRAIN=${TRAIN:-9000}
VAL=${VAL:-600}
AUGMENT=${AUGMENT:-0.35}
EPOCHS=${EPOCHS:-40}
MINUTES=${MINUTES:-auto}  # per model; auto: what the budget leaves
INIT=${INIT-detectors/models}
EVAL=${EVAL:-1}
IMGSZ=${IMGSZ:-512}
BATCH=${BATCH:-64}
CAL_N=${CAL_N:-800}
QUAL_N=${QUAL_N:-400}
DEVICE=${DEVICE:-0}
DETECT_DEVICE=${DETECT_DEVICE:-cuda}
BUDGET_S=${BUDGET_S:-560}  # EVAL=0 BUDGET_S=360: training only
WORK=${WORK:-/root/det-work}
SITE=${SITE:-/root/roadwork-site}
mkdir -p "$OUT" "$WORK"
STEPS="$OUT/steps.txt"
: > "$STEPS"

# left, step: the step timer shared by the GPU scripts
. "$(dirname "$0")/steps.sh"

if [ -d .whl-train ]; then
  step pip 90 "$OUT/pip.log" python3 -m pip install -q --no-index --no-deps --target "$SITE" .whl-train/*.whl
fi
export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1 YOLO_OFFLINE=true YOLO_AUTOINSTALL=false
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  echo "cpus $(nproc)"
} >> "$STEPS"

step data 150 "$OUT/data.log" python3 -m training.synth "$WORK/data" --train "$TRAIN" --val "$VAL" --randomize \
  --augment "$AUGMENT" --min-quality 35 --workers "$(nproc)"
tail -4 "$OUT/data.log" >> "$STEPS"

# Both members in one process, one after the other, each fine-tuned from the shipped weights (INIT) for
# MINUTES (ultralytics `time`); INIT= trains from random weights.
EVAL_RESERVE_S=$([ "$EVAL" = 1 ] && echo 130 || echo 15)
INIT_ARGS=()
[ -n "$INIT" ] && INIT_ARGS=(--init "$INIT")
TRAIN_S=$(( $(left) - EVAL_RESERVE_S ))
if [ "$MINUTES" = auto ]; then  # each model also spends ~50 s caching images and validating outside `time`
  MINUTES=$(python3 -c "print(round(max(0.2, ($TRAIN_S - 2 * 50) / 120), 2))")
fi
echo "training: ${MINUTES} min per model within ${TRAIN_S} s" >> "$STEPS"
step train "$TRAIN_S" "$OUT/train.log" python3 -m training.train "$WORK/models" \
  --data "$WORK/data/data.yaml" --models roadwork-yolo11n.yaml roadwork-yolov8n.yaml --epochs "$EPOCHS" \
  --imgsz "$IMGSZ" --batch "$BATCH" --device "$DEVICE" --minutes "$MINUTES" "${INIT_ARGS[@]}"
cp "$WORK"/models/*.pt "$WORK/models/train-report.json" "$OUT/" 2>> "$STEPS"
for m in yolo11n yolov8n; do
  csv="$WORK/models/runs/roadwork-$m/results.csv"
  [ -f "$csv" ] && cp "$csv" "$OUT/results-$m.csv" && echo "$m epochs run: $(( $(wc -l < "$csv") - 1 ))" >> "$STEPS"
done
grep -h '"val_map50"' "$OUT/train-report.json" >> "$STEPS" 2>/dev/null
ls -l "$OUT"/*.pt >> "$STEPS" 2>&1

# The new weights' calibration and MCC table through Detect (EVAL=0: do these where the weights land).
if [ "$EVAL" = 1 ]; then
  export ROADWORK__DETECTORS__0__WEIGHTS="$OUT/roadwork-yolo11n.pt" ROADWORK__DETECTORS__1__WEIGHTS="$OUT/roadwork-yolov8n.pt"
  export ROADWORK__DETECTORS__0__DEVICE="$DETECT_DEVICE" ROADWORK__DETECTORS__1__DEVICE="$DETECT_DEVICE"
  step calibrate $(( $(left) - 60 )) "$OUT/calibrate.log" python3 -m training.calibrate --n "$CAL_N" \
    --out "$OUT/calibration.json" --report "$OUT/calibration-report.json"
  export ROADWORK__DETECTION__CALIBRATION="$OUT/calibration.json"
  [ -f "$OUT/calibration.json" ] || export ROADWORK__DETECTION__CALIBRATION=""
  step quality $(( $(left) - 5 )) "$OUT/quality.log" python3 -m training.quality --n "$QUAL_N" \
    --device "$DETECT_DEVICE" --json "$OUT/quality.json"
fi
echo "total ${SECONDS}s" >> "$STEPS"
# At most 8 files come back: the logs and per-epoch CSVs travel as one archive.
(cd "$OUT" && tar -czf logs.tgz ./*.log ./*.csv 2>/dev/null && rm -f ./*.log ./*.csv)
cat "$STEPS"
