"""The shipped judges on every backend, and Inception V3 from a local weights file."""
import numpy as np
import pytest

from conftest import BACKENDS


@pytest.mark.parametrize("backend", BACKENDS)
def test_judges_meet_their_floors_on_every_backend(scenario, backend):
    from gan_tl_course.judge import check_judge_floors, read_manifest
    measured = scenario("judge_accuracy", backend)
    manifest = read_manifest()
    assert set(measured) == {"gray28", "rgb32"}
    for name, accuracy in measured.items():
        print(name, backend, {c: round(a, 3) for c, a in accuracy.items()})
        assert check_judge_floors(name, accuracy) == []
        for c, a in manifest[name]["test_accuracy"].items():
            assert abs(accuracy[c] - a) <= 0.01, (name, c, accuracy[c], a)


def test_inception_without_weights_says_where_to_put_them(tmp_path, monkeypatch):
    from gan_tl_course.judge import load_inception
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("GAN_TL_DATA", str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError, match="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"):
        load_inception()


def test_inception_from_a_local_weights_file(tmp_path, monkeypatch):
    "Random Inception weights saved under the official file name stand in for the ImageNet file."
    import keras
    from gan_tl_course.judge import INCEPTION_FILES, feature_net, load_inception
    models = tmp_path / "keras" / "models"
    models.mkdir(parents=True)
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group
    with h5py.File(models / INCEPTION_FILES["notop"], "w") as f:   # the legacy layout of the official file
        save_weights_to_hdf5_group(f, keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("GAN_TL_DATA", raising=False)
    net = load_inception()
    gray = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    features = net.features(gray)                          # resized to 299 x 299 and repeated to RGB
    assert features.shape == (3, 2048) and np.isfinite(features).all()
    assert net.sha256 is not None and net.class_names is None
    with pytest.raises(ValueError, match="no classifier head"):
        net.predict(gray)
    with pytest.raises(ValueError, match="gray \\(C=1\\) or RGB \\(C=3\\)"):
        net.features(np.zeros((2, 28, 28, 2), np.uint8))
    assert feature_net("inception").name == "inception_v3"
