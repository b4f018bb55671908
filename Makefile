# sikte-tui: `make run` and `make test` each first install whatever is missing.
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: bootstrap run test lint bench demo clean

bootstrap:
	@bash scripts/bootstrap.sh

# `make run ARGS="--pid 1234"` or `make run ARGS="-- ls -l"`; tracing needs root.
run: bootstrap
	@if [ "$$(id -u)" = 0 ]; then $(VENV)/bin/sikte-tui $(ARGS); \
	else sudo -E $(VENV)/bin/sikte-tui $(ARGS); fi

test: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -ra $(PYTEST_ARGS)

# Lint and type check only (mypy's settings and the files it checks: pyproject.toml).
lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The bench's anchors (libbpf-tools' syscount, bpftrace) are installed here, not by bootstrap:
# `make test` does not need them.
bench: bootstrap
	@bash scripts/bench-tools.sh
	$(PY) -m benchmarks $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
