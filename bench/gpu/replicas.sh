#!/usr/bin/env bash
# Issue 15 on the offline GPU host, where the store is on the detect-only hot path (docs/benchmarks.md):
# bench.replicas --detect-only, detect-only bulk jobs through one router on SQLite, then 1, 2 and 3
# routers sharing one PostgreSQL, every detector on the GPU; then the store-only figures. Results
# under $OUT. Not run yet (written 2026-12-01).
#
#   here, once:   bash bench/gpu/replicas.sh stage   (fills .whl-pg/: the server archive, psycopg wheels)
#   device run, carry [".whl-speed", ".whl-pg"]:  COMMIT=<hash> bash bench/gpu/replicas.sh
#
# The host has no PostgreSQL. `stage` packs Debian 12's server from this machine (make pg-env installs
# it): postgres and initdb, the plpgsql and snowball modules initdb loads, the share files it reads,
# in their /usr/lib/postgresql/<major> and /usr/share/postgresql/<major> layout (the binaries find each
# other by relative path, so the tree works unpacked anywhere), and every shared library they load but
# glibc's (they need glibc 2.34 or newer). That is 19.6 MB with xz, not a few MiB: the server links ICU 72,
# 35 MB of libraries on its own (10.4 MB without it; 3.5 MB for the server alone, which would need the
# host to have Debian 12's sonames, ICU 72 and OpenLDAP 2.5 among them). The host runs it through
# tests/pg.py (ROADWORK_PG_BINDIR, LD_LIBRARY_PATH) as a `postgres` user, since initdb refuses root.
# .whl-speed/ as in bench/gpu/speed.sh (the router's cp312 wheels); .whl-pg/ adds psycopg, psycopg-binary
# and psycopg-pool (cp312) and prometheus-client if the host lacks it.
set -u
if [ "${1:-}" = stage ]; then
  set -e
  V=$(ls /usr/lib/postgresql | sort -n | tail -1)
  TREE=$(mktemp -d)
  mkdir -p "$TREE/usr/lib/postgresql/$V/bin" "$TREE/usr/lib/postgresql/$V/lib" "$TREE/usr/lib/pgsys" \
    "$TREE/usr/share/postgresql/$V"
  cp /usr/lib/postgresql/"$V"/bin/{postgres,initdb} "$TREE/usr/lib/postgresql/$V/bin/"
  cp /usr/lib/postgresql/"$V"/lib/{plpgsql.so,dict_snowball.so} "$TREE/usr/lib/postgresql/$V/lib/"
  cp -r /usr/share/postgresql/"$V"/. "$TREE/usr/share/postgresql/$V/"
  rm -rf "$TREE/usr/share/postgresql/$V/man"
  find "$TREE/usr/share/postgresql/$V/extension" -type f ! -name 'plpgsql*' -delete
  ldd /usr/lib/postgresql/"$V"/bin/{postgres,initdb} | awk '/=>/ {print $3}' | sort -u \
    | grep -vE '/(libc|libm|libresolv|libpthread|libdl|librt)\.so' | xargs -I{} cp -L {} "$TREE/usr/lib/pgsys/"
  mkdir -p .whl-pg
  tar -C "$TREE" -cJf ".whl-pg/postgresql-$V.txz" usr
  rm -rf "$TREE"
  python3 -m pip download -q -d .whl-pg --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 psycopg==3.3.9 psycopg-binary==3.3.9 \
    psycopg-pool==3.3.3 prometheus-client
  ls -la .whl-pg
  exit 0
fi
OUT=${OUT:-/tmp/roadwork-gpu}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
SITE=/root/roadwork-site
for w in .whl-speed .whl-pg; do  # one install each: both hold prometheus-client, and pip refuses the pair
  [ -d "$w" ] && python3 -m pip install -q --no-index --no-deps --target "$SITE" "$w"/*.whl >> "$LOG" 2>&1
done
mkdir -p /root/pg && tar -C /root/pg -xJf .whl-pg/postgresql-*.txz
chmod o+rx /root /root/pg  # initdb runs as the postgres user: it must reach the tree (2026-12-01: exit 127 without)
V=$(ls /root/pg/usr/lib/postgresql | sort -n | tail -1)
id postgres > /dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
export ROADWORK_PG_BINDIR=/root/pg/usr/lib/postgresql/$V/bin LD_LIBRARY_PATH=/root/pg/usr/lib/pgsys
export PYTHONPATH="$SITE:$PWD" YOLO_OFFLINE=true PYTHONUNBUFFERED=1
{
  echo "commit ${COMMIT:-?}, $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  nproc
  ldd "$ROADWORK_PG_BINDIR/postgres" | grep "not found" || echo "postgres: every library found"
} >> "$LOG" 2>&1

BUDGET_S=590 STEPS="$OUT/steps.txt"
source "$(dirname "$0")/steps.sh"

# 1. Detect-only jobs through routers: 1 on SQLite, 1-3 on PostgreSQL (medians of 3 jobs of 5,000 items).
step detect-only "$(($(left) - 150))" "$LOG" python3 -m bench.replicas --detect-only --device cuda --router-items "${ITEMS:-5000}" \
  --rounds "${ROUNDS:-3}" --json "$OUT/replicas-detect-only-h200.json"
# 2. The store alone (instant outcomes), for the same table as on the CPU machine.
step store-only "$(left)" "$LOG" python3 -m bench.replicas --json "$OUT/replicas-h200.json"
cat "$STEPS"
tail -40 "$LOG"
