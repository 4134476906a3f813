"""The classroom demo page: the shipped tiny teacher (15 steps) against its one-step RSD student.

``make demo`` or ``python -m rsd_mini demo [--port 8866] [--no-browser] [--max-side 128]``
serves :data:`DEMO_PAGE` with Voilà on 127.0.0.1 only: a page that shows the widget of
:func:`rsd_mini.widgets.comparison_widget` and hides the code. It has the swipe between methods,
the zoom, the new-seed button, the teacher steps slider, the wall time of each method and an
upload of the user's own image (any size: padded and tiled by :func:`rsd_mini.upscale.upscale`).
The page runs :func:`demo_app`, which loads ``rsd_mini.load("tiny-teacher")`` and
``"tiny-student"`` and starts on held-out crop 0 of the mini validation set (notebook 06's).

Voilà runs the page's notebook in a fresh kernel for each visitor; the page's options reach that
kernel through the environment variable :data:`MAX_SIDE_VARIABLE`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads in seconds: not needed to start the server
    from torch import Tensor

#: The notebook Voilà serves (two cells: a title and ``demo_app()``).
DEMO_PAGE = Path(__file__).with_name("demo_page.ipynb")
#: Voilà's own default port.
DEFAULT_PORT = 8866
#: The JupyterLab extensions the page loads (Voilà's widget manager and ipywidgets' controls);
#: others installed in the environment (jupytext, nbgrader, ...) fail outside JupyterLab and
#: fill the browser console with errors.
WIDGET_EXTENSIONS = ("@voila-dashboards/widgets-manager8", "@jupyter-widgets/jupyterlab-manager")
#: Carries ``--max-side`` to the page's kernel.
MAX_SIDE_VARIABLE = "RSD_MINI_DEMO_MAX_SIDE"

INTRODUCTION = """<h2>One step vs fifteen: the tiny RSD student against its ResShift teacher</h2>
<p>Both models were trained on this project's mini dataset (bicubic ×4) for minutes on a CPU
(<code>make reproduce</code>). Swipe between two methods, zoom into a square, draw a new seed for the
stochastic teacher and student (bicubic does not change), run the teacher for fewer steps, and
upload your own image. The student makes <b>one</b> network call, the teacher one per step.</p>"""


def example_image(index: int = 0) -> tuple[Tensor, Tensor]:
    """(lq, hr), each (1, 3, h, w) in [−1, 1]: held-out crop ``index`` of the tiny config's
    validation set, as notebook 06 and ``make reproduce`` evaluate it."""
    from rsd_mini.config import load_config
    from rsd_mini.reproduce import validation_batch

    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"index={index!r}: expected a crop number ≥ 0")
    batch = validation_batch(load_config("tiny"), limit=index + 1)
    if index >= len(batch["lq"]):
        raise ValueError(f"index={index}: expected a crop number below {len(batch['lq'])}")
    return batch["lq"][index:index + 1], batch["hr"][index:index + 1]


def max_side_from_environment() -> int:
    """The page's LR side cap: :data:`MAX_SIDE_VARIABLE` if set, else the widget's default."""
    from rsd_mini.widgets import DEFAULT_MAX_SIDE

    text = os.environ.get(MAX_SIDE_VARIABLE, str(DEFAULT_MAX_SIDE))
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{MAX_SIDE_VARIABLE}={text!r}: expected a positive number of LR pixels")
    return int(text)


def demo_app(teacher: str = "tiny-teacher", student: str = "tiny-student", max_side: int | None = None):
    """The demo page's widget: :data:`INTRODUCTION` above the comparison of the shipped models
    (:func:`rsd_mini.widgets.comparison_widget` with the upload)."""
    import ipywidgets

    from rsd_mini.hub import load
    from rsd_mini.widgets import comparison_widget

    lq, hr = example_image(0)
    widget = comparison_widget(lq, hr, load(teacher), load(student), upload=True,
                               max_side=max_side or max_side_from_environment())
    return ipywidgets.VBox([ipywidgets.HTML(INTRODUCTION), widget])


def voila_command(port: int, open_browser: bool, page: Path = DEMO_PAGE) -> list[str]:
    """The Voilà server command for ``page`` on 127.0.0.1:``port`` (no other port tried)."""
    command = [sys.executable, "-m", "voila", str(page), f"--port={port}", "--Voila.ip=127.0.0.1",
               "--Voila.port_retries=0", "--theme=light", "--show_tracebacks=True",
               *(f"--VoilaConfiguration.extension_allowlist={name}" for name in WIDGET_EXTENSIONS)]
    return command if open_browser else [*command, "--no-browser"]


def _positive(name: str, maximum: int | None = None):
    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < 1 or (maximum is not None and int(text) > maximum):
            upper = f" ≤ {maximum}" if maximum else ""
            raise argparse.ArgumentTypeError(f"{name}={text!r}: expected an integer ≥ 1{upper}")
        return int(text)
    return parse


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m rsd_mini demo``."""
    from rsd_mini.widgets import DEFAULT_MAX_SIDE

    parser.add_argument("--port", type=_positive("--port", 65535), default=DEFAULT_PORT,
                        help=f"port on 127.0.0.1 (default {DEFAULT_PORT})")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument("--max-side", type=_positive("--max-side"), default=DEFAULT_MAX_SIDE,
                        help=f"longest LR side of an uploaded image; larger ones are resized "
                             f"(default {DEFAULT_MAX_SIDE}: the 15-step teacher then takes tens of "
                             "seconds on a laptop CPU)")


def run_demo(args: argparse.Namespace) -> int:
    """Serve the demo page until Ctrl-C; the exit status of the Voilà server."""
    env = dict(os.environ, **{MAX_SIDE_VARIABLE: str(args.max_side)})
    print(f"demo page: http://127.0.0.1:{args.port}/ (Ctrl-C stops the server)", flush=True)
    server = subprocess.Popen(voila_command(args.port, not args.no_browser), env=env)
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()
        return server.wait()
