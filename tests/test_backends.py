"""The training loop on each Keras backend, each in its own process."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import BACKENDS, run_scenario


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


@pytest.mark.parametrize("backend", BACKENDS)
def test_inversion_finds_the_latents_of_its_own_images(scenario, backend):
    r = scenario("invert_latents", backend)
    start, error, curve = np.array(r["start"]), np.array(r["error"]), np.array(r["curve"])
    assert len(curve) == 60 and np.all(np.isfinite(curve)) and curve[-1] < 0.5 * curve[0], curve[[0, -1]]
    assert error.mean() < 0.5 * start.mean(), (start.mean(), error.mean())
    assert not r["generator_moved"], "inversion changed the generator's weights"
    found = sum(a == b for a, b in zip(r["labels"], r["drawn_with"]))
    assert found >= 3, f"the label search found {r['labels']} for images drawn with {r['drawn_with']}"
    assert np.all(np.array(r["label_error"]) < 0.15), r["label_error"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_blend_swaps_and_interpolates_weights(scenario, backend):
    r = scenario("blend_generators", backend)
    assert r["source_end"] < 1e-5 and r["tuned_end"] < 1e-5 and r["alpha_ends"] < 1e-4, r
    assert r["swapped_right"], "a layer came from the wrong generator"
    assert r["mean_error"] < 1e-6 and r["blend_differs"] > 1e-3, r


@pytest.mark.parametrize("backend", BACKENDS)
def test_adaptation_methods_train_on_every_backend(scenario, backend):
    r = scenario("adapt_methods", backend)
    np.testing.assert_allclose(r["reversed_grad"], [-1.0, 2.0, -3.0], rtol=1e-6)   # −λ · d(sum x²)/dx, λ = 0.5
    for method, terms in (("source only", []), ("DANN", [1]), ("PixelDA", [2, 3])):
        first, second = r[method]
        history = np.array(first["history"])
        assert history.shape == (6, 4) and np.all(np.isfinite(history)), (method, history)
        assert all(np.all(history[:, t] > 0) for t in terms), (method, history)        # its own loss terms are on
        assert first["unmoved"] == 0, f"{method}: {first['unmoved']} of {first['variables']} variables did not train"
        np.testing.assert_allclose(first["history"], second["history"], rtol=1e-5, atol=1e-6, err_msg=method)
        assert 0.0 <= first["accuracy"] <= 1.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_vae_trains_resumes_and_bounds_on_every_backend(scenario, backend):
    r = scenario("vae_train", backend)
    first, second = r["runs"]
    history = np.array(first["history"])        # elbo, kl, reconstruction, log_scale, loss
    assert first["step"] == 20 and history.shape == (20, 5) and np.all(np.isfinite(history))
    np.testing.assert_allclose(history[:, 0], history[:, 2] - history[:, 1], rtol=1e-5, atol=1e-2)
    assert np.all(history[:, 1] >= 0) and history[-1, 4] < history[0, 4], history[[0, -1]]
    assert first["unchanged"] == [], f"variables that did not train: {first['unchanged']}"
    np.testing.assert_allclose(first["history"], second["history"], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(first["samples"], second["samples"], rtol=1e-5, atol=1e-5)
    assert r["restored_step"] == 10 and r["resume_diff"] < 1e-4, r["resume_diff"]
    s = r["scores"]
    assert s["elbo"] < s["iwae"] < 0 and s["iwae_samples"] == 8 and s["n"] == 32, s
    assert 0 <= s["active_units"] <= 16 and len(s["kl_per_dim"]) == 16


@pytest.mark.parametrize("backend", BACKENDS)
def test_vae_transfer_methods_move_what_they_say_on_every_backend(scenario, backend):
    r = scenario("vae_transfer", backend)
    assert r["moved"] == {"vae_scratch": {"encoder": True, "decoder": True},
                          "vae_finetune": {"encoder": True, "decoder": True},
                          "vae_decoder_only": {"encoder": True, "decoder": True},
                          "vae_freeze_encoder": {"encoder": False, "decoder": True}}, r["moved"]
    assert r["resumed_step"] == 20 and r["resumed_rows"] == 20, r


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_resume_matches_straight_run(scenario, backend):
    r = scenario("resume", backend)
    assert r["restored_step"] == 10 and r["step"] == 20
    assert r["max_abs_diff"] <= 1e-4 * max(1.0, r["max_abs_weight"]), r


# --- kill -9 and resume, on every backend, and a checkpoint carried from one backend to another ---------------

CLI = [sys.executable, "-c", "import sys; from gan_tl_course.cli import main; sys.exit(main())"]
SMALL = ["--limit", "256", "--batch-size", "16", "--width", "8", "--checkpoint-every", "10", "--sample-every", "1000",
         "--quiet"]


def gan_tl(backend: str, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(CLI + [str(a) for a in args], env=env, capture_output=True, text=True, timeout=600)


def killed_run(backend: str, out: Path) -> int:
    "Start a long pretrain run, kill -9 it once a checkpoint exists; returns the step of its latest checkpoint."
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(CLI + ["pretrain", "--steps", "100000", *SMALL, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (out / "checkpoints" / "latest").exists():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() < deadline, "no checkpoint after 300 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return int((out / "checkpoints" / "latest").read_text().strip()[5:])


def final_state(run: Path) -> list[np.ndarray]:
    "The arrays of a finished run's last checkpoint."
    with np.load(run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip() / "state.npz") as s:
        return [s[k].astype("float64") for k in sorted(s.files)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_and_resume_equals_a_straight_run(tmp_path, backend):
    reached = killed_run(backend, tmp_path / "killed")
    total = reached + 20
    resumed = gan_tl(backend, "pretrain", "--steps", total, "--out", tmp_path / "killed", "--resume", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight = gan_tl(backend, "pretrain", "--steps", total, *SMALL, "--out", tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr[-3000:]
    a, b = final_state(tmp_path / "killed"), final_state(tmp_path / "straight")
    assert all(np.array_equal(x, y) for x, y in zip(a, b)), (backend, reached)      # bit-identical, every variable
    assert (tmp_path / "killed" / "history.csv").read_text() == (tmp_path / "straight" / "history.csv").read_text()
    assert not [p for p in (tmp_path / "killed" / "checkpoints").iterdir() if p.name.startswith(".")], \
        "the resume left a killed process's partial files"


ADAPT_RUN = """
import sys
from pathlib import Path
from gan_tl_course.adapt import AdaptConfig, Adaptation, domain_pair
steps, out = int(sys.argv[1]), Path(sys.argv[2])
config = AdaptConfig(batch_size=8, steps_per_call=5, checkpoint_every=5, sample_every=10, pixel=True, ramp_steps=100)
adaptation = Adaptation(domain_pair("mnist_to_mnist_m", limit=64), config=config, run_dir=out)
if len(sys.argv) > 3:
    adaptation.restore()
