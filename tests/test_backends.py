"""The training loop on each Keras backend, each in its own process."""
import numpy as np
import pytest

from conftest import BACKENDS


@pytest.mark.parametrize("backend", BACKENDS)
def test_twenty_steps(scenario, backend):
    runs = scenario("train20", backend)["runs"]
    for run in runs:
        assert run["step"] == 20
        losses = np.array(run["losses"])
        assert losses.shape == (20, 3) and np.all(np.isfinite(losses))
        assert np.all(losses[:, 2] > 0), "the R1 penalty was not applied"
        assert run["unchanged_trainable"] == [], f"weights that did not train: {run['unchanged_trainable']}"
        assert run["bn_moved"], "BatchNorm statistics did not move"
        assert run["rng_moved"], "the trainer's random state did not advance"
    np.testing.assert_allclose(runs[0]["losses"], runs[1]["losses"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(runs[0]["samples"], runs[1]["samples"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("source", BACKENDS)
def test_generator_loads_across_backends(scenario, tmp_path, source):
    saved = np.array(scenario("save_generator", source, tmp_path)["images"])
    assert saved.shape == (8, 28, 28, 1) and saved.std() > 0
    for target in BACKENDS:
        if target != source:
            loaded = np.array(scenario("load_generator", target, tmp_path)["images"])
            np.testing.assert_allclose(saved, loaded, atol=1e-4, err_msg=f"{source} -> {target}")


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_resume_matches_straight_run(scenario, backend):
    r = scenario("resume", backend)
    assert r["restored_step"] == 10 and r["step"] == 20
    assert r["max_abs_diff"] <= 1e-4 * max(1.0, r["max_abs_weight"]), r
