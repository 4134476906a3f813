"""The committed student edition ``notebooks/student/`` is what ``make student`` builds from the
sources today, and none of the solutions in the sources reaches it; every exercise's answer is
marked and checked (issue #14). Running both editions is nbval's job (``make test``)."""

import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from rsd_mini import course, exercises

SOURCES = course.sources()
STUDENT = course.NOTEBOOKS / "student"
REBUILD = "run: make student (python -m rsd_mini.course --student) and commit notebooks/student/"
CHECK_CALL = re.compile(r"exercises\.(check_\w+)\(")


def _solution_lines(source: Path) -> set[str]:
    """The non-blank lines between the solution markers of ``source``, stripped, less those that
    the source also gives outside the markers (e.g. a sampler that section 2 shows)."""
    inside_lines, outside_lines, inside = set(), set(), False
    for line in source.read_text().splitlines():
        if course.BEGIN in line or course.END in line:
            inside = course.BEGIN in line
        elif line.strip():
            (inside_lines if inside else outside_lines).add(line.strip())
    return inside_lines - outside_lines


def _code_cells(notebook) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_the_committed_student_edition_is_a_fresh_build(source):
    committed = STUDENT / f"{source.stem}.ipynb"
    assert committed.is_file(), f"{committed} is missing; {REBUILD}"
    fresh, ours = course.student_notebook(source), nbformat.read(committed, as_version=4)
    assert len(ours.cells) == len(fresh.cells), f"{committed.name}: {len(ours.cells)} cells, a build has {len(fresh.cells)}; {REBUILD}"
    for index, (a, b) in enumerate(zip(ours.cells, fresh.cells)):
        assert (a.cell_type, a.source) == (b.cell_type, b.source), f"{committed.name}, cell {index} differs; {REBUILD}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_solution_line_reaches_the_student_edition(source):
    student = nbformat.read(STUDENT / f"{source.stem}.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in student.cells)
    student_lines = {line.strip() for line in text.splitlines()}
    solution = _solution_lines(source)
    assert len(solution) >= 3, f"{source.stem}: only {len(solution)} solution lines of its own"
    leaked = sorted(solution & student_lines)
    assert not leaked, f"{source.stem}: solution lines in the student edition: {leaked}"
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_the_student_edition_has_no_outputs_and_a_stub_per_answer(source):
    student = nbformat.read(STUDENT / f"{source.stem}.ipynb", as_version=4)
    code = [cell for cell in student.cells if cell.cell_type == "code"]
    assert not any(cell.get("outputs") or cell.get("execution_count") for cell in code)
    stubs = sum(cell.source.count("raise NotImplementedError()") for cell in code)
    assert stubs == source.read_text().count(course.BEGIN), f"{source.stem}: {stubs} stubs"
    assert "jupytext" not in student.metadata, "the student edition must not pair with a script"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_exercise_has_a_marked_answer_and_a_checker(source):
    """≥ 3 exercises per notebook; each marked answer is complete (no stub in the instructor
    edition) and the next code cell grades it with a checker of rsd_mini.exercises."""
    cells = _code_cells(jupytext.read(source))
    answers = [i for i, cell in enumerate(cells) if course.BEGIN in cell]
    assert len(answers) >= 3, f"{source.stem}: {len(answers)} exercises, expected at least 3"
    for i in answers:
        solution = cells[i].split(course.BEGIN, 1)[1].split(course.END, 1)[0]
        assert solution.strip() and "NotImplementedError" not in solution, f"{source.stem}: empty answer in {cells[i][:60]!r}"
        checked = CHECK_CALL.findall(cells[i + 1]) if i + 1 < len(cells) else []
        assert len(checked) == 1 and hasattr(exercises, checked[0]), (
            f"{source.stem}: the cell after {cells[i][:60]!r} must call one rsd_mini.exercises.check_*")


def test_every_checker_grades_one_notebook_exercise():
    used = [name for source in SOURCES for cell in _code_cells(jupytext.read(source))
            for name in CHECK_CALL.findall(cell)]
    defined = sorted(name for name in dir(exercises) if name.startswith("check_"))
    assert sorted(used) == defined


def test_unmatched_markers_are_reported_with_the_source(tmp_path):
    source = tmp_path / "01_broken.py"
    source.write_text("# %%\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n")
    with pytest.raises(RuntimeError, match="01_broken.py.*no end solution"):
        course.student_notebook(source)


def test_the_builder_writes_every_source_and_refuses_an_empty_folder(tmp_path):
    (tmp_path / "01_demo.py").write_text("# %% [markdown]\n# Demo\n\n# %%\ndef f():\n    ### BEGIN SOLUTION\n"
                                         "    return 42\n    ### END SOLUTION\n")
    course.main(["--student", "--notebooks", str(tmp_path), "--out", str(tmp_path / "out")])
    built = nbformat.read(tmp_path / "out" / "01_demo.ipynb", as_version=4)
    assert "return 42" not in built.cells[-1].source and "raise NotImplementedError()" in built.cells[-1].source
    with pytest.raises(FileNotFoundError, match="notebooks=.*no NN_slug.py"):
        course.sources(tmp_path / "out")
    with pytest.raises(SystemExit):
        course.main([])