adaptation.train(steps, progress=False)
"""


def adapt_run(backend: str, steps: int, out: Path, *resume: str) -> subprocess.Popen:
    "A PixelDA adaptation run (every kind of state: classifier, G, D, two optimizers) with checkpoints every 5 steps."
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "-c", ADAPT_RUN, str(steps), str(out), *resume], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("backend", ["tensorflow", pytest.param("jax", marks=pytest.mark.slow)])
def test_a_killed_adaptation_resumes_as_a_straight_run(tmp_path, backend):
    killed = adapt_run(backend, 100_000, tmp_path / "killed")
    deadline = time.time() + 300
    while not (tmp_path / "killed" / "checkpoints" / "latest").exists():
        assert killed.poll() is None, killed.stderr.read()[-3000:]
        assert time.time() < deadline, "no checkpoint after 300 s"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    reached = int((tmp_path / "killed" / "checkpoints" / "latest").read_text().strip()[5:])
    total = reached + 12                                   # not a multiple of steps_per_call: calls of 5, 5, 2
    for run in (adapt_run(backend, total, tmp_path / "killed", "resume"), adapt_run(backend, total, tmp_path / "straight")):
        assert run.wait(timeout=600) == 0, run.stderr.read()[-3000:]
    a, b = final_state(tmp_path / "killed"), final_state(tmp_path / "straight")
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b)), (backend, reached)   # bit-identical
    last = {run: tmp_path / run / "checkpoints" / (tmp_path / run / "checkpoints" / "latest").read_text().strip()
            for run in ("killed", "straight")}
    assert (last["killed"] / "history.csv").read_text() == (last["straight"] / "history.csv").read_text()
    assert sorted(p.name for p in last["straight"].glob("*.keras")) == \
        ["classifier.keras", "discriminator.keras", "pixel_generator.keras"]
    assert list((tmp_path / "straight" / "samples").glob("step_*.png")), "PixelDA's translations were not drawn"


def test_a_checkpoint_moves_between_backends(tmp_path):
    reached = killed_run("tensorflow", tmp_path / "tf")
    history = (tmp_path / "tf" / "checkpoints" / f"step_{reached:06d}" / "history.csv").read_text().splitlines()
    for backend in ("jax", "torch"):
        run = tmp_path / backend
        shutil.copytree(tmp_path / "tf", run)
        done = gan_tl(backend, "pretrain", "--steps", reached + 10, "--out", run, "--resume", "--quiet")
        assert done.returncode == 0, done.stderr[-3000:]
        rows = (run / "history.csv").read_text().splitlines()
        assert rows[:len(history)] == history and len(rows) == len(history) + 10, backend
        result = json.loads((run / "result.json").read_text())
        assert [r["backend"] for r in result["runtimes"]] == [backend]      # the TF process was killed: no result
        assert np.isfinite(np.concatenate([x.ravel() for x in final_state(run)])).all()


TWO_DEVICES = {"jax": {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},   # 2 simulated CPU devices
               "tensorflow": {"TF_CPU_DEVICES": "2"}}                          # (tests/scenarios.py splits the CPU)


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_two_devices_train_what_one_device_trains(tmp_path, backend):
    """2 simulated CPU devices (JAX: keras.distribution.DataParallel; TensorFlow: tf.distribute.MirroredStrategy):
    2 devices x 8 images per step give the losses, weights, EMA and BatchNorm statistics of 1 device x 16, up to the
    order of float sums; a checkpoint written on 2 devices resumes on 1 and the reverse; a resume that changes the
    global batch is refused."""
    r = run_scenario("data_parallel", backend, tmp_path, env=TWO_DEVICES[backend])
    one, two = np.array(r["losses"]["1"]), np.array(r["losses"]["2"])
    assert one.shape == (20, 3) and np.all(np.isfinite(one))
    np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-6)        # d_loss, g_loss and ADA's p, step by step
    np.testing.assert_allclose(r["vae_losses"]["1"], r["vae_losses"]["2"], rtol=1e-4)
    # TensorFlow: 4.8e-4 after 20 steps, on g_block_0_dense/kernel alone, with the losses equal to 1.8e-7 — Adam on a
    # nearly-0 gradient, as in the resume below; measured 2026-12-06 in a fresh environment (numpy 2.4.6), the same
    # before and after issue 35's changes (earlier environments measured 2.4e-7)
    weight_tolerance = 1e-4 if backend == "jax" else 1e-3
    assert r["weight_diff"] < weight_tolerance and r["bn_diff"] < 1e-4 and r["vae_weight_diff"] < 1e-4, r
    # Adam divides by sqrt(v): where a gradient is nearly 0 (the dense layer before G's first BatchNorm), the order of
    # float sums can move a weight by up to lr = 2e-4 a step. Measured after 10 resumed steps: JAX < 1e-4 both ways;
    # TensorFlow 2.4e-7 (2->1) and 4.8e-4 (1->2, on g_block_0_dense/kernel only, the losses equal to 1.2e-7)
    tolerance = 1e-4 if backend == "jax" else 1e-3
    assert r["resumed"]["2->1"] < tolerance and r["resumed"]["1->2"] < tolerance, r["resumed"]
    assert "the global batch (batch_size × devices) is '16 (16 × 1)' in the run but '32 (16 × 2)' now" in r["refusal"]
    if backend == "jax":
        assert "'batch': 2" in r["placement"] and "spec=P()" in r["placement"], r["placement"]   # replicated on both
        assert r["built_outside"] == "", r["built_outside"]          # JAX places the variables itself
    else:
        assert r["placement"].startswith("MirroredVariable") and "replica_1" in r["placement"], r["placement"]
        assert "the generator was built outside `devices_scope(2)`" in r["built_outside"], r["built_outside"]
    assert r["global_batch"] == 16


@pytest.mark.slow
@pytest.mark.parametrize("methods", [("cdc", "ewc"), ("l2sp", "minegan"), ("projected", "conditional")])
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_two_devices_fine_tune_what_one_device_does(tmp_path, backend, methods):
    """The transfer methods and a conditional WGAN-GP on 2 simulated CPU devices give 1 device's losses. Two at a time,
    each pair its own process: all of them in one took 491 s on JAX, close to run_scenario's 600-s limit."""
    env = {**TWO_DEVICES[backend], "GAN_TL_TEST_METHODS": ",".join(methods)}
    r = run_scenario("data_parallel_methods", backend, tmp_path, env=env)
    if "conditional" in methods:    # labels split like the images; WGAN-GP's mixing weights drawn for the global batch
        np.testing.assert_allclose(r["conditional_losses"]["1"], r["conditional_losses"]["2"], rtol=1e-4, atol=1e-6)
    # fine_tune with the methods that reach past the step: CDC's pairs, EWC's Fisher (computed on mirrored models),
    # L2-SP's anchors, MineGAN's miner and staged gradients, Projected's frozen features. Losses agree to 3e-7 at
    # step 1 and drift apart as a GAN amplifies rounding: measured on TensorFlow at most 3.3e-4 by step 10
    assert set(r["tuned_losses"]) == set(methods) - {"conditional"}
    for method, runs in r["tuned_losses"].items():
        assert len(runs["1"]) == 10, (method, len(runs["1"]))
        np.testing.assert_allclose(runs["1"], runs["2"], rtol=1e-3, err_msg=method)


