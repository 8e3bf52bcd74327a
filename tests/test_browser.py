"""The widgets in a real browser: JupyterLab and Voila started here, headless Chromium (Debian's) via Playwright.

Two tests show chapter 10's latent explorer for the shipped source (a two-cell notebook: nbdev_test runs the whole
chapter), drag its first slider and check that the picture changed; one uploads a PNG, and then a text file named
.png, through chapter 12b's InvertAndEdit and its real file chooser. The screenshots are kept in tests/artifacts/ (widgets_lab.png, widgets_voila.png,
editor_upload_lab.png, editor_bad_upload_lab.png).

With GAN_TL_SCREENSHOTS=FOLDER (`make screenshots` sets nbs/images), one more test builds every widget as lesson 5
does (full sizes: 400 fine-tuning steps) and saves a small PNG of each widget element, not the page, as
FOLDER/widget_<name>.png: the pictures the static lesson shows next to its live widgets. Without the variable that
test is skipped, so `make test` writes nothing outside tests/artifacts/."""
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
SCREENSHOTS = os.environ.get("GAN_TL_SCREENSHOTS", "")        # a folder for the widgets' pictures (make screenshots)
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_notebook(folder: Path, name: str, cells: list[str]) -> Path:
    "A notebook of `cells` in `folder`, with a kernelspec naming this Python (so no server asks which kernel to start)."
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
                          for s in cells],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    path = folder / name
    path.write_text(json.dumps(notebook))
    return path


def _explorer_notebook(folder: Path) -> Path:
    """A notebook that shows chapter 10's LatentExplorer for the shipped fashion28 source: what a learner sees first.
    (The whole chapter runs under nbdev_test; here the browser only has to show a widget and answer its slider.)"""
    cells = ["from gan_tl_course.transfer import load_pretrained\nfrom gan_tl_course.widgets import LatentExplorer",
             "LatentExplorer(load_pretrained('fashion28')[0])"]
    return _write_notebook(folder, "explorer.ipynb", cells)


@contextmanager
def _server(command: list[str], port: int, log: Path):
    "Run a notebook server in test mode (IN_TEST=1 reaches its kernels) until the block ends."
    env = {**os.environ, "IN_TEST": "1", "JUPYTER_CONFIG_DIR": str(log.parent / "config")}
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    try:
        for _ in range(120):                                     # wait until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"{command[2]} did not start: {log.read_text()[-2000:]}")
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def _browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def _accept_dialogs(page, seconds: float) -> None:
    "For `seconds`, accept any JupyterLab dialog that opens (e.g. 'Select Kernel': the default is this Python)."
    deadline = time.time() + seconds
    while time.time() < deadline:
        accept = page.locator(".jp-Dialog .jp-mod-accept")
        if accept.count():
            accept.first.click()
        time.sleep(0.5)


def _wait_until_cells_ran(page, seconds: float = 900) -> None:
    """Wait until no cell is queued or running (prompt `[*]`): until then the kernel is busy with the notebook's
    later cells and answers a slider only after them, which on a loaded machine can take minutes."""
    busy = page.locator(".jp-InputPrompt", has_text="[*]")
    deadline = time.time() + seconds
    while busy.count():
        if time.time() > deadline:
            raise TimeoutError(f"{busy.count()} cells were still queued or running after {seconds:.0f} s")
        time.sleep(1)


def _drag_first_slider(page, screenshot: Path) -> tuple[str, str]:
    "Wait for the latent explorer, drag its first slider to the right; returns the picture's src before and after."
    explorer = page.locator(".jupyter-widgets.widget-vbox").filter(has=page.locator(".widget-slider")).first
    try:
        explorer.wait_for(timeout=600_000)
    except Exception:
        page.screenshot(path=str(screenshot.with_name(screenshot.stem + "-timeout.png")))
        raise
    image = explorer.locator("img").first
    image.wait_for(timeout=60_000)
    before = image.get_attribute("src")
    handle = explorer.locator(".widget-slider .noUi-handle").first
    for _ in range(3):          # a drag that lands while the page is still laying out outputs moves nothing: retry
        handle.scroll_into_view_if_needed()
        box = handle.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 + 80, box["y"] + box["height"] / 2, steps=8)
        page.mouse.up()
        deadline = time.time() + 30
        while image.get_attribute("src") == before and time.time() < deadline:
            time.sleep(0.25)
        if image.get_attribute("src") != before:
            break
    explorer.screenshot(path=str(screenshot))
    return before, image.get_attribute("src")


