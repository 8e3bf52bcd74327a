"""Training scenarios run by the tests in a fresh process per backend (`KERAS_BACKEND` is set by the caller).

Usage: python tests/scenarios.py NAME OUT_DIR   — writes OUT_DIR/NAME.json (and files) for the test to check.
"""
import json
import os
import sys
from pathlib import Path

import keras
import numpy as np
from keras import ops

if keras.backend.backend() == "tensorflow" and os.environ.get("TF_CPU_DEVICES"):   # TensorFlow's XLA_FLAGS: N CPUs
    import tensorflow as tf
    tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                               [tf.config.LogicalDeviceConfiguration()] * int(os.environ["TF_CPU_DEVICES"]))

from gan_tl_course.core import set_seed
from gan_tl_course.data import load_fashion_mnist
from gan_tl_course.models import build_gan
from gan_tl_course.train import GANTrainer, GANConfig
from gan_tl_course.models import generate_images
from gan_tl_course.devices import devices_scope

WIDTH, BATCH, N_IMAGES = 8, 16, 256


def images() -> np.ndarray:
    return load_fashion_mnist().images[:N_IMAGES]


def make_trainer(run_dir=None, **config) -> GANTrainer:
    set_seed(0)
    g, d = build_gan("dcgan28", width=WIDTH)
    cfg = GANConfig(batch_size=BATCH, steps_per_call=10, checkpoint_every=10, sample_every=1000, **config)
    return GANTrainer(g, d, images(), cfg, run_dir=run_dir)


def numpy_vars(variables) -> list:
    return [ops.convert_to_numpy(v).astype("float64").copy() for v in variables]


def train20(out: Path) -> dict:
    "20 steps twice from the same seed; what moved, and whether the two runs agree."
    runs = []
    for _ in range(2):
        t = make_trainer(r1_gamma=0.1, augment="color,translation,cutout")
        before = {v.path: ops.convert_to_numpy(v).copy() for v in t.generator.variables + t.discriminator.variables}
        rng0 = ops.convert_to_numpy(t.seed.state).copy()
        t.train(20, progress=False)
        after = {v.path: ops.convert_to_numpy(v) for v in t.generator.variables + t.discriminator.variables}
        trainable = [v.path for v in t.generator.trainable_variables + t.discriminator.trainable_variables]
        runs.append(dict(
            losses=[[h["d_loss"], h["g_loss"], h["penalty"]] for h in t.history],
            unchanged_trainable=[p for p in trainable if np.array_equal(before[p], after[p])],
            bn_moved=any("moving" in p and not np.array_equal(before[p], after[p]) for p in before),
            rng_moved=not np.array_equal(rng0, ops.convert_to_numpy(t.seed.state)),
            step=t.step,
            samples=t.generate(n=4).tolist()))
    return dict(runs=runs)


def save_generator(out: Path) -> dict:
    "Train briefly, save the EMA generator as .keras and record its images for fixed latents."
    t = make_trainer()
    t.train(10, progress=False)
    t.ema_generator.save(out / "generator.keras")
    z = np.random.default_rng(1).standard_normal((8, t.latent_dim)).astype("float32")
    np.save(out / "z.npy", z)
    return dict(images=generate_images(t.ema_generator, z).tolist())


def load_generator(out: Path) -> dict:
    "Load the .keras generator written by another backend and draw the same latents."
    import keras
    g = keras.saving.load_model(out / "generator.keras")
    return dict(images=generate_images(g, np.load(out / "z.npy")).tolist())


def resume(out: Path) -> dict:
    "N steps, checkpoint, restore into a new trainer, N more  vs  2N steps straight."
    straight = make_trainer(run_dir=out / "straight")
    straight.train(20, progress=False)
    first = make_trainer(run_dir=out / "first")
    first.train(10, progress=False)
    second = make_trainer(run_dir=out / "first")
    restored_step = second.restore()
    second.train(20, progress=False)
    diffs = [float(np.max(np.abs(a - b))) for a, b in
             zip(numpy_vars(straight.generator.variables + straight.discriminator.variables),
                 numpy_vars(second.generator.variables + second.discriminator.variables))]
    return dict(restored_step=restored_step, step=second.step, max_abs_diff=max(diffs),
                max_abs_weight=max(float(np.max(np.abs(a))) for a in numpy_vars(straight.generator.variables)))


