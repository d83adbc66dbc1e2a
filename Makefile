# `make train` and `make test` each create .venv when missing and install into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: train test test-fast soak notebooks lint bench clean export-deps

# jax2onnx's own requirements pin orbax-checkpoint below robojax's, so it goes in without them;
# what it needs at conversion time (onnx, onnx-ir, onnxruntime, onnxslim) comes from the
# export extra.
JAX2ONNX := jax2onnx==0.17.1
# The tests' MuJoCo Playground, without warp-lang (see the dev extra in pyproject.toml).
PLAYGROUND := playground>=0.0.5

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# The teleop page's browser tests drive Debian's chromium through Playwright (Playwright's own
# browser download is not used).
CHROMIUM_INSTALL := export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)

$(VENV)/.installed-dev: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps "$(JAX2ONNX)" "$(PLAYGROUND)"
	@if ! command -v chromium >/dev/null; then \
	  if ! command -v apt-get >/dev/null; then echo "note: no chromium and no apt-get: the browser tests will be skipped"; \
	  elif [ "$$(id -u)" = 0 ]; then $(CHROMIUM_INSTALL); \
	  else sudo sh -c '$(CHROMIUM_INSTALL)'; fi; \
	fi
	touch $@ $(VENV)/.installed

export-deps: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[export]"
	$(BIN)/pip install --quiet --no-deps "$(JAX2ONNX)"

train: $(VENV)/.installed
	$(BIN)/robojax train $(ARGS)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q --durations=15 -m "not soak" $(ARGS)

# Everything but the tests marked slow (learning, kill-and-resume, notebook and stall runs,
# long compiles): under 3 minutes on 2 cores.
test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q --durations=15 -m "not slow and not soak" $(ARGS)

# 20 SIGKILLs of a training run at random moments, resumed each time, and 20 corruptions of
# checkpoint bytes (a few minutes); prints each tally.
soak: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -s -m soak tests/test_soak.py $(ARGS)

# Execute the notebooks at their full budgets and store their outputs (plots, numbers) in them.
notebooks: $(VENV)/.installed-dev
	cd experiments/notebooks && MUJOCO_GL=egl ../../$(BIN)/jupyter-execute --inplace --timeout=-1 *.ipynb

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

bench: $(VENV)/.installed
	$(BIN)/python experiments/bench/env_throughput.py

clean:
	rm -rf $(VENV) runs