@pytest.mark.parametrize("backend", ["jax", "tensorflow", "torch"])
def test_devices_refused_by_name(tmp_path, backend):
    """PyTorch: Keras does not distribute it. TensorFlow: a trainer built outside `devices_scope`, or more devices
    than TensorFlow sees. JAX: more devices than it sees. Each message says what to do."""
    said = run_scenario("refuse_devices", backend, tmp_path)
    cluster = {"jax": "TF_CONFIG describes a TensorFlow cluster", "tensorflow": "KERAS_DISTRIBUTION_* describe a JAX cluster",
               "torch": "a run across machines needs KERAS_BACKEND=jax"}
    assert cluster[backend] in said.pop("other_cluster"), said
    before_join = said.pop("scope_before_join")
    if backend == "tensorflow":
        assert "call join_hosts() first" in before_join, before_join
    if backend == "torch":
        for message in said.values():
            assert "Keras does not distribute training on the PyTorch backend" in message, message
            assert "KERAS_BACKEND=jax" in message and "KERAS_BACKEND=tensorflow" in message, message
    elif backend == "tensorflow":
        assert "build the models and the trainer inside `with devices_scope(2):`" in said["trainer"], said
        assert "devices=2, but TensorFlow sees 1" in said["scope"] and "set_logical_device_configuration" in said["scope"]
    else:
        for message in said.values():
            assert "devices=2, but JAX sees 1" in message and "--xla_force_host_platform_device_count=2" in message, said