def judge_accuracy(out: Path) -> dict:
    "Per-class test accuracy of each shipped judge, measured on this backend."
    from gan_tl_course.judge import JUDGE_NAMES, judge_accuracy_report
    return {name: judge_accuracy_report(name) for name in JUDGE_NAMES}


def transfer_methods(out: Path) -> dict:
    "`inspect_method` for every transfer method on a small random source and 64 Fashion-MNIST images."
    from gan_tl_course.transfer import METHODS, MineGAN, inspect_method
    set_seed(0)
    g, d = build_gan("dcgan28", width=WIDTH)
    reports = {name: inspect_method(MineGAN(mine_steps=10) if name == "minegan" else name, g, d, images()[:64])
               for name in METHODS}                       # minegan: 10 steps of mining, then 10 of joint tuning
    reports["minegan_mining"] = inspect_method(MineGAN(mine_steps=1000), g, d, images()[:64])
    reports["minegan_mining"]["g_weights"] = [v.path for v in g.trainable_variables]
    return reports


def invert_latents(out: Path) -> dict:
    "Invert images that the shipped sources drew themselves; the conditional one searching its labels."
    from gan_tl_course.core import to_uint8, to_unit
    from gan_tl_course.invert import invert, reconstruction_error
    from gan_tl_course.models import latent_dim_of
    from gan_tl_course.transfer import load_source
    g, _ = load_source("fashion28")
    rng = np.random.default_rng(0)
    targets = to_uint8(generate_images(g, rng.standard_normal((6, latent_dim_of(g)))))
    before = numpy_vars(g.variables)
    found = invert(g, targets, steps=60, restarts=2)
    start = reconstruction_error(g, rng.standard_normal((6, latent_dim_of(g))), None, to_unit(targets))
    cg, _ = load_source("fashion28_conditional")
    drawn_with = [0, 1, 8, 9]                                     # T-shirt, trouser, bag, ankle boot
    labelled = invert(cg, to_uint8(generate_images(cg, rng.standard_normal((4, latent_dim_of(cg))), drawn_with)),
                      steps=60, restarts=1)
    return dict(start=start.tolist(), error=found.error.tolist(), curve=found.curve.tolist(),
                generator_moved=any(not np.array_equal(a, b) for a, b in zip(before, numpy_vars(g.variables))),
                labels=labelled.labels.tolist(), drawn_with=drawn_with, label_error=labelled.error.tolist())

def blend_generators(out: Path) -> dict:
    "Blend the shipped source with a copy of it whose weights moved: both ends, the middle, and a swap."
    from gan_tl_course.blend import blend, layer_blocks
    from gan_tl_course.models import latent_dim_of
    from gan_tl_course.transfer import load_source
    g, moved = load_source("fashion28")[0], load_source("fashion28")[0]
    for w in moved.weights:
        w.assign(w * 0.9 + 0.01)
    z = np.random.default_rng(0).standard_normal((8, latent_dim_of(g))).astype("float32")
    draw = lambda m: generate_images(m, z)
    diff = lambda a, b: float(np.abs(a - b).max())
    two = blend(g, moved, swap_at=2)
    swapped_right = all(np.array_equal(a, b) for layer, block in layer_blocks(g).items()
                        for a, b in zip(two.get_layer(layer).get_weights(), (moved if block < 2 else g).get_layer(layer).get_weights()))
    half = blend(g, moved, alpha=0.5)
    mean_right = max(diff(h, (a + b) / 2) for h, a, b in zip(half.get_weights(), g.get_weights(), moved.get_weights()))
    return dict(source_end=diff(draw(blend(g, moved, swap_at=0)), draw(g)), tuned_end=diff(draw(blend(g, moved, swap_at=4)), draw(moved)),
                alpha_ends=max(diff(draw(blend(g, moved, alpha=0.0)), draw(g)), diff(draw(blend(g, moved, alpha=1.0)), draw(moved))),
                swapped_right=swapped_right, mean_error=mean_right, blend_differs=diff(draw(half), draw(g)))


