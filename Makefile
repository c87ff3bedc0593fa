# dmst-eval — make targets. Everything runs in .venv, created by `make setup`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNEL_STAMP := $(VENV)/.kernel
SEEDS ?=
PYTEST_ARGS ?=

.PHONY: setup brief briefs test test-fast test-slow lab data dictionary bench clean

setup: $(STAMP) $(KERNEL_STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip uv
	@$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -e '.[dev,lab]'
	@touch $(STAMP)

$(KERNEL_STAMP): $(STAMP)
	@$(PY) -m ipykernel install --sys-prefix --name dmst-eval --display-name "Python (dmst-eval)" >/dev/null
	@touch $(KERNEL_STAMP)

# The default evaluation brief from the embedded synthetic data (reports/).
brief: setup
	@$(VENV)/bin/dmst-eval brief

# Statewide + the six regions, in parallel.
briefs: setup
	@$(VENV)/bin/dmst-eval briefs

# Unit tests (slow checks with a reduced seed count) and nbval on the notebooks.
test: setup
	@JUPYTER_PATH=$(CURDIR)/$(VENV)/share/jupyter $(PY) -m pytest -q -n 2 --dist loadgroup --doctest-modules $(PYTEST_ARGS) tests dmst_eval
	@JUPYTER_PATH=$(CURDIR)/$(VENV)/share/jupyter $(PY) -m pytest -q --nbval-lax --nbval-current-env notebooks $(PYTEST_ARGS)

# The quick loop while coding: every test not marked slow (no notebooks, no wheel build).
test-fast: setup
	@JUPYTER_PATH=$(CURDIR)/$(VENV)/share/jupyter $(PY) -m pytest -q -n 2 --dist loadgroup --doctest-modules -m "not slow" $(PYTEST_ARGS) tests dmst_eval

# Full-count coverage/power checks (the figures docs/validation.md reports).
test-slow: setup
	@DMST_EVAL_FULL_SEEDS=1 $(PY) -m pytest -q -n 2 -m slow $(PYTEST_ARGS) tests

lab: setup
	@JUPYTER_PATH=$(CURDIR)/$(VENV)/share/jupyter $(VENV)/bin/jupyter lab notebooks

# Regenerate the embedded synthetic dataset bit-for-bit from its config.
data: setup
	@$(VENV)/bin/dmst-eval generate --config data/synthetic/config.yaml --out data/synthetic

dictionary: setup
	@$(VENV)/bin/dmst-eval dictionary

bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf reports/*.html reports/*.ipynb .pytest_cache
