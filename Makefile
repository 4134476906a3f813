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

.PHONY: setup reproduce ship figures test unit notebooks benchmark clean

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
	OMP_NUM_THREADS=1 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile tests notebooks \
	    --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

unit: setup
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile tests

notebooks: setup
	$(PY) -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks

benchmark: setup
	$(PY) benchmarks/train_step.py

clean:
	rm -rf $(VENV) runs
