#!/usr/bin/env bash
# Issue 19's GPU table as one call on a lent GPU machine (JAX and PyTorch with CUDA, no TensorFlow; see
# ../shared/gpu/README.md):   source .gpu/env.sh && bash bench/gpu_study.sh "$OUT"
# It runs chapter 5a's GPU_STUDY (the trainer on JAX in float32 and mixed bfloat16, the same step compiled per step
# and fed from the host, the PyTorch peer eager and compiled, compiled in bfloat16) on the full dcgan28 preset
# (width 64) at batch 256 and 1024, two rounds, with the MFU against the GPU's dense bfloat16 peak: PEAK_TFLOPS,
# by default 989 (NVIDIA's H100/H200 SXM datasheet: 1,979 TFLOPS bfloat16 with sparsity, half of it dense).
# Peak memory per image comes from JAX's and PyTorch's own counters. QUICK=1 checks the script on a CPU first.
set -uo pipefail
out=${1:-bench/gpu_study}
mkdir -p "$out"
if [ "${QUICK:-0}" = 1 ]; then sizes=(--width 8 --batch-sizes 16 --seconds 0 --limit 512)
else sizes=(--batch-sizes 256 1024 --seconds 5 --repeats 2); fi
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
  python -c "import jax, torch, keras; print('jax', jax.__version__, jax.devices(), 'torch', torch.__version__, 'keras', keras.__version__)"
  python -c "import sys; from gan_tl_course.cli import main; sys.exit(main())" bench --study gpu \
    --peak-tflops "${PEAK_TFLOPS:-989}" "${sizes[@]}" --out "$out/study.json"
} 2>&1 | tee "$out/gpu_study.log"
