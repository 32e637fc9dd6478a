#!/usr/bin/env bash
# Issue 16's bulk goal with the store on PostgreSQL (docs/benchmarks.md): bench.detect_speed --compare-process 8, every
# router process on one PostgreSQL (the server staged by `bash bench/gpu/replicas.sh stage`). Device calls, back to back:
#   carry [".whl-speed"]: python3 -m pip install -q --no-index --no-deps --target /root/roadwork-site .whl-speed/*.whl
#   carry [".whl-pg"]:    bash bench/gpu/shared_detection_pg.sh     (ran 2026-12-01 on the H200 in 156 s)
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; LOG="$OUT/log.txt"
SITE=/root/roadwork-site
python3 -m pip install -q --no-index --no-deps --target "$SITE" .whl-pg/*.whl >> "$LOG" 2>&1
mkdir -p /root/pg && tar -C /root/pg -xJf .whl-pg/postgresql-*.txz && chmod o+rx /root /root/pg
V=$(ls /root/pg/usr/lib/postgresql | sort -n | tail -1)
id postgres > /dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
export ROADWORK_PG_BINDIR=/root/pg/usr/lib/postgresql/$V/bin LD_LIBRARY_PATH=/root/pg/usr/lib/pgsys
export PYTHONPATH="$SITE:$PWD" YOLO_OFFLINE=true PYTHONUNBUFFERED=1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
python3 - > /tmp/pgurl.txt 2>> "$LOG" <<'X' &
import time
from tests.pg import PostgresServer
from tests.conftest import free_port
s = PostgresServer(free_port()); s.start(); print(s.database(), flush=True); time.sleep(3000)
X
for _ in $(seq 60); do [ -s /tmp/pgurl.txt ] && break; sleep 1; done
export ROADWORK__STORAGE__URL=$(head -1 /tmp/pgurl.txt)
echo "store $ROADWORK__STORAGE__URL" >> "$LOG"
timeout ${SPEED_S:-400} python3 -m bench.detect_speed --device cuda --compare-process 8 --rounds 1 --clients 64 --client-procs 8 \
  --requests 2048 --bulk-items 5000 --scenes 128 --json "$OUT/detect-shared-pg-h200.json" >> "$LOG" 2>&1
echo "compare rc=$?" >> "$LOG"
tail -c 2500 "$LOG"
