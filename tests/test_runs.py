"""Never lose a run: folders that cannot be overwritten or silently mixed, damaged checkpoints that can be
recovered, and every bad value or path refused by name before anything is written (issue 14).

All cases go through `gan-tl` in this process (TensorFlow); each checks the exit status, the message, and
that the files on disk are exactly what they were."""
import json
import shutil
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from gan_tl_course.core import sha256_file

SMALL = ("--limit", "256", "--batch-size", "16", "--width", "8", "--quiet")


def snapshot(folder: Path) -> dict:
    "Every file under `folder` with its sha256 (and every folder), to show that nothing changed."
    return {str(p.relative_to(folder)): (sha256_file(p) if p.is_file() else "dir") for p in sorted(folder.rglob("*"))}


def refused(*args, contains: str | tuple, untouched: Path | None = None):
    "`gan-tl ARGS` exits 2 with a one-line message holding `contains`, and `untouched` stays as it was."
    before = snapshot(untouched) if untouched is not None and untouched.exists() else None
    code, err = run_cli(*args)
    assert code == 2, err
    for text in (contains,) if isinstance(contains, str) else contains:
        assert text in err, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    if untouched is not None:
        assert (snapshot(untouched) if untouched.exists() else None) == before, "files changed"
    return err


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    "A finished 20-step pretrain run with checkpoints at steps 10 and 20."
    run = tmp_path_factory.mktemp("runs") / "pretrained"
    code, err = run_cli("pretrain", "--steps", "20", "--checkpoint-every", "10", "--out", run, *SMALL)
    assert code == 0, err
    return run


@pytest.fixture(scope="module")
def tuned(pretrained) -> Path:
    "A finished 20-step fine-tune of `pretrained` on 16 digits, checkpoints at steps 10 and 20."
    run = pretrained.parent / "tuned"
    code, err = run_cli("finetune", "--source", pretrained, "--images", "mnist_5k", "--shots", "16", "--steps", "20",
                        "--method", "freeze_d", "--out", run, "--quiet")
    assert code == 0, err
    return run


def copy(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path / run.name)
    return tmp_path / run.name


# --- data loss -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gone", ["checkpoints", "checkpoint files", "everything but the models"])
def test_a_finished_run_is_never_overwritten(pretrained, tmp_path, gone):
    run = copy(pretrained, tmp_path)
    if gone == "checkpoints":
        shutil.rmtree(run / "checkpoints")
    elif gone == "checkpoint files":
        for p in (run / "checkpoints").iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    else:
        for p in run.iterdir():
            if p.suffix != ".keras":
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    refused("pretrain", "--steps", "20", "--out", run, *SMALL, contains=("already holds a run", "--overwrite"),
            untouched=run)


def test_nothing_to_resume_then_a_fresh_run_is_refused(pretrained, tmp_path):
    run = copy(pretrained, tmp_path)
    shutil.rmtree(run / "checkpoints")
    refused("pretrain", "--steps", "20", "--out", run, "--resume", contains="nothing to resume", untouched=run)
    refused("pretrain", "--steps", "20", "--out", run, *SMALL, contains="already holds a run", untouched=run)


def test_overwrite_moves_the_old_run_aside(pretrained, tmp_path):
    run = copy(pretrained, tmp_path)
    before = snapshot(run)
    code, err = run_cli("pretrain", "--steps", "10", "--checkpoint-every", "10", "--out", run, "--overwrite", *SMALL)
    assert code == 0, err
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("pretrained.old-")]
    assert len(aside) == 1 and snapshot(aside[0]) == before
    assert json.loads((run / "result.json").read_text())["step"] == 10
    refused("pretrain", "--steps", "10", "--out", run, "--resume", "--overwrite", contains="choose one", untouched=run)


def test_a_resume_that_changes_the_run_is_refused(pretrained, tmp_path):
    run = copy(pretrained, tmp_path)
    err = refused("pretrain", "--steps", "40", "--out", run, "--resume", "--batch-size", "32", "--lr-g", "0.1",
                  contains=("--batch-size is 16 in the run but 32 now", "--lr-g is 0.0002 in the run but 0.1 now"),
                  untouched=run)
    assert "leave these out" in err
    refused("pretrain", "--steps", "40", "--out", run, "--resume", "--images", "mnist_5k", untouched=run,
            contains="--images is 'fashion_mnist' in the run but 'mnist_5k' now")
    refused("pretrain", "--steps", "10", "--out", run, "--resume", contains="--steps 10 is below step 20", untouched=run)