def adapt_methods(out: Path) -> dict:
    "Gradient reversal, and a few steps of source only, DANN and PixelDA on a tiny domain pair: what moved, what came out."
    import keras
    from gan_tl_course.adapt import ADAPTATION_METHODS, AdaptConfig, Adaptation, domain_pair, reversed_gradient
    from gan_tl_course.steps import value_and_grad
    x = keras.Variable(np.array([1.0, -2.0, 3.0], "float32"))
    _, _, (grad,) = value_and_grad(lambda: (ops.sum(ops.square(reversed_gradient(x.value, 0.5))), ()), [x])
    pair = domain_pair("mnist_to_mnist_m", limit=64)
    report = dict(reversed_grad=ops.convert_to_numpy(grad).tolist())
    for method in ("source only", "DANN", "PixelDA"):
        runs = []
        for _ in range(2):                                   # twice from the same seed: the same numbers
            config = AdaptConfig(batch_size=8, steps_per_call=3, ramp_steps=6, **ADAPTATION_METHODS[method])
            a = Adaptation(pair, config=config)
            models = list(a.checkpoint_models.values())
            before = numpy_vars([v for m in models for v in m.trainable_variables])
            a.train(6, progress=False)
            after = numpy_vars([v for m in models for v in m.trainable_variables])
            runs.append(dict(history=a.history_array().tolist(), accuracy=a.accuracy(),
                             unmoved=sum(np.array_equal(b, c) for b, c in zip(before, after)), variables=len(before)))
        report[method] = runs
    return report


def make_vae_trainer(run_dir=None) -> "VAETrainer":
    from gan_tl_course.vae import VAEConfig, VAETrainer, build_vae
    set_seed(0)
    encoder, decoder = build_vae("dcgan28", width=WIDTH, latent_dim=16)
    cfg = VAEConfig(batch_size=BATCH, steps_per_call=10, checkpoint_every=10, sample_every=1000)
    return VAETrainer(encoder, decoder, images(), cfg, run_dir=run_dir)


def vae_train(out: Path) -> dict:
    "20 VAE steps twice from the same seed, a resume from step 10, and a held-out evaluation with IWAE."
    from gan_tl_course.vae import VAE_METRICS, evaluate_vae
    runs = []
    for _ in range(2):
        t = make_vae_trainer(run_dir=out / f"run{len(runs)}")
        models = t.encoder.variables + t.decoder.variables
        before = numpy_vars(models + [t.log_scale])
        t.train(20, progress=False)
        trainable = t.encoder.trainable_variables + t.decoder.trainable_variables + [t.log_scale]
        after = {v.path: ops.convert_to_numpy(v) for v in trainable}
        runs.append(dict(history=[[h[k] for k in VAE_METRICS] for h in t.history], step=t.step,
                         unchanged=[v.path for v, b in zip(models + [t.log_scale], before)
                                    if v.path in after and np.array_equal(b, after[v.path])],
                         samples=t.generate(n=4).tolist()))
    resumed = make_vae_trainer(run_dir=out / "resumed")
    restored = resumed.restore(out / "run0" / "checkpoints" / "step_000010")
    resumed.train(20, progress=False)
    diff = max(float(np.max(np.abs(a - b))) for a, b in
               zip(numpy_vars(t.encoder.variables + t.decoder.variables),
                   numpy_vars(resumed.encoder.variables + resumed.decoder.variables)))
    scores = evaluate_vae(t.encoder, t.decoder, float(ops.convert_to_numpy(t.log_scale)), images()[:32], samples=8)
    return dict(runs=runs, restored_step=restored, resume_diff=diff, scores=scores)

def vae_transfer(out: Path) -> dict:
    "Each VAE transfer method for 10 steps from a tiny source: which networks moved, and a resumed run's step."
    from gan_tl_course.vae_transfer import VAE_METHODS, VAESource, fine_tune_vae
    from gan_tl_course.vae import build_vae
    set_seed(0)
    source = VAESource(*build_vae("dcgan28", width=WIDTH, latent_dim=16), log_scale=-2.0, name="tiny")
    moved = {}
    for method in VAE_METHODS:
        t = fine_tune_vae(source, images()[:32], method, steps=10, progress=False)
        moved[method] = {role: any(not np.array_equal(a, b) for a, b in
                                   zip(getattr(t, role).get_weights(), getattr(source, role).get_weights()))
                         for role in ("encoder", "decoder")}
    fine_tune_vae(source, images()[:32], "vae_finetune", steps=10, run_dir=out / "run", progress=False)
    resumed = fine_tune_vae(source, images()[:32], "vae_finetune", steps=20, run_dir=out / "run", resume=True,
                            progress=False)
    return dict(moved=moved, resumed_step=resumed.step, resumed_rows=len(resumed.history))


