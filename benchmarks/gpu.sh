#!/usr/bin/env bash
# The GPU checks, in one short run on a machine with an NVIDIA GPU and its own torch,
# Triton and timm (such as a CUDA image with no package registry to reach):
#
#   make gpu-wheels            # here: the packages that image lacks, and mrife, as wheels
#   OUT=gpu bash benchmarks/gpu.sh   # there, from the repository root, .gpu-wheels beside it
#
# It installs the wheels (no index, no dependencies), then writes under $OUT:
#   install.log  pip's account of the wheels
#   machine.txt  the GPU, driver, torch and Triton the figures come from
#   cuda.log     the cuda test suite (tests/test_cuda.py), with each test's duration
#   kernel_bench_cuda.json, .md  the SFCE kernel benchmark (python -m mrife.kernels.bench)
#   kernel_bench_cuda_channels_last.json, .md  the same on channels-last maps
#   dry_run.log  `mrife train --profile paper --dry-run` in fp32 and bf16: step time and
#                CUDA memory at the paper's geometry (synthetic tiles: same shapes, no data)
# Each step has its own time limit, so a hung step costs its limit and not the lease.
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
REPO=$(pwd)
python3 -m pip install --no-deps --no-index --no-cache-dir .gpu-wheels/*.whl > "$OUT/install.log" 2>&1 \
  || { echo "wheel install failed"; cat "$OUT/install.log"; }
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import sys, torch, triton, timm; print('python', sys.version.split()[0], '| torch', torch.__version__,
'| triton', triton.__version__, '| timm', timm.__version__, '| CUDA', torch.version.cuda)"
  nproc; date -u; } > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

# From outside the tree: the source folder mrife/ lacks mrife.kernels (it lives in kernels/),
# so the tests must import the installed package.
cd /tmp
timeout 300 python3 -m pytest -m cuda "$REPO/tests/test_cuda.py" -p no:cacheprovider -q --durations=0 \
  > "$OUT/cuda.log" 2>&1
echo "cuda suite: rc $?"; tail -n 25 "$OUT/cuda.log"
for layout in "" --channels-last; do
  name=kernel_bench_cuda${layout:+_channels_last}
  timeout 110 python3 -m mrife.kernels.bench --device cuda --sizes 1024 4096 16384 --repeats 10 $layout \
    --json "$OUT/$name.json" --markdown "$OUT/$name.md"
  echo "kernel benchmark ${layout:-contiguous}: rc $?"
done
for precision in fp32 bf16; do
  timeout 70 python3 -m mrife train --profile paper --dry-run --no-progress --set model.pretrained=false \
    --set data.source=synthetic --set data.synthetic_scenes=16 --set data.synthetic_size=1024 \
    --set train.device=cuda --set train.precision=$precision
  echo "dry run $precision: rc $?"
done > "$OUT/dry_run.log" 2>&1
cat "$OUT/dry_run.log"
