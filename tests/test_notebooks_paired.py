"""Every notebook source ``notebooks/NN_slug.py`` (jupytext percent) has a paired ``.ipynb`` with
the same cells, and the ``.ipynb`` carries no outputs (STYLE.md: the ``.py`` is the source of
truth; the notebook is generated with ``jupytext --sync``)."""

from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SCRIPTS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
SYNC_HINT = "run: .venv/bin/jupytext --sync {}"


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
def test_notebook_has_a_script_and_no_outputs(notebook):
    assert notebook.with_suffix(".py").is_file(), f"{notebook.name} has no source script {notebook.stem}.py"
    code = [cell for cell in jupytext.read(notebook).cells if cell.cell_type == "code"]
    with_outputs = [i for i, cell in enumerate(code) if cell.get("outputs") or cell.get("execution_count")]
    assert not with_outputs, (f"{notebook.name}: code cells {with_outputs} carry outputs; clear them "
                              "(the notebook is committed without outputs)")