def test_a_resume_takes_the_run_settings_and_records_them(pretrained, tmp_path):
    run = copy(pretrained, tmp_path)
    record = (run / "run.json").read_text()
    code, err = run_cli("pretrain", "--steps", "30", "--out", run, "--resume", "--batch-size", "16", "--quiet",
                        "--checkpoint-every", "5")                   # the run's own batch, and more checkpoints
    assert code == 0, err
    assert (run / "run.json").read_text() == record
    result = json.loads((run / "result.json").read_text())
    assert result["step"] == 30 and len(result["commands"]) == 2 and len(result["runtimes"]) == 2
    meta = json.loads((run / "checkpoints" / "step_000030" / "meta.json").read_text())
    assert meta["config"]["checkpoint_every"] == 5 and meta["config"]["batch_size"] == 16


def test_the_images_of_a_run_may_not_change(tmp_path):
    from PIL import Image
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(20):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (28, 28), dtype=np.uint8)).save(folder / f"{i}.png")
    run = tmp_path / "run"
    assert run_cli("pretrain", "--images", folder, "--steps", "10", "--checkpoint-every", "10", "--out", run, *SMALL)[0] == 0
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder / "0.png")
    refused("pretrain", "--steps", "20", "--out", run, "--resume", contains="the sha256 of the --images",
            untouched=run)


def test_finetune_records_its_run_and_refuses_a_mixed_resume(tuned, pretrained, tmp_path):
    run = copy(tuned, tmp_path)
    record = json.loads((run / "run.json").read_text())
    assert record["kind"] == "finetune" and record["options"]["method"] == "freeze_d"
    assert record["options"]["source"] == str(pretrained) and record["options"]["target_images"] == 16
    refused("finetune", "--out", run, "--resume", "--steps", "40", "--images", "fashion_mnist:Bag", "--method", "cdc",
            contains=("--images is 'mnist_5k' in the run but 'fashion_mnist:Bag' now",
                      "--method is 'freeze_d' in the run but 'cdc' now"), untouched=run)
    refused("finetune", "--source", pretrained, "--images", "mnist_5k", "--shots", "16", "--out", run, "--quiet",
            contains="already holds a run", untouched=run)
    code, err = run_cli("finetune", "--out", run, "--resume", "--steps", "30", "--quiet")   # all else from run.json
    assert code == 0, err
    assert json.loads((run / "result.json").read_text())["step"] == 30


def test_finetune_refuses_a_source_that_changed(tuned, pretrained, tmp_path):
    source = copy(pretrained, tmp_path)
    run = tmp_path / "tuned"
    assert run_cli("finetune", "--source", source, "--images", "mnist_5k", "--shots", "16", "--steps", "10",
                   "--out", run, "--quiet")[0] == 0
    shutil.copyfile(tuned / "ema_generator.keras", source / "ema_generator.keras")    # the source was re-made
    refused("finetune", "--out", run, "--resume", "--steps", "20", contains="source_sha256", untouched=run)


# --- damaged checkpoints ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["corrupt", "deleted"])
def test_a_damaged_latest_checkpoint_offers_the_newest_intact_one(pretrained, tmp_path, damage):
    run = copy(pretrained, tmp_path)
    latest = run / "checkpoints" / "step_000020"
    if damage == "corrupt":
        state = latest / "state.npz"
        state.write_bytes(state.read_bytes()[:-100] + bytes(100))
    else:
        shutil.rmtree(latest)
    (run / "checkpoints" / ".tmp-step_000030-4194999").mkdir()                 # left by a killed process
    refused("pretrain", "--steps", "30", "--out", run, "--resume", untouched=run,
            contains=("step_000010 (step 10)", "--resume 10", "kept for inspection"))
    with pytest.warns(UserWarning, match="kept for inspection") if damage == "corrupt" else nullcontext():
        code, err = run_cli("pretrain", "--steps", "30", "--out", run, "--resume", "10", "--quiet")
    assert code == 0, err
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["latest"] + ["set_aside"] * (damage == "corrupt") + ["step_000010", "step_000020", "step_000030"]
    if damage == "corrupt":
        assert (run / "checkpoints" / "set_aside" / "step_000020" / "state.npz").read_bytes().endswith(bytes(100))
    refused("pretrain", "--steps", "30", "--out", run, "--resume", "7", contains="is not a checkpoint of the run",
            untouched=run)