@contextmanager
def _lab_with_notebook(folder: Path, notebook: str, seconds: float = 900):
    """JupyterLab serving `folder`, in headless Chromium, with `notebook` open and all its cells run (waiting at most
    `seconds`); yields the page."""
    port, token = _free_port(), "gan-tl-browser-test"
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
               "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}"]
    with _server(command, port, folder / "lab.log"), _browser() as page:
        page.goto(f"http://127.0.0.1:{port}/lab/tree/{notebook}?token={token}")
        page.wait_for_selector(".jp-Notebook", timeout=120_000)
        _accept_dialogs(page, seconds=15)
        page.click(".lm-MenuBar-itemLabel:text-is('Run')", timeout=30_000)
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')", timeout=30_000)
        _accept_dialogs(page, seconds=10)
        _wait_until_cells_ran(page, seconds)
        yield page


def test_slider_changes_picture_in_jupyterlab(tmp_path):
    _explorer_notebook(tmp_path)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with _lab_with_notebook(tmp_path, "explorer.ipynb") as page:
        before, after = _drag_first_slider(page, ARTIFACTS / "widgets_lab.png")
    assert before and after and after != before, "dragging the slider did not change the widget's picture"


def test_slider_changes_picture_in_voila(tmp_path):
    notebook = _explorer_notebook(tmp_path)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1"]
    with _server(command, port, tmp_path / "voila.log"), _browser() as page:
        page.goto(f"{base}/", timeout=600_000)                  # Voila runs the notebook, then shows its widgets
        before, after = _drag_first_slider(page, ARTIFACTS / "widgets_voila.png")
    assert before and after and after != before, "dragging the slider did not change the widget's picture in Voila"


def _editor_notebook(folder: Path) -> Path:
    "A notebook that shows chapter 12b's InvertAndEdit widget under the fashion28 source (quick inversions)."
    cells = ["from gan_tl_course.edit import InvertAndEdit\nfrom gan_tl_course.transfer import load_source",
             "editor = InvertAndEdit({'source': load_source('fashion28')[0]}, steps=20, restarts=1)\neditor"]
    return _write_notebook(folder, "editor.ipynb", cells)


def _choose_file(page, widget, path: Path) -> None:
    "Click the widget's upload button and pick `path` in the file chooser it opens, as a user does."
    with page.expect_file_chooser(timeout=30_000) as chooser:
        widget.locator(".widget-upload").click()
    chooser.value.set_files(str(path))


def test_upload_shows_reconstruction_in_jupyterlab(tmp_path):
    """Upload a PNG through the widget's real file input: its name and reconstruction appear; then a text file named
    .png: the widget says so in red and keeps the picture."""
    import numpy as np
    from PIL import Image
    _editor_notebook(tmp_path)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    digit = np.zeros((112, 112), np.uint8)
    digit[20:92, 48:64] = 255                                    # a thick "1"
    Image.fromarray(digit).save(tmp_path / "my_digit.png")
    (tmp_path / "notes.png").write_text("not an image")
    with _lab_with_notebook(tmp_path, "editor.ipynb") as page:
        widget = page.locator(".jupyter-widgets.widget-vbox").filter(has=page.locator(".widget-upload")).first
        widget.wait_for(timeout=300_000)
        image = widget.locator("img").first
        before = image.get_attribute("src")
        _choose_file(page, widget, tmp_path / "my_digit.png")
        page.wait_for_function("() => document.body.innerText.includes('my_digit.png: inverted under source')",
                               timeout=120_000)
        after = image.get_attribute("src")
        widget.screenshot(path=str(ARTIFACTS / "editor_upload_lab.png"))
        _choose_file(page, widget, tmp_path / "notes.png")
        page.wait_for_function("() => document.body.innerText.includes('notes.png is not an image')", timeout=60_000)
        kept = image.get_attribute("src")
        widget.screenshot(path=str(ARTIFACTS / "editor_bad_upload_lab.png"))
    assert before and after and after != before, "the uploaded image's reconstruction did not appear"
    assert kept == after, "a bad upload changed the picture"


