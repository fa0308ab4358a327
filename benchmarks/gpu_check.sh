#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one script, most important first, each step under its
# own time limit so that a slow step cannot eat the others:
#   1. the CUDA tests (lars on device tensors, bf16/channels_last/compile training, run --gpus 0)
#   2. the quickstart study on the GPU (wall time, compare table)
#   3. optimizer step time on CUDA (LARS vs fused SGD / fused Adam; goal <= 1.5x)
#   4. training-step time on CUDA (forward + backward + step of VGG-16 at width 0.125 and 1,
#      LARS(SGD/Adam fused) vs SGD/Adam fused; goal <= 1.05; issue 27)
#   5. objective throughput on CUDA (train() vs a bare loop, full-width VGG-16)
#   6. the search-efficiency benchmark (benchmarks/gpu_efficiency.sh: one process per sampler
#      seed and method sharing the GPU, validation on $VAL_SIZE images, default 10000)
#
#   benchmarks/gpu_check.sh OUTDIR [TOTAL_SECONDS] [SEEDS]
#
# TOTAL_SECONDS (default 480) bounds the whole script: step 6 gets what steps 1-5 left.
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
step optimizer_step 60 "$python" benchmarks/optimizer_step.py --device cuda --rounds 50
step train_step 90 "$python" benchmarks/train_step.py --device cuda --widths 0.125 1 --rounds 50 --warmup 5
step objective_throughput 90 "$python" benchmarks/objective_throughput.py --device cuda --width 1 \
    --n-train 50000 --val-size 5000 --batch-size 512 --rounds 3

efficiency_s=$((total_s - ($(date +%s) - began) - 90))
((efficiency_s < 30)) && efficiency_s=30
echo "== search_efficiency: $seeds seeds x 2 methods in parallel, no trial starts after $efficiency_s s" | tee -a "$log"
bash benchmarks/gpu_efficiency.sh "$out" "$efficiency_s" "$seeds" "${VAL_SIZE:-10000}" 2>&1 | tee -a "$log" | tail -n 60
rm -f "$out/quickstart.db"*