def test_a_checkpoint_holding_a_pickle_is_refused(pretrained, tmp_path):
    run = copy(pretrained, tmp_path)
    latest = run / "checkpoints" / "step_000020"
    np.savez(latest / "state.npz", v0000=np.array([print], dtype=object))
    meta = json.loads((latest / "meta.json").read_text())
    meta["files"]["state.npz"] = sha256_file(latest / "state.npz")            # the hash matches: as an attack would
    (latest / "meta.json").write_text(json.dumps(meta))
    refused("pretrain", "--steps", "30", "--out", run, "--resume", contains=("state.npz", "never unpickled"),
            untouched=run)


def test_a_run_recorded_under_the_old_option_names_resumes(pretrained, tmp_path):
    "Runs started before 2026-12-06 recorded --batch, --lr and --r1: they resume, and are checked, under today's names."
    run = copy(pretrained, tmp_path)
    record = json.loads((run / "run.json").read_text())
    options = record["options"]
    options.update(batch=options.pop("batch_size"), r1=options.pop("r1_gamma"), lr=options.pop("lr_g"))
    del options["lr_d"]
    (run / "run.json").write_text(json.dumps(record))
    refused("pretrain", "--steps", "30", "--out", run, "--resume", "--lr-d", "0.1",
            contains="--lr-d is 0.0002 in the run but 0.1 now", untouched=run)
    code, err = run_cli("pretrain", "--steps", "30", "--out", run, "--resume", "--batch-size", "16", "--quiet")
    assert code == 0, err
    assert json.loads((run / "result.json").read_text())["step"] == 30


@pytest.mark.parametrize("damage, contains", [
    ("not json", "run.json is damaged (not valid JSON"), ("no lr", "does not record --lr-g"),
    ("missing", "run.json is missing")])
def test_a_damaged_run_record_is_named(pretrained, tmp_path, damage, contains):
    run = copy(pretrained, tmp_path)
    record = json.loads((run / "run.json").read_text())
    if damage == "not json":
        (run / "run.json").write_text("{\"kind\": \"pretrain\", ")
    elif damage == "no lr":
        del record["options"]["lr_g"]
        (run / "run.json").write_text(json.dumps(record))
    else:
        (run / "run.json").unlink()
    refused("pretrain", "--steps", "30", "--out", run, "--resume", contains=contains, untouched=run)


# --- values refused by name, before anything is written --------------------------------------------------------

@pytest.mark.parametrize("option, value, contains", [
    ("--lr-g", "0", "--lr-g must be a number > 0, got 0.0"), ("--lr-d", "-0.001", "--lr-d must be a number > 0"),
    ("--r1-gamma", "-1", "--r1-gamma must be a number >= 0, got -1.0"), ("--limit", "0", "--limit must be an integer >= 1"),
    ("--width", "0", "--width must be an integer >= 1, got 0"), ("--steps", "0", "--steps must be an integer >= 1"),
    ("--steps", "-5", "got -5"), ("--batch-size", "0", "--batch-size must be an integer >= 1"),
    ("--augment", "color,flip", "--augment must be 'diffaugment', 'ada', 'none' or a DiffAugment policy"),
    ("--seed", "-1", "--seed must be")])
def test_pretrain_refuses_bad_values(tmp_path, option, value, contains):
    run = tmp_path / "run"
    refused("pretrain", "--steps", "20", *SMALL, option, value, "--out", run, contains=contains)
    assert not run.exists()


@pytest.mark.parametrize("option, value, contains", [
    ("--shots", "0", "--shots must be an integer >= 1 and <= 5000, got 0"), ("--shots", "5001", "holds 5000 images"),
    ("--augment", "diffaugmnet", "--augment must be 'diffaugment', 'ada', 'none' or a DiffAugment policy"),
    ("--steps", "0", "--steps must be an integer >= 1"), ("--blocks", "9", "cannot freeze blocks=9")])
