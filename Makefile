# The README's two commands: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Every install below runs under the lock: exact versions for everything the `dev` extra (and so
# `train`) pulls in, tested by CI, so a fresh machine gets what CI passed with. pyproject.toml keeps
# its open ranges for library users. torch comes pinned to 2.13.0+cpu, the CPU wheel on this machine
# kind's disk (pip's find-links /opt/wheels): a plain `torch` would pull a multi-GB CUDA build.
LOCK := requirements/constraints.txt

# `make lock` regenerates $(LOCK) from pyproject.toml + requirements/constraints.in with uv (a pinned
# release, in its own venv). Run it after changing a dependency in pyproject.toml or constraints.in,
# then commit $(LOCK) with that change. Versions already in $(LOCK) are kept where they still fit;
# `make lock UPGRADE=1` moves everything to the newest releases (then run `make test` before
# committing). The lock is for CI's machine kind: CPython 3.11.7, x86_64 Linux (glibc 2.36).
# The `ray` extra is not locked (make never installs it).
UV_VERSION := 0.13.9
LOCK_VENV := .venv-lock
UV_COMPILE := uv pip compile pyproject.toml requirements/constraints.in --extra dev \
	--python-version 3.11.7 --python-platform x86_64-manylinux_2_36 \
	--find-links /opt/wheels \
	--extra-index-url file:///opt/pypi/simple --extra-index-url file:///opt/pypi-more/simple \
	--index-strategy unsafe-best-match -o $(LOCK)

.PHONY: demo test lint bench clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c $(LOCK) --upgrade pip

# torch first, so that nothing can ask for it before the CPU wheel is in.
$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet -c $(LOCK) torch
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[train]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml $(LOCK) $(VENV)/.installed
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/embedtune demo --output runs/demo

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src
	$(BIN)/lint-imports

# Tests run in one worker per core (at most 4), one torch thread each (tests/conftest.py): most
# tests are a single thread waiting on a process start or a tiny model, so on 2 cores this halves
# the time. `pytest -n 0` runs them in one process, for debugging.
test: lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n auto --maxprocesses 4

bench: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/python bench/eval_shared.py

$(LOCK_VENV)/bin/uv:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet uv==$(UV_VERSION)

lock: | $(LOCK_VENV)/bin/uv
	$(LOCK_VENV)/bin/$(UV_COMPILE) --quiet $(if $(UPGRADE),--upgrade) --custom-compile-command 'make lock  # $(UV_COMPILE)'

clean:
	rm -rf $(VENV) $(LOCK_VENV) runs .pytest_cache .ruff_cache .mypy_cache