def data_parallel(out: Path) -> dict:
    """2 simulated CPU devices (JAX or TensorFlow): 1 device at batch 16 against 2 devices at 8 each (GAN and VAE),
    and a checkpoint written on 2 devices resumed on 1 and the reverse, against the straight runs. (The transfer
    methods and a conditional WGAN-GP on 2 devices: `data_parallel_methods`.)"""
    from gan_tl_course.runs import RunConflict
    from gan_tl_course.vae import VAEConfig, VAETrainer, build_vae

    def gan(devices: int, run_dir=None, batch: int = 16) -> GANTrainer:
        set_seed(0)
        config = GANConfig(batch_size=batch // devices, devices=devices, steps_per_call=10, checkpoint_every=10,
                             sample_every=1000, r1_gamma=0.1, augment="color,translation,cutout", ada_target=0.6)
        with devices_scope(devices):
            return GANTrainer(*build_gan("dcgan28", width=WIDTH), images(), config, run_dir=run_dir)

    def vae(devices: int) -> VAETrainer:
        set_seed(0)
        config = VAEConfig(batch_size=16 // devices, devices=devices, steps_per_call=10)
        with devices_scope(devices):
            return VAETrainer(*build_vae("dcgan28", width=WIDTH, latent_dim=16), images(), config)

    state = lambda t: numpy_vars(t.generator.variables + t.discriminator.variables + t.ema_generator.variables)
    biggest_diff = lambda a, b: max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))
    straight = {n: gan(n) for n in (1, 2)}
    vaes = {n: vae(n) for n in (1, 2)}
    for t in (*straight.values(), *vaes.values()):
        t.train(20, progress=False)
    resumed = {}
    for first, then in ((2, 1), (1, 2)):
        run = out / f"started_on_{first}"
        gan(first, run).train(10, progress=False)
        t = gan(then, run)
        t.restore()
        t.train(20, progress=False)
        resumed[f"{first}->{then}"] = biggest_diff(state(t), state(straight[then]))
    try:
        gan(2, out / "started_on_2", batch=32).restore()
        refusal = ""
    except RunConflict as e:
        refusal = str(e)
    try:                                  # models built outside devices_scope, the trainer inside (TensorFlow refuses)
        outside = build_gan("dcgan28", width=WIDTH)
        with devices_scope(2):
            GANTrainer(*outside, images(), GANConfig(batch_size=8, devices=2))
        built_outside = ""
    except ValueError as e:
        built_outside = str(e)
    moving = lambda t: [ops.convert_to_numpy(v) for v in t.generator.variables if "moving" in v.path]
    placement = lambda v: str(v.value.sharding if keras.backend.backend() == "jax" else v.value)   # where it lives
    return dict(
        losses={n: [[h["d_loss"], h["g_loss"], h["augment_p"]] for h in t.history] for n, t in straight.items()},
        vae_losses={n: [h["loss"] for h in t.history] for n, t in vaes.items()},
        weight_diff=biggest_diff(state(straight[1]), state(straight[2])),
        bn_diff=biggest_diff(moving(straight[1]), moving(straight[2])),
        vae_weight_diff=biggest_diff(numpy_vars(vaes[1].decoder.variables), numpy_vars(vaes[2].decoder.variables)),
        resumed=resumed, refusal=refusal, built_outside=built_outside,
        placement=placement(straight[2].generator.variables[0]),
        global_batch=straight[2].batch_size)