@pytest.mark.parametrize("backend", [pytest.param("jax", marks=pytest.mark.slow), "tensorflow"])
def test_cli_devices_resume_keeps_the_global_batch(tmp_path, backend):
    """`--devices 2 --batch-size 8`, resumed with `--devices 1`, trains what `--batch-size 16` on one device trains; `finetune
    --devices 2` splits the method's batch of 64 and trains what one device trains; 3 devices do not split it."""
    r = run_scenario("cli_devices", backend, tmp_path, env=TWO_DEVICES[backend])
    assert r["codes"] == [0, 0, 0, 0, 0, 2], r
    assert "training on 2 devices: global batch 16 (8 per device)" in r["said"], r["said"]
    # TensorFlow: 1.7e-3 on one weight after 30 steps, measured 2026-12-06 in a fresh environment (numpy 2.4.6) before and
    # after issue 35's changes (earlier environments: 1.2e-7) — the Adam amplification described below
    assert r["rows"] == 31 and r["diff"] < (1e-4 if backend == "jax" else 3e-3), r
    # the first step agrees to float rounding; then the GAN's two players amplify it. Adam divides by sqrt(v): on a
    # weight whose gradient is nearly 0 the order of float sums can move it by up to lr = 2e-4 a step, and TensorFlow's
    # synchronized BatchNorm takes the variance as E[x²] - E[x]² over the devices, not in two passes as on one device.
    # Measured after 10 steps: JAX 1.1e-4; TensorFlow 1.5e-3 (a BatchNorm moving variance of 2.5), losses within 2e-4
    np.testing.assert_allclose(*(np.array(v, float) for v in r["tuned_first_step"].values()), rtol=1e-6)
    assert r["tuned_diff"] < (1e-3 if backend == "jax" else 3e-3), r
    assert "trained on 2 devices: global batch 64 (32 per device)" in r["said"], r["said"]
    assert "devices=3: the global batch of 64 does not split evenly over 3 devices" in r["refusal"], r["refusal"]
    assert not r["tuned_three_exists"], "a refused run must write nothing"


