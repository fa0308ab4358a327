#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one script, most important first, each step under its
# own time limit so that a slow step cannot eat the others:
#   1. the CUDA tests (lars on device tensors, bf16/channels_last/compile training, run --gpus 0)
#   2. the quickstart study on the GPU (wall time, compare table)
#   3. optimizer step time on CUDA (LARS vs fused SGD / fused Adam)
#   4. objective throughput on CUDA (train() vs a bare loop, full-width VGG-16)
#   5. the search-efficiency benchmark with one process per sampler seed sharing the GPU,
#      until the deadline (runs cut short are reported as such)
#
#   benchmarks/gpu_check.sh OUTDIR [TOTAL_SECONDS] [SEEDS]
#
# TOTAL_SECONDS (default 480) bounds the whole script: step 5 gets what steps 1-4 left.
#
# Needs the Python packages of pyproject.toml and Fashion-MNIST (see objectives.data for the
# places looked). Logs go to OUTDIR/gpu_check.log; the efficiency database and figure beside it.
set -u
out=${1:-gpu-check}
total_s=${2:-480}
began=$(date +%s)
seeds=${3:-10}
mkdir -p "$out"
out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 1
export PYTHONUNBUFFERED=1 PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python3}
log="$out/gpu_check.log"

step() {  # step NAME SECONDS COMMAND...: run it under a time limit, log all, show the tail
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    echo "== $name (limit ${limit} s): $*" | tee -a "$log"
    timeout --kill-after=10 "$limit" "$@" >"$out/$name.txt" 2>&1
    rc=$?
    cat "$out/$name.txt" >>"$log"
    echo "== $name: exit $rc after $(($(date +%s) - start)) s" | tee -a "$log"
    tail -n "${TAIL:-30}" "$out/$name.txt"
    rm -f "$out/$name.txt"
}

{ nvidia-smi -L; "$python" -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, \
torch.cuda.get_device_name(0))"; nproc; } 2>&1 | tee -a "$log"

step cuda_tests 200 "$python" -m pytest -q -p no:cacheprovider -rs -s \
    tests/lars/test_wrapper_cuda.py tests/objectives/test_objectives_train_cuda.py tests/search/test_gpu_run.py
step quickstart 120 "$python" -m search.cli run studies/quickstart.yaml --storage "sqlite:///$out/quickstart.db"
step optimizer_step 60 "$python" benchmarks/optimizer_step.py --device cuda --rounds 50 --no-norms
step objective_throughput 90 "$python" benchmarks/objective_throughput.py --device cuda --width 1 \
    --n-train 50000 --val-size 5000 --batch-size 512 --rounds 3

efficiency_s=$((total_s - ($(date +%s) - began) - 45))
((efficiency_s < 30)) && efficiency_s=30
echo "== search_efficiency: $seeds seeds in parallel, no trial starts after $efficiency_s s" | tee -a "$log"
start=$(date +%s)
for ((s = 0; s < seeds; s++)); do
    timeout --kill-after=10 $((efficiency_s + 60)) "$python" benchmarks/search_efficiency.py --device cuda \
        --seeds 1 --first-seed "$s" --time-limit "$efficiency_s" --storage "sqlite:///$out/efficiency.db" \
        --figure "$out/efficiency-s$s.png" >"$out/efficiency-s$s.txt" 2>&1 &
done
wait
grep -h "^# " "$out"/efficiency-s*.txt | grep -v "^# search\|^# objective\|^# (a)\|^# figure" >>"$log"
rm -f "$out"/efficiency-s*.txt "$out"/efficiency-s*.png
echo "== search_efficiency runs: $(($(date +%s) - start)) s" | tee -a "$log"
TAIL=60 step efficiency_report 60 "$python" benchmarks/search_efficiency.py --device cuda --seeds "$seeds" \
    --analyse-only --storage "sqlite:///$out/efficiency.db" --figure "$out/efficiency.png"
"$python" -c "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('pragma wal_checkpoint(truncate)')" \
    "$out/efficiency.db"  # a killed run may have left its last trials in the write-ahead log
rm -f "$out"/*.db-shm "$out"/*.db-wal "$out"/*.lock "$out/quickstart.db"
