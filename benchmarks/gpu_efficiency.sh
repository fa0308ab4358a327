#!/usr/bin/env bash
# The search-efficiency benchmark on one CUDA GPU: one process per sampler seed and method
# ((a) the lars-search defaults with lr: auto, (b) random without pruning), all sharing the
# GPU, every complete trial's test accuracy recorded beside the study, then the report.
#
#   benchmarks/gpu_efficiency.sh OUTDIR [RUN_SECONDS] [SEEDS] [VAL_SIZE] [EXTRA_ARGS...]
#
# RUN_SECONDS (default 330): no trial starts after them; runs cut short are reported as
# such. VAL_SIZE (default 10000): validation images held out of the training split.
# EXTRA_ARGS go to every run of (a) and to the report, e.g. --a tpe (a variant of VARIANTS);
# ANALYSE_ARGS to the report alone. The database and figures go
# to OUTDIR (several invocations may share it, e.g. variants of (a) reusing the runs of (b));
# the report to OUTDIR/efficiency<EXTRA_ARGS>.txt.
set -u
out=${1:-gpu-efficiency}
run_s=${2:-330}
seeds=${3:-6}
val=${4:-10000}
shift $(($# < 4 ? $# : 4))
mkdir -p "$out"
out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 1
export PYTHONUNBUFFERED=1 PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python3}
# DEVICE and SE_ARGS (e.g. DEVICE=cpu SE_ARGS="--size smoke --trials 2") make a smoke run of this script
read -r -a se_args <<<"${SE_ARGS:-}"
common=(--device "${DEVICE:-cuda}" --val-size "$val" --storage "sqlite:///$out/efficiency.db"
        "${se_args[@]}")
start=$(date +%s)
for ((s = 0; s < seeds; s++)); do
    for run in a b; do
        extra=()
        [[ $run == a ]] && extra=("$@")
        timeout --kill-after=10 $((run_s + 90)) "$python" benchmarks/search_efficiency.py "${common[@]}" \
            --run "$run" --seeds 1 --first-seed "$s" --time-limit "$run_s" "${extra[@]}" \
            --figure "$out/run-$$-$run-s$s.png" >"$out/run-$$-$run-s$s.txt" 2>&1 &
    done
done
wait
echo "== runs: $(($(date +%s) - start)) s"
grep -h "^# " "$out"/run-$$-*.txt
grep -h "Error\|error:" "$out"/run-$$-*.txt | sort | uniq -c | head
rm -f "$out"/run-$$-*.txt "$out"/run-$$-*.png
name=efficiency$(printf '%s' "$*" | tr -c 'A-Za-z0-9.' '-')
read -r -a analyse_args <<<"${ANALYSE_ARGS:-}"
timeout 120 "$python" benchmarks/search_efficiency.py "${common[@]}" --seeds "$seeds" --analyse-only "$@" \
    "${analyse_args[@]}" --figure "$out/$name.png" 2>&1 | grep -v "^\s*$" | tee "$out/$name.txt"
"$python" -c "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('pragma wal_checkpoint(truncate)')" \
    "$out/efficiency.db"
rm -f "$out"/*.db-shm "$out"/*.db-wal "$out"/*.lock
echo "== all: $(($(date +%s) - start)) s"
