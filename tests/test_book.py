"""``make notebooks`` and ``make book`` (rsd_mini/publish.py): notebooks executed with their outputs
and no widget state, and the static HTML course, opened page by page in headless Chromium."""

from __future__ import annotations

import base64
import io
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml
from PIL import Image

from headless import chromium_context, chromium_path, watch_console
from rsd_mini import publish

ROOT = Path(__file__).resolve().parents[1]


def _widget_notebook() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"m": {}}}}
    cell = nbformat.v4.new_code_cell("slider")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        publish.WIDGET_VIEW: {"model_id": "m", "version_major": 2, "version_minor": 0},
        "text/plain": "IntSlider(value=3, description='t', max=15, min=1, style=SliderStyle(...))"}),
        nbformat.v4.new_output("stream", name="stdout", text="kept\n")]
    notebook.cells = [cell]
    return notebook


def test_strip_widgets_keeps_a_text_fallback_and_no_state():
    notebook = publish.strip_widgets(_widget_notebook())
    assert "widgets" not in notebook.metadata
    widget, stream = notebook.cells[0].outputs
    assert widget.data == {"text/plain": publish.WIDGET_FALLBACK}
    assert stream.text == "kept\n"


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="png")
    return buffer.getvalue()


def test_compact_png_is_lossless_for_plots_and_paletted_only_for_large_noisy_figures():
    plot = np.full((200, 300, 4), 255, dtype=np.uint8)
    plot[100, :, :3] = 0  # a black line on white, opaque
    small = Image.open(io.BytesIO(publish.compact_png(_png(plot))))
    assert small.mode == "RGB" and np.array_equal(np.asarray(small), plot[..., :3])
    noise = np.random.default_rng(0).integers(0, 256, (400, 400, 4), dtype=np.uint8)
    noise[..., 3] = 255
    assert len(_png(noise[..., :3])) > publish.MAX_FIGURE_BYTES
    large = publish.compact_png(_png(noise))
    assert Image.open(io.BytesIO(large)).mode == "P" and len(large) < len(_png(noise[..., :3]))


def test_notebook_sources_and_table_of_contents():
    everything = publish.notebook_sources()
    assert everything and all(path.name[:2].isdigit() for path in everything)
    assert publish.notebook_sources(["01"]) == everything[:1]
    with pytest.raises(ValueError, match=r"notebooks \['99'\]: expected prefixes of"):
        publish.notebook_sources(["99"])
    toc = yaml.safe_load(publish.table_of_contents([Path("02_b.ipynb"), Path("01_a.ipynb")]))
    assert toc == {"format": "jb-book", "root": "intro",
                   "chapters": [{"file": "notebooks/02_b"}, {"file": "notebooks/01_a"}]}


def test_execute_notebook_saves_png_figures_at_the_set_dpi_and_no_widget_state(tmp_path):
    source = tmp_path / "01_example.py"
    source.write_text(textwrap.dedent("""\
        # %% [markdown]
        # # An example
        # %%
        import ipywidgets
        from matplotlib.figure import Figure
        fig = Figure(figsize=(4, 2))
        fig.add_subplot().plot([0, 1], [1, 0])
        fig
        # %%
        ipywidgets.IntSlider(value=3)
        # %%
        x = 1  # prints nothing
        """))
    target, seconds = publish.execute_notebook(source)
    notebook = nbformat.read(target, as_version=4)
    figure, widget, silent = [cell for cell in notebook.cells if cell.cell_type == "code"]
    png = Image.open(io.BytesIO(base64.b64decode(figure.outputs[0].data["image/png"])))
    assert png.width <= 4 * publish.FIGURE_DPI and png.height <= 2 * publish.FIGURE_DPI + 1
    assert widget.outputs[0].data == {"text/plain": publish.WIDGET_FALLBACK}
    assert silent.outputs == [] and silent.execution_count == 3
    assert "widgets" not in notebook.metadata and seconds > 0
    assert "execution" not in figure.metadata  # no timestamps: a rerun changes only what the code prints


def test_execute_notebook_reports_a_failing_cell_and_writes_nothing(tmp_path):
    source = tmp_path / "02_broken.py"
    source.write_text("# %%\nraise RuntimeError('cell 1 is broken')\n")
    with pytest.raises(Exception, match="cell 1 is broken"):
        publish.execute_notebook(source)
    assert nbformat.read(source.with_suffix(".ipynb"), as_version=4).cells[0].outputs == []


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    """The HTML course built from the committed notebooks (Jupyter Book, no execution)."""
    chromium_path()  # skip before a build that nothing would open
    return publish.build_book(tmp_path_factory.mktemp("book")).parent


def _png_outputs(notebook: Path) -> int:
    cells = nbformat.read(notebook, as_version=4).cells
    return sum("image/png" in output.get("data", {}) for cell in cells for output in cell.get("outputs", []))


def test_book_pages_load_every_image_offline_without_console_errors(book):
    pages = sorted(book.glob("*.html")) + sorted((book / "notebooks").glob("*.html"))
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert [p.stem for p in notebooks] == [p.stem for p in sorted((book / "notebooks").glob("*.html"))]
    with chromium_context() as browser:
        for path in pages:
            page = browser.new_page()
            errors, remote = watch_console(page), []
            page.on("request", lambda request: remote.append(request.url)
                    if not request.url.startswith(("file:", "data:", "blob:")) else None)
            page.goto(path.as_uri(), wait_until="load")
            if page.locator("script[src*='mathjax']").count():  # every formula typeset by the bundled MathJax
                page.wait_for_function("() => document.querySelectorAll('mjx-container').length >= "
                                       "document.querySelectorAll('.math').length", timeout=60_000)
            images = page.evaluate("Array.from(document.images).map(i => [i.src, i.complete && i.naturalWidth > 0])")
            broken = [src[:80] for src, loaded in images if not loaded]
            assert not broken, f"{path.name}: images not loaded: {broken}"
            assert not errors, f"{path.name}: " + "\n".join(errors)
            assert not remote, f"{path.name}: requests beyond the local files: {remote}"
            source = ROOT / "notebooks" / f"{path.stem}.ipynb"
            if source.is_file():
                assert len(images) >= _png_outputs(source), f"{path.name}: a figure of {source.name} is missing"
            page.close()
