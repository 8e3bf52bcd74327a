#!/usr/bin/env bash
# The full few-shot grid (2 targets x 3 shot counts x 9 methods x 3 seeds, 1000 steps each) on one lent GPU:
#   source .gpu/env.sh && bash bench/gpu_transfer.sh "$OUT"
# Six `gan-tl transfer-bench` workers, one per (target, seed), each walking its cells one after another (shots in
# increasing order, so a cut-off loses the 1000-shot cells first). Each worker starts its methods at a different
# place in the list, so that the workers compile different training steps at first.
# All workers share one persistent XLA compilation cache: a cell's training step has the same program for every
# seed and both targets (it depends on the method and the shot count only), so it is compiled once per
# (method, shots) and loaded from the cache afterwards. On the 2-core CPU here (JAX backend) a second process
# lowered a cached 50-step cell in about 3 s instead of compiling it again.
# Each run starts from the rows of PREVIOUS (default bench/transfer_gpu/results.csv; commit the merged results
# after each session) and `transfer-bench` skips the cells they hold.
# (A first version ran 18 workers at once without the cache, one per target and method: sharing the GPU and 16
# host cores, each needed over 300 s for its first cell. See bench/transfer_gpu/README.md.)
# The rows are merged into one results folder at the end (results.csv/json/md, kid_vs_shots.png), with the
# samples and logs as archives, so that at most 8 files come back from the machine.
# QUICK=1 runs a tiny grid, to check the script on a CPU.
set -uo pipefail
out=${1:-bench/transfer_gpu}
work=${WORK:-/tmp/transfer_workers}
mkdir -p "$out" "$work"
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.14   # six processes share the GPU
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$work/xla_cache} JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
methods=(scratch finetune freeze_d freeze_g scale_shift l2sp ewc minegan cdc)
seeds=(0 1 2)
previous=${PREVIOUS:-bench/transfer_gpu/results.csv}
if [ "${QUICK:-0}" = 1 ]; then
  grid="--shots 10 --steps 20 --n 100"; methods=(scratch freeze_d); seeds=(0); previous=${PREVIOUS:-none}
else grid="--shots 10 100 1000 --steps 1000 --n 2000"; fi
limit=${WORKER_SECONDS:-540}
# continue an earlier grid: its rows (default: the committed bench/transfer_gpu/results.csv) go to the workers'
# folders first, and transfer-bench skips those cells
python - "$previous" "$work" <<'PY'
import sys
from pathlib import Path
from gan_tl_course.fewshot import _append_result, read_results
previous, work = Path(sys.argv[1]), Path(sys.argv[2])
for row in read_results(previous):
    folder = work / f'{row["target"]}_s{row["seed"]}'
    folder.mkdir(parents=True, exist_ok=True)
    _append_result(folder / "results.csv", row)
archive = previous.parent / "samples.tar.gz"                 # and their sample grids, so the archive stays whole
if archive.is_file():
    import tarfile
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name                    # {target}_k{shots}_{method}_s{seed}.png
            folder = work / f'{name.split("_")[0]}_{Path(name).stem.split("_")[-1]}' / "samples"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(tar.extractfile(member).read())
print(f"continuing from {len(read_results(previous))} earlier rows of {previous}")
PY
t0=$SECONDS
worker=0
for seed in "${seeds[@]}"; do
  for target in near far; do
    shift_by=$(( (worker * ${#methods[@]}) / 6 ))             # stagger the method order across the workers
    order=("${methods[@]:shift_by}" "${methods[@]:0:shift_by}")
    timeout "$limit" python -c "import sys; from gan_tl_course.cli import main; sys.exit(main())" transfer-bench \
      --out "$work/${target}_s$seed" --targets $target --seeds $seed --methods "${order[@]}" $grid \
      > "$work/${target}_s$seed.log" 2>&1 &
    worker=$((worker + 1))
  done
done
wait
echo "workers done in $((SECONDS - t0)) s"
python - "$work" "$out" <<'PY'
import sys, tarfile
from pathlib import Path
from gan_tl_course.fewshot import _append_result, read_results, write_reports
work, out = Path(sys.argv[1]), Path(sys.argv[2])
rows = [row for folder in sorted(p for p in work.iterdir() if p.is_dir() and p.name != "xla_cache") for row in read_results(folder / "results.csv")]
for row in rows:
    _append_result(out / "results.csv", row)
write_reports(read_results(out / "results.csv"), out)
with tarfile.open(out / "samples.tar.gz", "w:gz") as tar:
    for png in sorted(work.glob("*/samples/*.png")):
        tar.add(png, arcname=f"samples/{png.name}")
with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
    for log in sorted(work.glob("*.log")):
        tar.add(log, arcname=f"logs/{log.name}")
print(f"{len(rows)} rows")
PY
cat "$out/results.md" 2>/dev/null
