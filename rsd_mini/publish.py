"""The course readable without running it: notebooks committed with their outputs, and an HTML book.

``make notebooks`` (``python -m rsd_mini.publish notebooks [NN ...]``) regenerates each
``notebooks/NN_slug.ipynb`` from its jupytext source ``NN_slug.py`` (``jupytext --to ipynb
--update``), executes it in fast mode with nbclient in the notebooks folder (as Jupyter does)
and saves it with its outputs:

* figures as PNG at :data:`FIGURE_DPI` (through ``MATPLOTLIBRC``), re-encoded without alpha by
  :func:`compact_figures`; a figure still above :data:`MAX_FIGURE_BYTES` (grids of noisy images,
  which PNG barely compresses) is stored with a 256-colour palette, about a third of the size,
  so each file stays under :data:`MAX_NOTEBOOK_BYTES` (the issue's 3 MB);
* no widget state: :func:`strip_widgets` drops ``metadata.widgets`` and each output's widget
  view, leaving a one-line text fallback; every interactive cell in these notebooks is followed
  by a static figure of the same thing at preset values (STYLE.md), which GitHub shows;
* no timing metadata, so rerunning changes only what the code prints.

``make book`` (``python -m rsd_mini.publish book``) builds a static HTML site from the committed
notebooks with Jupyter Book 1 (Sphinx + MyST-NB; its 2.x line is a different, Node-based engine),
without executing anything and without the network: MathJax is served from the build folder
(``sphinx-mathjax-offline``). Why Jupyter Book over mkdocs-jupyter: Sphinx renders the notebooks'
LaTeX and outputs natively, builds a search index offline, and its theme ships all its assets.
The sources are staged under ``OUT/src`` (the config in ``book/`` and copies of the notebooks, as
Sphinx reads only files below its source folder); the site is ``OUT/_build/html/index.html``.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BOOK_CONFIG = ROOT / "book"
#: Resolution of the committed figures (matplotlib's default is 100).
FIGURE_DPI = 80
#: Size budget of one committed notebook (issue #11: ≤ 3 MB).
MAX_NOTEBOOK_BYTES = 3 * 2 ** 20
#: Above this, a committed figure is stored with a 256-colour palette (:func:`compact_figures`).
MAX_FIGURE_BYTES = 256 * 2 ** 10
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: What a widget output shows outside a live kernel (GitHub, the book).
WIDGET_FALLBACK = "[interactive widget: run the notebook to use it]"


def notebook_sources(names: list[str] | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """The ``NN_slug.py`` sources, all or those whose file name starts with one of ``names``."""
    sources = sorted(folder.glob("[0-9][0-9]_*.py"))
    if not names:
        return sources
    chosen = [s for s in sources if any(s.name.startswith(name) for name in names)]
    unknown = [name for name in names if not any(s.name.startswith(name) for s in sources)]
    if unknown:
        raise ValueError(f"notebooks {unknown}: expected prefixes of {[s.name for s in sources]}")
    return chosen


def strip_widgets(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop the widget state (``metadata.widgets``) and replace each widget view output by
    :data:`WIDGET_FALLBACK` (its text repr lists every control's traits); in place, returned."""
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                del data[WIDGET_VIEW]
                data["text/plain"] = WIDGET_FALLBACK
    return notebook


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="png", optimize=True)
    return buffer.getvalue()


def compact_png(data: bytes) -> bytes:
    """A figure's PNG without alpha (figures have white backgrounds), losslessly recompressed,
    or with an adaptive 256-colour palette (median cut, no dithering) if still above
    :data:`MAX_FIGURE_BYTES`; the original bytes if neither is smaller."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
    compact = _png(rgb)
    if len(compact) > MAX_FIGURE_BYTES:
        compact = _png(rgb.quantize(256, dither=Image.Dither.NONE))
    return compact if len(compact) < len(data) else data


def compact_figures(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """:func:`compact_png` on every PNG output; in place, returned."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                png = compact_png(base64.b64decode(data["image/png"]))
                data["image/png"] = base64.b64encode(png).decode("ascii")
    return notebook


