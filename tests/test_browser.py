"""The classroom demo page (``make demo``) driven in headless Chromium, and its command line.

The server is the real one: Voilà on a free port of 127.0.0.1 serving ``rsd_mini/demo_page.ipynb``
with the shipped tiny models. The page is driven as a person would (keys on the sliders, clicks,
a file chooser), and the images are read back from the page's pixels. The screenshot goes to
``figures/demo_page.png`` (the README shows it).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headless import chromium_context, chromium_path, watch_console
from rsd_mini import demo
from rsd_mini.widgets import DEFAULT_MAX_SIDE

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "figures" / "demo_page.png"
FONT_AWESOME_CDN = "https://cdn.jsdelivr.net/npm/@fortawesome/**"
#: Voilà runs the page's notebook (torch, the models, a 15-step teacher) before it shows anything.
PAGE_TIMEOUT_MS = 600_000
#: Each redraw: a teacher run of at most 15 steps on a small image, on a busy 2-core machine.
UPDATE_TIMEOUT_MS = 300_000

# A hash of the pixels of the columns [x0, x1) (fractions of the width) of an <img>, read back
# through a canvas: what a person sees, not the widget's state in Python.
PIXEL_HASH = """([selector, x0, x1]) => {
  const img = document.querySelector(selector);
  if (!img || !img.complete || img.naturalWidth === 0) return null;
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  const left = Math.floor(x0 * canvas.width), width = Math.max(1, Math.floor((x1 - x0) * canvas.width));
  const data = context.getImageData(left, 0, width, canvas.height).data;
  let hash = 0;
  for (let i = 0; i < data.length; i++) hash = (Math.imul(hash, 31) + data[i]) >>> 0;
  return hash;
}"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(url: str, server: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the demo server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:  # any HTTP answer will do; the page itself would start a kernel
            urllib.request.urlopen(url + "voila/static/", timeout=5).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(1)
    pytest.fail(f"the demo server did not answer {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    """``python -m rsd_mini demo``'s Voilà server on a free port; stopped (with its kernels) at
    the end, whatever happened."""
    chromium_path()  # skip before starting a server that nothing would visit
    port = _free_port()
    log = tmp_path_factory.mktemp("demo") / "voila.log"
    env = dict(os.environ, OMP_NUM_THREADS="1", **{demo.MAX_SIDE_VARIABLE: "32"})
    with log.open("w") as output:
        server = subprocess.Popen(demo.voila_command(port, open_browser=False), stdout=output,
                                  stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_until_serving(url, server, log)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # Voilà and the kernels it started, nothing else
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _hash(page, selector: str, x0: float = 0.0, x1: float = 1.0):
    return page.evaluate(PIXEL_HASH, [selector, x0, x1])


def _wait_for_text(page, selector: str, text: str) -> None:
    page.locator(selector).filter(has_text=text).wait_for(timeout=UPDATE_TIMEOUT_MS)


def _wait_for_pixels(page, selector: str, old, x0: float = 0.0, x1: float = 1.0):
    """The new hash of the region once the image shows something else than ``old``."""
    page.wait_for_function(f"(args) => {{ const h = ({PIXEL_HASH})(args); return h !== null && h !== {old}; }}",
                           arg=[selector, x0, x1], timeout=UPDATE_TIMEOUT_MS)
    return _hash(page, selector, x0, x1)


def _press(page, css_class: str, key: str) -> None:
    """A key on a slider's handle, as a keyboard user moves it (Home: minimum, End: maximum)."""
    page.locator(f".{css_class} .noUi-handle").focus()
    page.keyboard.press(key)


def test_demo_page_in_chromium(demo_url, tmp_path):
    upload = tmp_path / "upload.png"
    pixels = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(upload)
    with chromium_context() as browser:
        page = browser.new_page()
        errors, remote = watch_console(page), []
        # Voilà's lab template links Font Awesome from a CDN, although its own bundle carries the
        # same stylesheet (5.15.4): answered empty here, as offline. Any other remote request fails.
        page.route(FONT_AWESOME_CDN, lambda route: route.fulfill(status=200, content_type="text/css", body=""))
        page.on("request", lambda request: remote.append(request.url)
                if not request.url.startswith((demo_url, "data:", "blob:", "ws://127.0.0.1"))
                and not request.url.startswith(FONT_AWESOME_CDN[:-2]) else None)
        page.goto(demo_url, timeout=PAGE_TIMEOUT_MS)
        # 1. The widget renders: both images drawn, the timings of the 15-step teacher and seed 0.
        page.wait_for_function("() => { const i = document.querySelector('img.rsd-full'); "
                               "return i && i.complete && i.naturalWidth > 0; }", timeout=PAGE_TIMEOUT_MS)
        _wait_for_text(page, ".rsd-timings", "teacher (15 calls)")
        assert "seed 0" in page.inner_text(".rsd-timings")
        assert page.evaluate("document.querySelector('img.rsd-detail').naturalWidth") > 0
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        # 2. New seed: the student (right of the swipe at 50 %) changes, bicubic (left) does not.
        bicubic, student = _hash(page, "img.rsd-full", 0, 0.45), _hash(page, "img.rsd-full", 0.55, 1)
        page.click("button.rsd-new-seed")
        _wait_for_text(page, ".rsd-timings", "seed 1")
        assert _wait_for_pixels(page, "img.rsd-full", student, 0.55, 1) != student
        assert _hash(page, "img.rsd-full", 0, 0.45) == bicubic
        # 3. Swipe to the right end: the whole image is the left method (bicubic).
        right_half = _hash(page, "img.rsd-full", 0.55, 1)
        _press(page, "rsd-swipe", "End")
        assert _wait_for_pixels(page, "img.rsd-full", right_half, 0.55, 1) != right_half
        assert _hash(page, "img.rsd-full", 0, 0.45) == bicubic
        # 4. One teacher step instead of fifteen: the timing line says so.
        _press(page, "rsd-steps", "Home")
        _wait_for_text(page, ".rsd-timings", "teacher (1 call)")
        # 5. Upload a PNG: the status names it, and the images show it (56×40 → LR 14×10 → 56×40).
        before = _hash(page, "img.rsd-full")
        with page.expect_file_chooser() as chooser:  # the button opens the system's file dialog
            page.click("button.rsd-upload")
        chooser.value.set_files(str(upload))
        _wait_for_text(page, ".rsd-status", "upload.png: 56×40 → LR input 14×10")
        _wait_for_pixels(page, "img.rsd-full", before)
        assert "56×40 pixels" in page.inner_text("body")
        page.screenshot(path=str(tmp_path / "after_upload.png"), full_page=True)
    assert not errors, "\n".join(errors)
    assert not remote, f"requests beyond the local server: {remote}"


def test_voila_command_serves_the_page_on_localhost_only():
    command = demo.voila_command(8899, open_browser=False)
    assert command[1:4] == ["-m", "voila", str(demo.DEMO_PAGE)] and demo.DEMO_PAGE.is_file()
    assert {"--port=8899", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0", "--no-browser"} <= set(command)
    assert all(f"--VoilaConfiguration.extension_allowlist={name}" in command for name in demo.WIDGET_EXTENSIONS)
    assert "--no-browser" not in demo.voila_command(8899, open_browser=True)


def test_demo_arguments_and_their_errors(capsys):
    parser = argparse.ArgumentParser()
    demo.add_demo_arguments(parser)
    args = parser.parse_args([])
    assert (args.port, args.no_browser, args.max_side) == (demo.DEFAULT_PORT, False, DEFAULT_MAX_SIDE)
    assert parser.parse_args(["--port", "9000", "--no-browser", "--max-side", "64"]).max_side == 64
    for bad in (["--port", "0"], ["--port", "70000"], ["--max-side", "-3"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
        assert f"{bad[0]}={bad[1]!r}: expected an integer" in capsys.readouterr().err


def test_demo_app_reads_its_cap_from_the_environment(monkeypatch):
    monkeypatch.setenv(demo.MAX_SIDE_VARIABLE, "48")
    assert demo.max_side_from_environment() == 48
    monkeypatch.setenv(demo.MAX_SIDE_VARIABLE, "big")
    with pytest.raises(ValueError, match="RSD_MINI_DEMO_MAX_SIDE='big'"):
        demo.max_side_from_environment()
    lq, hr = demo.example_image(0)
    assert lq.shape[-1] * 4 == hr.shape[-1] and -1 <= float(lq.min()) and float(lq.max()) <= 1
    with pytest.raises(ValueError, match="index=-1"):
        demo.example_image(-1)