# Lesson 5's widgets, built as the lesson builds them in full mode; each is given a CSS class to find it by.
SCREENSHOT_SETUP = """\
import tempfile
from pathlib import Path
from gan_tl_course.data import few_shot, load_mnist_5k
from gan_tl_course.edit import InvertAndEdit
from gan_tl_course.transfer import fine_tune, load_pretrained
from gan_tl_course.widgets import (CompareGenerators, Interpolation, LatentExplorer, NearestTraining, TrainingTimeline,
                                   ganspace_directions)
g_source, _ = load_pretrained("fashion28")
shots, held_out = few_shot(load_mnist_5k(), 100, seed=0)
run = Path(tempfile.mkdtemp()) / "finetune"
tuned = fine_tune("fashion28", shots, steps=400, seed=0, run_dir=run, progress=False).ema_generator
scratch = fine_tune("fashion28", shots, method="scratch", steps=400, seed=0, progress=False).ema_generator
directions, _ = ganspace_directions(g_source, n_directions=5)"""
SCREENSHOT_WIDGETS = {
    "interpolation": "Interpolation(g_source, seed_a=0, seed_b=1, steps=10)",
    "ganspace": "LatentExplorer(g_source, directions=directions)",
    "compare": 'CompareGenerators({"source": g_source, "fine-tuned": tuned, "scratch": scratch})',
    "nearest": "NearestTraining(tuned, shots.images, neighbours=2)",
    "timeline": "TrainingTimeline(run)",
    "edit": 'InvertAndEdit({"source": g_source, "fine-tuned": tuned}, held_out)',
}


def _screenshot_notebook(folder: Path) -> Path:
    "A notebook that builds each widget of SCREENSHOT_WIDGETS in its own cell, marked with the CSS class shot-<name>."
    cells = [SCREENSHOT_SETUP] + [f"w = {make}\nw.add_class('shot-{name}')\nw" for name, make in SCREENSHOT_WIDGETS.items()]
    return _write_notebook(folder, "screenshots.ipynb", cells)


def _save_small_png(screenshot: bytes, path: Path, colours: int = 128) -> None:
    "Save a screenshot as a palette PNG of at most `colours` colours (gray pictures and sliders need few): a few tens of KB."
    import io
    from PIL import Image
    image = Image.open(io.BytesIO(screenshot)).convert("RGB")
    image.quantize(colours, dither=Image.Dither.NONE).save(path, optimize=True)


@pytest.mark.skipif(not SCREENSHOTS, reason="set GAN_TL_SCREENSHOTS=FOLDER (make screenshots) to save the widgets' pictures")
def test_widget_screenshots(tmp_path):
    """Every widget of lesson 5, rendered by JupyterLab: a PNG of each widget element (shrunk to its content's width)
    into GAN_TL_SCREENSHOTS, once its pictures have loaded."""
    folder = Path(SCREENSHOTS) if Path(SCREENSHOTS).is_absolute() else ROOT / SCREENSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    _screenshot_notebook(tmp_path)
    with _lab_with_notebook(tmp_path, "screenshots.ipynb", seconds=2400) as page:
        page.add_style_tag(content=".Toastify { display: none !important; }")    # JupyterLab's notices, over the widgets
        assert not page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                                has_text="Error").count(), "a cell of the screenshot notebook failed"
        for name in SCREENSHOT_WIDGETS:
            widget = page.locator(f".shot-{name}").first
            widget.wait_for(timeout=120_000)
            widget.scroll_into_view_if_needed()
            widget.evaluate("e => { e.style.width = 'max-content'; e.style.maxWidth = 'none'; }")
            page.wait_for_function("e => [...e.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)",
                                   arg=widget.element_handle(), timeout=60_000)
            widget.evaluate("""e => e.querySelectorAll('img').forEach(i => {   // small pictures at 2x (or more) their pixels
                const scale = Math.max(1, Math.round(400 / i.naturalWidth));   // so that each is about 400 px wide
                i.style.alignSelf = 'flex-start'; i.style.width = scale * i.naturalWidth + 'px';
                i.style.imageRendering = 'pixelated'; })""")
            _save_small_png(widget.screenshot(), folder / f"widget_{name}.png")
    sizes = {name: (folder / f"widget_{name}.png").stat().st_size for name in SCREENSHOT_WIDGETS}
    assert all(2_000 < size < 150_000 for size in sizes.values()), sizes
