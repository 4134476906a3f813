# rsd-mini: two commands on a fresh machine.
#   make reproduce   set up .venv, then run the tiny end-to-end reproduction (figures + metrics)
#   make test        set up .venv, then run every unit test and every notebook under nbval
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first, pinned: on the project's CPU machines these wheels are on disk; elsewhere pip
# downloads them (override e.g. TORCH_SPEC="torch torchvision --index-url ..." for a CPU build).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PYTEST_WORKERS ?= 2

.PHONY: setup reproduce ship figures test unit notebooks book demo student benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

reproduce: setup
	$(PY) -m rsd_mini reproduce --preset tiny --out runs/tiny --figures figures

# Export runs/tiny (after make reproduce) to the shipped data/checkpoints/tiny_*.pt.
ship: setup
	$(PY) -m rsd_mini ship --run runs/tiny

# Every figures/tiny_* and figures/tiny_metrics.json from the shipped checkpoints (no training).
figures: setup
	$(PY) -m rsd_mini figures --figures figures

test: setup
	@# one BLAS thread per pytest worker (and notebook kernel): 2 workers on 2 cores
	@# notebooks/ holds both editions: the instructor one (NN_slug.ipynb, every checker correct)
	@# and the student one (student/NN_slug.ipynb, every checker not attempted)
	OMP_NUM_THREADS=1 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile tests notebooks notebooks/student \
	    --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

unit: setup
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile tests

# The student edition notebooks/student/NN_slug.ipynb: the sources with nbgrader's solution
# regions replaced by `raise NotImplementedError()` and no outputs (commit the result).
student: setup
	$(PY) -m rsd_mini.course --student

# Execute notebooks/NN_*.ipynb in place from their .py sources (fast mode) and keep the outputs:
# PNG figures, no widget state, <= 3 MB each; NB="03 05" for some only (rsd_mini/publish.py).
notebooks: setup
	$(PY) -m rsd_mini.publish notebooks $(NB)

# The static HTML course from the committed notebooks, offline, nothing executed: build/book/_build/html.
book: setup
	$(PY) -m rsd_mini.publish book --out build/book

# The teacher-vs-student page for a projector, Voila on http://127.0.0.1:$(PORT)/ (Ctrl-C stops it).
PORT ?= 8866
demo: setup
	$(PY) -m rsd_mini demo --port $(PORT)

benchmark: setup
	$(PY) benchmarks/train_step.py

clean:
	rm -rf $(VENV) runs
