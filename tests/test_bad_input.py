"""Bad input gets a clear error and loses nothing: data, image folders, checkpoints, diverging runs."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from gan_tl_course import data
from gan_tl_course.core import sha256_file
from gan_tl_course.runs import verify_checkpoint

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def fashion_copy(tmp_path, monkeypatch):
    "A private copy of Fashion-MNIST under GAN_TL_DATA, with the system locations hidden."
    folder = tmp_path / "data" / "fashion-mnist"
    shutil.copytree(data.find_fashion_mnist(), folder)
    monkeypatch.setenv("GAN_TL_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(data, "FASHION_MNIST_DIRS", [])
    return folder


def test_missing_dataset_names_package_and_download(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_TL_DATA", str(tmp_path))
    monkeypatch.setattr(data, "FASHION_MNIST_DIRS", [])
    with pytest.raises(FileNotFoundError) as e:
        data.load_fashion_mnist()
    assert "dataset-fashion-mnist" in str(e.value) and "download" in str(e.value)
    code, err = run_cli("pretrain", "--steps", "10", "--out", tmp_path / "run")
    assert code == 2 and "dataset-fashion-mnist" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_corrupt_data_file_fails_sha256(fashion_copy):
    f = fashion_copy / "train-labels-idx1-ubyte.gz"
    raw = bytearray(f.read_bytes())
    raw[-10] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="sha256") as e:
        data.load_fashion_mnist()
    assert "train-labels-idx1-ubyte.gz" in str(e.value)


def test_truncated_data_file_is_named(tmp_path):
    f = tmp_path / "train-labels-idx1-ubyte.gz"
    f.write_bytes((FASHION / f.name).read_bytes()[:5000])
    with pytest.raises(ValueError) as e:
        data.read_idx(f)
    assert f.name in str(e.value)


def _mixed_folder(root: Path) -> Path:
    root.mkdir()
    Image.fromarray(np.full((20, 30), 200, np.uint8), "L").save(root / "gray.png")
    Image.fromarray(np.zeros((50, 40, 3), np.uint8), "RGB").save(root / "rgb.jpg")
    rgba = np.zeros((64, 64, 4), np.uint8); rgba[..., 3] = 0
    Image.fromarray(rgba, "RGBA").save(root / "clear.png")
    (root / "notes.txt").write_text("not an image")
    (root / "broken.png").write_bytes(b"\x89PNG garbage")
    return root


def test_image_folder_rule(tmp_path):
    folder = _mixed_folder(tmp_path / "imgs")
    with pytest.warns(UserWarning):
        s = data.load_image_folder(folder, size=28, channels=1)
    assert s.images.shape == (3, 28, 28, 1) and s.images.dtype == np.uint8
    skipped = " ".join(s.skipped)
    assert "notes.txt" in skipped and "broken.png" in skipped
    # the documented rule: transparent pixels are composited onto white
    clear = s.images[[i for i in range(3) if s.images[i].min() == 255]]
    assert len(clear) == 1
    with pytest.raises(ValueError, match="broken.png"):
        data.load_image_folder(folder, size=28, channels=1, strict=True)


def test_image_folder_trains_from_cli(tmp_path):
    folder = _mixed_folder(tmp_path / "imgs")
    for i in range(20):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (33, 33, 3), dtype=np.uint8)).save(folder / f"r{i}.png")
    with pytest.warns(UserWarning):
        code, err = run_cli("pretrain", "--images", folder, "--width", "8", "--batch-size", "8", "--steps", "10",
                            "--quiet", "--out", tmp_path / "run")
    assert code == 0, err
    assert (tmp_path / "run" / "generator.keras").exists()


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    "A 20-step CLI run with checkpoints at steps 10 and 20."
    run = tmp_path_factory.mktemp("cli") / "run"
    code, err = run_cli("pretrain", "--steps", "20", "--limit", "256", "--batch-size", "16", "--width", "8",
                        "--checkpoint-every", "10", "--quiet", "--out", run)
    assert code == 0, err
    return run


def test_refuses_to_overwrite_a_run(small_run):
    before = sha256_file(small_run / "checkpoints" / "step_000020" / "state.npz")
    code, err = run_cli("pretrain", "--steps", "20", "--width", "8", "--out", small_run)
    assert code == 2 and "--resume" in err
    assert sha256_file(small_run / "checkpoints" / "step_000020" / "state.npz") == before


def test_checkpoint_of_another_architecture(small_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    settings = json.loads((run / "run.json").read_text())
    settings["options"]["width"] = 16
    (run / "run.json").write_text(json.dumps(settings))
    code, err = run_cli("pretrain", "--steps", "30", "--out", run, "--resume", "--quiet")
    assert code == 2 and "another architecture" in err
    shapes = [s for s in err.split("shape ")[1:]]
    assert len(shapes) == 2 and shapes[0] != shapes[1], err


def test_corrupt_checkpoint_is_refused_and_kept(small_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    state = run / "checkpoints" / "step_000020" / "state.npz"
    raw = bytearray(state.read_bytes()); raw[len(raw) // 2] ^= 0xFF; state.write_bytes(bytes(raw))
    files = {p: p.read_bytes() for p in (run / "checkpoints").rglob("*") if p.is_file()}
    code, err = run_cli("pretrain", "--steps", "30", "--out", run, "--resume", "--quiet")
    assert code == 2 and "corrupt" in err and "state.npz" in err
    assert {p: p.read_bytes() for p in (run / "checkpoints").rglob("*") if p.is_file()} == files
    verify_checkpoint(run / "checkpoints" / "step_000010")  # the earlier checkpoint is intact


def test_diverging_run_stops_with_clear_error(tmp_path):
    run = tmp_path / "run"
    code, err = run_cli("pretrain", "--steps", "40", "--limit", "256", "--batch-size", "16", "--width", "8",
                        "--lr-g", "1e30", "--lr-d", "1e30", "--checkpoint-every", "10", "--quiet", "--out", run)
    assert code == 2 and "non-finite loss" in err, err
    ckpts = sorted((run / "checkpoints").glob("step_*")) if (run / "checkpoints").exists() else []
    for c in ckpts:  # whatever was saved before the divergence is complete and finite
        with np.load(c / "state.npz") as s:
            assert all(np.all(np.isfinite(s[k])) for k in s.files if s[k].dtype.kind == "f")
