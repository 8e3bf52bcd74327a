"""The learner's code of the lessons, checked on every backend: lesson 2's solution `gan_step` against the textbook
GAN step (`train.check_gan_step`), each backend in a fresh process with `KERAS_BACKEND` set."""
import json
import os
import subprocess
import sys

import pytest

from conftest import BACKENDS, ROOT

LESSON2 = ROOT / "nbs" / "lessons" / "02_how_a_gan_learns.ipynb"

# How far a *correct* step may differ from the textbook one: `check_gan_step`'s atol, 1e-5, on every backend. Measured
# on a 2-core CPU (float32): the lesson's solution differs by exactly 0 on TensorFlow, JAX and torch (it is the textbook
# step); ONE_D_CALL below, correct but written another way, by rounding only: at most 6e-8 in a loss (torch) and 5e-9 in
# a weight (all three). A step with a mistake differs by 3e-4 or more (the smallest: D's labels swapped, in d_loss).
ATOL = 1e-5
ROUNDING = 1e-6          # what this test allows a correct step: a tenth of ATOL, ten times the largest rounding seen

ONE_D_CALL = '''
def gan_step(generator, discriminator, g_optimizer, d_optimizer, real, z_d, z_g):
    "Correct, but not the textbook's code: fakes made outside the loss, one D call on reals and fakes, losses by hand."
    from keras import ops
    fake = generator(z_d, training=True)
    def d_loss_fn():
        logits = discriminator(ops.concatenate([real, fake], 0), training=True)
        n = ops.shape(real)[0]
        return -ops.mean(ops.log_sigmoid(logits[:n])) - ops.mean(ops.log_sigmoid(-logits[n:])), ()
    d_loss, _, grads = value_and_grad(d_loss_fn, discriminator.trainable_variables)
    d_optimizer.apply(grads, discriminator.trainable_variables)
    g_loss_fn = lambda: (-ops.mean(ops.log_sigmoid(discriminator(generator(z_g, training=True), training=True))), ())
    g_loss, _, grads = value_and_grad(g_loss_fn, generator.trainable_variables)
    g_optimizer.apply(grads, generator.trainable_variables)
    return d_loss, g_loss
'''

CHECK = '''
import json, sys
from gan_tl_course.losses import get_loss
from gan_tl_course.steps import value_and_grad
from gan_tl_course.train import check_gan_step
results = {}
for name, source in json.loads(sys.argv[1]).items():
    scope = dict(get_loss=get_loss, value_and_grad=value_and_grad)      # what the lesson imports for its solution
    exec(source, scope)
    try:
        results[name] = check_gan_step(scope["gan_step"], atol=%r)
    except AssertionError as refusal:
        results[name] = str(refusal)
print(json.dumps(results))
''' % ATOL


def solution_source() -> str:
    "The source of lesson 2's solution: its one folded code cell that defines `gan_step`."
    cells = [''.join(c["source"]) for c in json.loads(LESSON2.read_text())["cells"] if c["cell_type"] == "code"]
    found = [s for s in cells if "#| code-fold: true" in s and "def gan_step(" in s]
    assert len(found) == 1, f"lesson 2 should have one folded solution cell defining gan_step, found {len(found)}"
    return found[0]


def without_line(source: str, start: str) -> str:
    "`source` less its one line that starts (after indentation) with `start`."
    lines = source.splitlines()
    hits = [i for i, line in enumerate(lines) if line.strip().startswith(start)]
    assert len(hits) == 1, f"the solution should have one line starting with {start!r}, found {len(hits)}"
    return "\n".join(lines[:hits[0]] + lines[hits[0] + 1:])


@pytest.mark.parametrize("backend", BACKENDS)
def test_lesson2_gan_step(backend):
    "The lesson's solution passes `check_gan_step`; the same step without D's or G's update is refused, saying which."
    solution = solution_source()
    steps = {"solution": solution, "one D call": ONE_D_CALL,
             "no D update": without_line(solution, "d_optimizer.apply("),
             "no G update": without_line(solution, "g_optimizer.apply(")}
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", CHECK, json.dumps(steps)], env=env, capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, f"on {backend}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("solution", "one D call"):
        assert isinstance(results[name], dict), f"{name} on {backend} was refused: {results[name]}"
        assert max(results[name].values()) <= ROUNDING, (name, backend, results[name])
    assert results["no D update"].startswith("step 1: D's weights did not change"), results["no D update"]
    assert results["no G update"].startswith("step 1: G's weights did not change"), results["no G update"]