def data_parallel_methods(out: Path) -> dict:
    """On 1 and 2 simulated CPU devices: `fine_tune` with each method named in GAN_TL_TEST_METHODS (comma-separated;
    the methods whose penalties or set-up reach past a step), and with "conditional" there, a conditional GAN with
    WGAN-GP (labels split like the images; mixing weights drawn for the global batch)."""
    from gan_tl_course.transfer import fine_tune
    methods = os.environ["GAN_TL_TEST_METHODS"].split(",")
    tuned = {method: {n: fine_tune("fashion28", images()[:10], method, steps=10, devices=n, progress=False).history
                      for n in (1, 2)} for method in methods if method != "conditional"}
    def conditional(devices: int) -> list:
        set_seed(0)
        config = GANConfig(batch_size=16 // devices, devices=devices, gp_weight=1.0, steps_per_call=10)
        labelled = load_fashion_mnist().take(np.arange(N_IMAGES))
        with devices_scope(devices):
            t = GANTrainer(*build_gan("dcgan28", num_classes=10, width=WIDTH), labelled, config)
        return [[h["d_loss"], h["g_loss"], h["penalty"]] for h in t.train(20, progress=False)]
    return dict(tuned_losses={method: {n: [[h["d_loss"], h["g_loss"]] for h in history] for n, history in runs.items()}
                              for method, runs in tuned.items()},
                conditional_losses={n: conditional(n) for n in (1, 2)} if "conditional" in methods else None)


def refuse_devices(out: Path) -> dict:
    "What `devices=2` says on this backend: a trainer built outside `devices_scope`, and `devices_scope` itself."
    said = {}
    from gan_tl_course.devices import join_hosts
    backend = keras.backend.backend()
    other_cluster = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "127.0.0.1:1"} if backend == "tensorflow" else {"TF_CONFIG": "{}"}
    attempts = {"trainer": (lambda: make_trainer(devices=2), {}), "scope": (lambda: devices_scope(2), {}),
                "other_cluster": (join_hosts, other_cluster),                # the other backend's cluster variables
                "scope_before_join": (lambda: devices_scope(2), {"TF_CONFIG": "{}"})}   # TF_CONFIG, no join_hosts
    for name, (attempt, env) in attempts.items():
        os.environ.update(env)
        try:
            attempt()
            said[name] = ""
        except ValueError as e:
            said[name] = str(e)
        finally:
            for key in env:
                del os.environ[key]
    return said


def cli_devices(out: Path) -> dict:
    "`gan-tl pretrain --devices 2 --batch-size 8` resumed with `--devices 1` (the batch kept global) against 1 x 16 straight."
    import contextlib, io
    import keras
    from gan_tl_course.cli import main
    small = ["--limit", "256", "--width", "8", "--checkpoint-every", "10", "--sample-every", "1000", "--quiet"]
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        codes = [main(["pretrain", "--steps", "20", "--batch-size", "8", "--devices", "2", "--out", str(out / "two"), *small]),
                 main(["pretrain", "--steps", "30", "--devices", "1", "--resume", "--out", str(out / "two"), "--quiet"]),
                 main(["pretrain", "--steps", "30", "--batch-size", "16", "--out", str(out / "one"), *small])]
    tune = ["finetune", "--source", "fashion28", "--images", "mnist_5k", "--shots", "10", "--steps", "10", "--quiet"]
    errors = io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(errors):
        codes += [main([*tune, "--devices", "2", "--out", str(out / "tuned_two")]),
                  main([*tune, "--out", str(out / "tuned_one")]),
                  main([*tune, "--devices", "3", "--out", str(out / "tuned_three")])]
    weights = lambda run, name="generator": keras.saving.load_model(run / f"{name}.keras").get_weights()
    diff = lambda a, b, name="generator": max(float(np.max(np.abs(x - y))) for x, y in zip(weights(a, name), weights(b, name)))
    return dict(codes=codes, said=said.getvalue(), diff=diff(out / "two", out / "one"),
                rows=len((out / "two" / "history.csv").read_text().splitlines()),
                tuned_diff=diff(out / "tuned_two", out / "tuned_one", "ema_generator"), refusal=errors.getvalue(),
                tuned_first_step={run: (out / run / "history.csv").read_text().splitlines()[1].split(",")[1:3]
                                  for run in ("tuned_two", "tuned_one")},
                tuned_three_exists=(out / "tuned_three").exists())


if __name__ == "__main__":
    name, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    result = globals()[name](out)
    (out / f"{name}.json").write_text(json.dumps(result))
