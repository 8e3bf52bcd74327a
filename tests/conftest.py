import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["tensorflow", "jax", "torch"]


def run_scenario(name: str, backend: str, out: Path, timeout: int = 600, env: dict | None = None) -> dict:
    "Run `tests/scenarios.py NAME` under `backend` in a fresh process (with `env` added); return its JSON result."
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "scenarios.py"), name, str(out)],
                          env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{name} on {backend} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return json.loads((out / f"{name}.json").read_text())


def run_cli(*args) -> tuple[int, str]:
    "Run `gan-tl ARGS` in this process; return (exit status, stderr)."
    from gan_tl_course.cli import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, err.getvalue()


@pytest.fixture
def scenario(tmp_path):
    return lambda name, backend, out=None: run_scenario(name, backend, out or tmp_path)


def pytest_configure(config):
    # JAX compiles each training step with XLA, seconds per program on a CPU, and most tests compile the same few
    # programs again in fresh processes: one compilation cache for the session (inherited by every subprocess) lets a
    # later process load what an earlier one compiled. Measured: test_kill_and_resume_equals_a_straight_run[jax]
    # alone, 117 s without it, 77 s with an empty cache.
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = config._jax_cache = tempfile.mkdtemp(prefix="gan-tl-jax-cache-")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    config.addinivalue_line("markers", "slow: the full matrix only (make test-all): a behaviour `make test` already checks, "
                            "repeated for each transfer method or on a second backend")
    # Keras' TensorFlow backend triggers NumPy 2's copy-keyword deprecation on every tensor conversion.
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword")


def pytest_unconfigure(config):
    if getattr(config, "_jax_cache", None):
        shutil.rmtree(config._jax_cache, ignore_errors=True)