def free_ports(n: int) -> list[int]:
    "`n` free TCP ports on this machine."
    import socket
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def joined_env(backend: str, process: int, ports: list[int]) -> dict:
    """Process `process` of a 2-process run on this machine: JAX joined by `keras.distribution.initialize` from
    KERAS_DISTRIBUTION_* (gloo collectives on CPU); TensorFlow by a MultiWorkerMirroredStrategy from TF_CONFIG."""
    if backend == "jax":
        return {"JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo", "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{ports[0]}",
                "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
                "KERAS_DISTRIBUTION_PROCESS_ID": str(process)}
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": process}})}


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_two_processes_train_what_one_process_trains(tmp_path, backend):
    """Multi-host, on one machine: two `gan-tl pretrain --devices 2` processes, one CPU device each, joined by the
    backend's multi-process engine (`joined_env`), train what one process trains at the same global batch; each writes
    its own run folder, and the two are identical."""
    small = ["--steps", "20", "--limit", "256", "--width", "8", "--checkpoint-every", "10", "--sample-every", "1000",
             "--quiet"]
    gan_tl = [sys.executable, "-c", "import sys; from gan_tl_course.cli import main; sys.exit(main())", "pretrain"]
    alone = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PLATFORMS": "cpu"}
    ports = free_ports(2)
    hosts = [subprocess.Popen([*gan_tl, "--devices", "2", "--batch-size", "8", "--out", str(tmp_path / f"host{i}"), *small],
                              env={**alone, **joined_env(backend, i, ports)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    said = [h.communicate(timeout=300)[0] for h in hosts]
    assert [h.returncode for h in hosts] == [0, 0], said
    assert all("training on 2 devices: global batch 16 (8 per device)" in s for s in said), said
    done = subprocess.run([*gan_tl, "--batch-size", "16", "--out", str(tmp_path / "one"), *small], env=alone,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    import keras
    weights = lambda run: keras.saving.load_model(tmp_path / run / "ema_generator.keras").get_weights()
    diff = lambda a, b: max(float(np.max(np.abs(x - y))) for x, y in zip(weights(a), weights(b)))
    assert diff("host0", "host1") == 0.0
    # TensorFlow: 7.4e-4 on one EMA weight after 20 steps, measured 2026-12-06 in a fresh environment (numpy 2.4.6) —
    # the Adam amplification of the 2-device tests above (earlier environments: 1.2e-7)
    assert diff("host0", "one") < (1e-4 if backend == "jax" else 3e-3)
