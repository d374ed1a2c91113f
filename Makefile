# idp-workflows: `make demo` runs the main job on the embedded default, `make test` runs
# every check. Both create .venv and install the pinned set (constraints.txt) when needed.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
ARGS ?=

export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: install demo test lint typecheck layers pytest system-tools bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt \
		--config-settings editable_mode=compat -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/idp demo $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

layers: $(STAMP)
	$(VENV)/bin/lint-imports

# Chromium, its driver and Prometheus, from Debian, when missing (the suite skips nothing).
system-tools:
	@tests/system-tools.sh

# pytest exits 5 when it collects no test; that is a failure of the suite, not a pass.
pytest: $(STAMP) system-tools
	@set +e; $(VENV)/bin/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$status

test: lint typecheck layers pytest

# Throughput and latency against the asyncio lower bound (minutes; not part of `make test`).
# ARGS="--scale small" validates it quickly; figures land in bench/results/.
bench: $(STAMP)
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
