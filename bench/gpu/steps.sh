# Sourced by the GPU scripts: the time budget left, and one step under its own timeout.
# Needs BUDGET_S and STEPS (the steps log) set by the caller.

left() { echo $((BUDGET_S - SECONDS)); }
step() {  # step NAME SECONDS LOG COMMAND...: run under its own timeout, log its rc and duration
  local name=$1 limit=$2 logfile=$3
  shift 3
  local t0=$SECONDS
  if [ "$limit" -le 5 ]; then
    echo "$name skipped: no time left" >> "$STEPS"
    return 1
  fi
  timeout -k 10 "$limit" "$@" >> "$logfile" 2>&1
  local rc=$?
  echo "$name rc=$rc $((SECONDS - t0))s (limit ${limit}s, at ${SECONDS}s)" >> "$STEPS"
  return $rc
}