def test_finetune_refuses_bad_values(pretrained, tmp_path, option, value, contains):
    run = tmp_path / "run"
    refused("finetune", "--source", pretrained, "--images", "mnist_5k", "--method", "freeze_d", "--shots", "16",
            option, value, "--out", run, "--quiet", contains=contains)
    assert not run.exists()


def test_finetune_names_a_bad_source(pretrained, tmp_path):
    run = tmp_path / "run"
    for source, contains in [(pretrained / "ema_generator.keras", "is a file, not a folder"),
                             (tmp_path / "pretrianed", "neither a folder nor a shipped source. A source is"),
                             ("fashion29", "neither a folder nor a shipped source")]:
        refused("finetune", "--source", source, "--images", "mnist_5k", "--out", run, contains=contains)
    broken = copy(pretrained, tmp_path)
    (broken / "ema_generator.keras").write_bytes((pretrained / "ema_generator.keras").read_bytes()[:3000])
    refused("finetune", "--source", broken, "--images", "mnist_5k", "--out", run,
            contains=("ema_generator.keras is not a loadable .keras source generator",))
    (broken / "discriminator.keras").unlink()
    refused("finetune", "--source", broken, "--images", "mnist_5k", "--out", run, contains="discriminator.keras is missing")
    refused("finetune", "--images", "mnist_5k", "--out", run, contains="--source is required for a new run")
    assert not run.exists()


@pytest.mark.parametrize("out, contains", [
    ("file", "--out must be a folder that can be written, got"), ("under file", "is a file, so nothing can be made"),
    ("/sys/gan_tl_run", "cannot write in /sys")])
def test_output_folders_are_checked_first(tmp_path, out, contains):
    (tmp_path / "file").write_text("x")
    out = {"file": tmp_path / "file", "under file": tmp_path / "file" / "run"}.get(out, out)
    for command in (["pretrain", "--steps", "20", *SMALL], ["demo", "--steps", "10"],
                    ["transfer-bench", "--steps", "10"]):
        refused(*command, "--out", out, contains=contains, untouched=tmp_path)


def test_sample_refuses_bad_values_and_broken_generators(pretrained, tmp_path):
    refused("sample", "--generator", pretrained, "--n", "0", "--out", tmp_path / "s.png", contains="--n must be an integer >= 1")
    refused("sample", "--generator", pretrained, "--n", "-3", "--out", tmp_path / "s.png", contains="got -3")
    refused("sample", "--generator", pretrained, "--out", tmp_path, contains="--out must be a .png file", untouched=tmp_path)
    refused("sample", "--generator", pretrained, "--out", tmp_path / "grid", contains="with .png at the end")
    import keras
    g = keras.saving.load_model(pretrained / "ema_generator.keras")
    g.get_layer("g_out_conv").kernel.assign(np.full(g.get_layer("g_out_conv").kernel.shape, np.nan, "float32"))
    g.save(tmp_path / "nan.keras")
    refused("sample", "--generator", tmp_path / "nan.keras", "--out", tmp_path / "s.png",
            contains=("nan.keras", "NaN or infinite pixels"))
    assert not (tmp_path / "s.png").exists()


def test_evaluate_checks_n_and_json_before_evaluating(pretrained, tmp_path, monkeypatch):
    import gan_tl_course.evaluate
    monkeypatch.setattr(gan_tl_course.evaluate, "evaluate", lambda *a, **k: pytest.fail("evaluation ran"))
    for n in ("2", "5"):
        refused("evaluate", "--generator", pretrained, "--reference", "fashion_mnist:test", "--n-eval", n,
                contains="--n-eval must be an integer >= 6")
    refused("evaluate", "--generator", pretrained, "--reference", "fashion_mnist:test", "--json", tmp_path,
            contains="--json must be a .json file that can be written", untouched=tmp_path)


def test_an_os_error_is_one_line_naming_the_path(monkeypatch, tmp_path):
    "Whatever the checks could not foresee (a disk that fills, a permission that changes) still reads as one line."
    import gan_tl_course.cli as cli
    def denied(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "grid.png"))
    monkeypatch.setattr(cli, "sample_command", denied)
    err = refused("sample", "--generator", tmp_path, contains=f"{tmp_path / 'grid.png'}: Permission denied")
    assert err.startswith("gan-tl: ")
