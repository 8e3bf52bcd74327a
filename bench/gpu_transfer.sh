#!/usr/bin/env bash
# The full few-shot grid (2 targets x 3 shot counts x 9 methods x 3 seeds, 1000 steps each) on one lent GPU:
#   source .gpu/env.sh && bash bench/gpu_transfer.sh "$OUT"
# carrying .gpu/env.sh, .gpu/whl and .gpu/data/fashion-mnist (the grid needs no emoji; the working tree with all of
# .gpu/ is over the 64 MiB a device call carries).
# Six `gan-tl transfer-bench` workers share the GPU. Each holds all earlier rows and takes every sixth of the
# cells still to do (`--shard I 6`), so the remaining work is split evenly, and the workers start on different
# methods. The cells go in the grid's order (shots increasing), so a cut-off loses the 1000-shot cells first.
# All workers share one persistent XLA compilation cache: a cell's training step has the same program for every
# seed and both targets (it depends on the method and the shot count only), so it is compiled once per
# (method, shots) and loaded from the cache afterwards. On the 2-core CPU here (JAX backend) a second process
# lowered a cached 50-step cell in about 3 s instead of compiling it again.
# Each run starts from the rows of PREVIOUS (default bench/transfer_gpu/results.csv; commit the merged results
# after each session); `transfer-bench` skips the cells they hold. To continue on the same warm machine, pass
# PREVIOUS=/tmp/transfer_workers/merged/results.csv: the merge leaves a copy there, with its samples archive.
# History (bench/transfer_gpu/README.md): 18 workers without the cache, one per target and method, needed over
# 300 s for a first cell each; six workers, one per (target, seed), ran 112 cells in 761 s but finished their
# shares at different times.
# The rows are merged into one results folder at the end (results.csv/json/md, kid_vs_shots.png), with the
# samples and logs as archives, so that at most 8 files come back from the machine.
# QUICK=1 runs a tiny grid, to check the script on a CPU. FAMILY=vae runs the VAE grid of chapter 15a instead
# (its VAE sources are in the package's assets; carry the same parts of .gpu/).
set -uo pipefail
out=${1:-bench/transfer_gpu}
work=${WORK:-/tmp/transfer_workers}
mkdir -p "$out" "$work"
rm -rf "$work"/w* "$work/previous"           # a warm machine keeps xla_cache/ and merged/ from an earlier call
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$work/xla_cache} JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
workers=${WORKERS:-6}
family=${FAMILY:-gan}                       # FAMILY=vae: chapter 15a's VAE grid (results in bench/vae_transfer_gpu)
if [ "$family" = vae ]; then previous=${PREVIOUS:-bench/vae_transfer_gpu/results.csv}; quick_methods="vae_scratch vae_finetune"
else previous=${PREVIOUS:-bench/transfer_gpu/results.csv}; quick_methods="scratch freeze_d"; fi
if [ "${QUICK:-0}" = 1 ]; then
  grid="--shots 10 --steps 20 --n-eval 100 --seeds 0 --methods $quick_methods"; workers=2; previous=${PREVIOUS:-none}
else grid="--shots 10 100 1000 --steps 1000 --n-eval 2000 --seeds 0 1 2"; fi
grid="--family $family $grid"
export XLA_PYTHON_CLIENT_MEM_FRACTION=$(python -c "print(round(0.84 / $workers, 3))")   # the workers share the GPU
limit=${WORKER_SECONDS:-540}
# continue an earlier grid: its rows (default: the committed bench/transfer_gpu/results.csv) go into every worker's
# folder, so that all workers see the same cells still to do, and its sample grids into work/previous
python - "$previous" "$work" "$workers" <<'PY'
import sys
from pathlib import Path
from gan_tl_course.fewshot import append_row, read_results
previous, work, workers = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
for w in range(workers):
    (work / f"w{w}").mkdir(parents=True, exist_ok=True)
    for row in read_results(previous):
        append_row(work / f"w{w}" / "results.csv", row, tuple(row))
archive = previous.parent / "samples.tar.gz"                 # and their sample grids, so the archive stays whole
if archive.is_file():
    import tarfile
    (work / "previous" / "samples").mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            (work / "previous" / "samples" / Path(member.name).name).write_bytes(tar.extractfile(member).read())
print(f"continuing from {len(read_results(previous))} earlier rows of {previous}")
PY
t0=$SECONDS
for ((w = 0; w < workers; w++)); do
  timeout "$limit" python -c "import sys; from gan_tl_course.cli import main; sys.exit(main())" transfer-bench \
    --out "$work/w$w" --targets near far $grid --shard $w $workers > "$work/w$w.log" 2>&1 &
done
wait
echo "workers done in $((SECONDS - t0)) s"
python - "$work" "$out" <<'PY'
import sys, tarfile
from pathlib import Path
from gan_tl_course.fewshot import append_row, _cell_key, read_results, write_reports
work, out = Path(sys.argv[1]), Path(sys.argv[2])
rows = {}                                                    # every worker holds the earlier rows: keep one of each
for folder in sorted(p for p in work.glob("w*") if p.is_dir()):
    for row in read_results(folder / "results.csv"):
        rows.setdefault(_cell_key(row), row)
(out / "results.csv").unlink(missing_ok=True)                # the rows include the earlier ones
for row in rows.values():
    append_row(out / "results.csv", row, tuple(row))
rows = read_results(out / "results.csv")
if rows and "elbo" in rows[0]:                               # the VAE grid (FAMILY=vae): its reports add the bounds
    from gan_tl_course.vae_transfer import write_vae_reports
    write_vae_reports(rows, out)
else:
    write_reports(rows, out)
with tarfile.open(out / "samples.tar.gz", "w:gz") as tar:
    for png in sorted(work.glob("*/samples/*.png")):
        tar.add(png, arcname=f"samples/{png.name}")
with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
    for log in sorted(work.glob("*.log")):
        tar.add(log, arcname=f"logs/{log.name}")
merged = work / "merged"                                     # for PREVIOUS= on a warm machine
merged.mkdir(exist_ok=True)
for name in ("results.csv", "samples.tar.gz"):
    (merged / name).write_bytes((out / name).read_bytes())
print(f"{len(rows)} rows")
PY
cat "$out/results.md" 2>/dev/null