def _matplotlibrc(folder: Path) -> Path:
    path = folder / "matplotlibrc"
    path.write_text(f"figure.dpi: {FIGURE_DPI}\nsavefig.dpi: figure\n")
    return path


def execute_notebook(source: Path, timeout: int = 900) -> tuple[Path, float]:
    """Regenerate ``source``'s .ipynb from it, execute it (fast mode) and save it with its
    outputs, widgets stripped; (the .ipynb, seconds). A failing cell raises and writes nothing."""
    from nbclient import NotebookClient

    target = source.with_suffix(".ipynb")
    subprocess.run([sys.executable, "-m", "jupytext", "--to", "ipynb", "--update", "--quiet", str(source)],
                   check=True)
    notebook = nbformat.read(target, as_version=4)
    environment = {key: value for key, value in os.environ.items() if key != "RSD_MINI_FULL"}
    with tempfile.TemporaryDirectory(prefix="rsd-mini-publish-") as folder:
        environment["MATPLOTLIBRC"] = str(_matplotlibrc(Path(folder)))
        # --matplotlib=inline: ipykernel 7 registers IPython's PNG formatter for Figure objects
        # only once pyplot is imported, and the library draws without pyplot (rsd_mini.viz).
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                                extra_arguments=["--matplotlib=inline"],
                                resources={"metadata": {"path": str(source.parent)}})
        start = time.perf_counter()
        client.execute(env=environment)
        seconds = time.perf_counter() - start
    nbformat.write(compact_figures(strip_widgets(notebook)), target)
    return target, seconds


def run_notebooks(names: list[str] | None = None) -> int:
    """``make notebooks``: execute and save each notebook; print time and size; 1 if one is over
    :data:`MAX_NOTEBOOK_BYTES`."""
    over = []
    for source in notebook_sources(names):
        target, seconds = execute_notebook(source)
        size = target.stat().st_size
        print(f"{target.relative_to(ROOT)}: {seconds:.0f} s, {size / 2 ** 20:.2f} MB", flush=True)
        if size > MAX_NOTEBOOK_BYTES:
            over.append(target.name)
    if over:
        print(f"over the {MAX_NOTEBOOK_BYTES / 2 ** 20:.0f} MB budget: {over}; lower FIGURE_DPI or the figures",
              file=sys.stderr)
    return int(bool(over))


def table_of_contents(notebooks: list[Path]) -> str:
    """Jupyter Book's ``_toc.yml``: the introduction, then the notebooks in their numbered order."""
    chapters = "".join(f"  - file: notebooks/{path.stem}\n" for path in notebooks)
    return f"format: jb-book\nroot: intro\nchapters:\n{chapters}"


def stage_book(out: Path) -> Path:
    """``OUT/src``: the config of ``book/``, copies of the committed notebooks and their table of
    contents; emptied first."""
    source = out / "src"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(BOOK_CONFIG, source)
    notebooks = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks/NN_slug.ipynb in {NOTEBOOKS}; run make notebooks")
    (source / "notebooks").mkdir()
    for path in notebooks:
        shutil.copy2(path, source / "notebooks" / path.name)
    (source / "_toc.yml").write_text(table_of_contents(notebooks))
    return source


def build_book(out: Path) -> Path:
    """Stage and build the book (no execution); the path of its ``index.html``."""
    source = stage_book(out)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    subprocess.run([str(jupyter_book), "build", str(source), "--path-output", str(out), "--builder", "html",
                    "--warningiserror", "--keep-going", "--quiet"], check=True)
    return out / "_build" / "html" / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rsd_mini.publish", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    notebooks = commands.add_parser("notebooks", help="execute notebooks/NN_*.ipynb in place from their .py")
    notebooks.add_argument("names", nargs="*", metavar="NN", help="only these (file name prefixes, e.g. 03)")
    book = commands.add_parser("book", help="build the static HTML course from the committed notebooks")
    book.add_argument("--out", type=Path, default=ROOT / "build" / "book", help="default: build/book")
    args = parser.parse_args(argv)
    if args.command == "notebooks":
        try:
            return run_notebooks(args.names)
        except ValueError as error:
            parser.error(str(error))
    print(f"book: {build_book(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
