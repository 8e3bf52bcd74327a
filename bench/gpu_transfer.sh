#!/usr/bin/env bash
# The full few-shot grid (2 targets x 3 shot counts x 9 methods x 3 seeds, 1000 steps each) on one lent GPU:
#   source .gpu/env.sh && bash bench/gpu_transfer.sh "$OUT"
# One `gan-tl transfer-bench` process per target, each walking its cells one after another (shots in increasing
# order, so a cut-off loses the 1000-shot cells first). A cell takes about 15 s on an H200, mostly compilation
# on the host, so the whole grid needs about 20 minutes per target: more than one 10-minute command. Each run
# starts from the rows of PREVIOUS (default bench/transfer_gpu/results.csv; commit the merged results after
# each session) and `transfer-bench` skips the cells they hold.
# (A first version ran 18 workers at once, one per target and method: sharing the GPU and 16 host cores, each
# needed over 300 s for its first cell. See bench/transfer_gpu/README.md.)
# The rows are merged into one results folder at the end (results.csv/json/md, kid_vs_shots.png), with the
# samples and logs as archives, so that at most 8 files come back from the machine.
# QUICK=1 runs a tiny grid, to check the script on a CPU.
set -uo pipefail
out=${1:-bench/transfer_gpu}
work=${WORK:-/tmp/transfer_workers}
mkdir -p "$out" "$work"
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.4   # two processes share the GPU
if [ "${QUICK:-0}" = 1 ]; then grid="--shots 10 --seeds 0 --steps 20 --n 100 --methods scratch freeze_d"
else grid="--shots 10 100 1000 --seeds 0 1 2 --steps 1000 --n 2000"; fi
limit=${WORKER_SECONDS:-540}
# continue an earlier grid: its rows (default: the committed bench/transfer_gpu/results.csv) go to the workers'
# folders first, and transfer-bench skips those cells
python - "${PREVIOUS:-bench/transfer_gpu/results.csv}" "$work" <<'PY'
import sys
from pathlib import Path
from gan_tl_course.fewshot import _append_result, read_results
previous, work = Path(sys.argv[1]), Path(sys.argv[2])
for row in read_results(previous):
    (work / row["target"]).mkdir(parents=True, exist_ok=True)
    _append_result(work / row["target"] / "results.csv", row)
archive = previous.parent / "samples.tar.gz"                 # and their sample grids, so the archive stays whole
if archive.is_file():
    import tarfile
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            folder = work / name.split("_")[0] / "samples"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(tar.extractfile(member).read())
print(f"continuing from {len(read_results(previous))} earlier rows of {previous}")
PY
t0=$SECONDS
for target in near far; do
  timeout "$limit" python -c "import sys; from gan_tl_course.cli import main; sys.exit(main())" transfer-bench \
    --out "$work/$target" --targets $target $grid > "$work/$target.log" 2>&1 &
done
wait
echo "workers done in $((SECONDS - t0)) s"
python - "$work" "$out" <<'PY'
import sys, tarfile
from pathlib import Path
from gan_tl_course.fewshot import _append_result, read_results, write_reports
work, out = Path(sys.argv[1]), Path(sys.argv[2])
rows = [row for folder in sorted(p for p in work.iterdir() if p.is_dir()) for row in read_results(folder / "results.csv")]
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
