"""Every notebook source ``notebooks/NN_slug.py`` (jupytext percent) has a paired ``.ipynb`` with
the same cells (STYLE.md: the ``.py`` is the source of truth), and the ``.ipynb`` is committed
with the outputs of one fast-mode run from top to bottom, so a reader on GitHub sees every
figure: ``make notebooks`` writes them (rsd_mini/publish.py), figures as PNG, no widget state,
at most 3 MB each."""

from pathlib import Path

import jupytext
import pytest

from rsd_mini.publish import MAX_NOTEBOOK_BYTES, WIDGET_VIEW

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SCRIPTS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
SYNC_HINT = "run: make notebooks (or .venv/bin/jupytext --sync {} for the code alone)"


def _cells(path: Path) -> list[tuple[str, str]]:
    notebook = jupytext.read(path)
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells if cell.source.strip()]


def test_there_are_notebooks():
    assert SCRIPTS, f"no notebooks/NN_slug.py found in {NOTEBOOKS}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_and_notebook_have_the_same_cells(script):
    notebook = script.with_suffix(".ipynb")
    assert notebook.is_file(), f"{notebook.name} is missing; {SYNC_HINT.format(script.relative_to(NOTEBOOKS.parent))}"
    script_cells, notebook_cells = _cells(script), _cells(notebook)
    for index, (ours, theirs) in enumerate(zip(script_cells, notebook_cells)):
        assert ours == theirs, (f"{script.name} and {notebook.name} differ at cell {index}; "
                                f"{SYNC_HINT.format(script.relative_to(NOTEBOOKS.parent))}")
    assert len(script_cells) == len(notebook_cells), f"{script.name}: cell counts differ"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_declares_the_pairing(script):
    formats = jupytext.read(script).metadata.get("jupytext", {}).get("formats", "")
    assert "ipynb" in formats and "py:percent" in formats, f"{script.name}: formats={formats!r}"


@pytest.mark.parametrize("notebook", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_notebook_has_a_script(notebook):
    assert notebook.with_suffix(".py").is_file(), f"{notebook.name} has no source script {notebook.stem}.py"


@pytest.mark.parametrize("notebook", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_notebook_is_committed_with_its_outputs(notebook):
    """Executed top to bottom in one kernel (execution counts 1, 2, ...; cells that print nothing
    keep empty outputs), without errors, with its figures as PNG and no widget state."""
    saved = jupytext.read(notebook)
    code = [cell for cell in saved.cells if cell.cell_type == "code"]
    counts = [cell.get("execution_count") for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{notebook.name}: execution counts {counts}: expected 1..{len(code)} (one fast-mode run); run: make notebooks")
    outputs = [output for cell in code for output in cell.get("outputs", [])]
    errors = [output.get("ename") for output in outputs if output.get("output_type") == "error"]
    assert not errors, f"{notebook.name}: saved with errors {errors}; fix the notebook, then make notebooks"
    assert any("image/png" in output.get("data", {}) for output in outputs), f"{notebook.name}: no PNG figure"
    assert not any(WIDGET_VIEW in output.get("data", {}) for output in outputs), f"{notebook.name}: widget views kept"
    assert "widgets" not in saved.metadata, f"{notebook.name}: widget state kept"
    size = notebook.stat().st_size
    assert size <= MAX_NOTEBOOK_BYTES, f"{notebook.name}: {size / 2 ** 20:.1f} MB > 3 MB; lower publish.FIGURE_DPI"
