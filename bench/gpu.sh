#!/usr/bin/env bash
# The GPU measurements, run as one batch on a lent GPU machine (JAX backend; see ../shared/gpu/README.md):
#   source .gpu/env.sh && bash bench/gpu.sh "$OUT"   (the package runs from the checkout, not installed)
# Writes into the folder given (default bench/gpu): the bench JSON per precision, the pretrain timings, the emoji32
# source run (shipped afterwards with `ship_source`), the `gan-tl demo` timing, and gpu.log with every command.
# QUICK=1 shrinks every size so the script can be checked on a CPU before spending GPU time.
set -uo pipefail   # no -e: one failed measurement must not stop the others
out=${1:-bench/gpu}
mkdir -p "$out"
runs=${RUNS:-/tmp/gpu_runs}
# the rendered emoji (made here by load_emoji), so the GPU machine does not spend its time rendering glyphs
[ -d .gpu/cache ] && export GAN_TL_CACHE=$PWD/.gpu/cache
if [ "${QUICK:-0}" = 1 ]; then bench_steps=4; pre_steps=20; emoji_steps=20; small="--width 8 --limit 512"; emoji_small="--limit 256"; demo="--shots 20 --steps 20 --n-eval 200"
else bench_steps=300; pre_steps=3000; emoji_steps=8000; small=""; emoji_small=""; demo=""; fi
gan() {   # run `gan-tl ARGS` from the checkout, print its wall time, return its exit status
  echo "+ gan-tl $*"; local t0=$SECONDS rc=0
  ${LIMIT:+timeout $LIMIT} python -c "import sys; from gan_tl_course.cli import main; sys.exit(main())" "$@" || rc=$?
  echo "wall $((SECONDS - t0)) s, exit $rc: gan-tl $1"; return $rc
}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
  python -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
  for precision in float32 mixed_bfloat16; do
    gan bench --preset dcgan28 --batch-sizes 256 1024 --steps $bench_steps --precision $precision $small \
      --out "$out/gpu_jax_${precision}.json"
  done
  for precision in float32 mixed_bfloat16; do
    gan pretrain --images fashion_mnist --preset dcgan28 --steps $pre_steps --precision $precision --quiet $small \
      --out "$runs/pretrain_$precision"
    cp "$runs/pretrain_$precision/result.json" "$out/pretrain_fashion28_${precision}.json"
  done
  cp "$runs/pretrain_float32/samples.png" "$out/pretrain_fashion28_samples.png"
  gan demo --out "$runs/demo" --quiet $demo
  cp "$runs/demo/demo.json" "$out/demo_gpu.json"
  # capped, so that a slow emoji run cannot eat the lease; what it reached is kept only if it finished
  LIMIT=${EMOJI_SECONDS:-240} gan pretrain --images emoji --preset dcgan32 --width 32 --steps $emoji_steps --r1-gamma 0.1 \
    --augment color,translation,cutout --quiet $emoji_small --out "$runs/emoji32" || echo "emoji32 run did not finish"
  [ -f "$runs/emoji32/result.json" ] && python - "$runs/emoji32" "$out" <<'EOF'
import sys, tarfile
from pathlib import Path
run, out = Path(sys.argv[1]), Path(sys.argv[2])
with tarfile.open(out / "emoji32_run.tar.gz", "w:gz") as tar:   # shipped here with ship_source("emoji32", ...)
    for f in ("run.json", "result.json", "ema_generator.keras", "discriminator.keras", "samples.png", "loss.png"):
        tar.add(run / f, arcname=f"emoji32/{f}")
EOF
} 2>&1 | tee "$out/gpu.log"
