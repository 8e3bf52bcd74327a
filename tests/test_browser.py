"""The widgets in a real browser: JupyterLab started here, headless Chromium (Debian's) driven by Playwright.

The test runs the widgets chapter (in test mode) in JupyterLab, drags the latent explorer's first slider and
checks that the picture changed. The screenshot is kept in tests/artifacts/widgets.png."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyter_lab(tmp_path):
    "A JupyterLab server on 127.0.0.1 serving a copy of the widgets chapter; yields its base URL and token."
    notebook = json.loads((ROOT / "nbs" / "10_widgets.ipynb").read_text())
    notebook["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (tmp_path / "10_widgets.ipynb").write_text(json.dumps(notebook))     # no kernel dialog: use this Python
    port, token = _free_port(), "gan-tl-browser-test"
    env = {**os.environ, "IN_TEST": "1", "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--LabApp.news_url=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"JupyterLab did not start: {(tmp_path / 'lab.log').read_text()[-2000:]}")
        yield base, token
    finally:
        server.terminate()
        server.wait(timeout=30)


def _accept_dialogs(page, seconds: float) -> None:
    "For `seconds`, accept any JupyterLab dialog that opens (e.g. 'Select Kernel': the default is this Python)."
    deadline = time.time() + seconds
    while time.time() < deadline:
        accept = page.locator(".jp-Dialog .jp-mod-accept")
        if accept.count():
            accept.first.click()
        time.sleep(0.5)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)")
def test_slider_changes_picture_in_jupyterlab(jupyter_lab):
    from playwright.sync_api import sync_playwright
    base, token = jupyter_lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/lab/tree/10_widgets.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook", timeout=120_000)
        _accept_dialogs(page, seconds=15)                             # a kernel dialog, if JupyterLab asks
        page.click(".lm-MenuBar-itemLabel:text-is('Run')", timeout=30_000)
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')", timeout=30_000)
        _accept_dialogs(page, seconds=10)
        explorer = page.locator(".jupyter-widgets.widget-vbox").filter(has=page.locator(".widget-slider")).first
        try:
            explorer.wait_for(timeout=300_000)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "widgets-timeout.png"))
            raise
        image = explorer.locator("img").first
        image.wait_for(timeout=60_000)
        before = image.get_attribute("src")
        handle = explorer.locator(".widget-slider .noUi-handle").first
        handle.scroll_into_view_if_needed()
        box = handle.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 + 80, box["y"] + box["height"] / 2, steps=8)
        page.mouse.up()
        deadline = time.time() + 60
        while image.get_attribute("src") == before and time.time() < deadline:
            time.sleep(0.25)
        explorer.screenshot(path=str(ARTIFACTS / "widgets.png"))
        after = image.get_attribute("src")
        browser.close()
    assert before and after and after != before, "dragging the slider did not change the widget's picture"
