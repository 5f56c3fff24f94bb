# The README's commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3

.PHONY: install dev test test-fast lint bench workbench

# An editable install leaves raypipe uncompiled, and a host that sets PYTHONDONTWRITEBYTECODE
# (this one does) never writes its .pyc: every Ray worker and actor compiled it again as it
# imported it (0.25 s of CPU a process instead of 0.14 s). Python reads a .pyc it finds either way.
COMPILE = $(PYTHON) -m compileall -q raypipe >/dev/null

install:
	$(PYTHON) -m pip install -q -e '.[test]'
	$(COMPILE)
	@command -v npm >/dev/null || { echo "npm is needed for the Motia client test: apt-get install -y nodejs npm"; exit 1; }
	cd tests/node && npm ci --silent
	cd workbench && npm ci --silent
	@# The workbench's browser tests drive Debian's chromium through Playwright.
	@command -v chromium >/dev/null || apt-get install -y -q chromium >/dev/null || \
		{ echo "chromium is needed for the workbench tests: apt-get install -y chromium"; exit 1; }

# Rebuild the workbench page (raypipe/http/workbench_static/) from workbench/src.
workbench:
	cd workbench && npm ci --silent && npm run build

dev:
	@echo "installing raypipe and Ray (a few minutes the first time)..."
	$(PYTHON) -m pip install --progress-bar on -e .
	$(COMPILE)
	raypipe dev examples/parallel-workflow

lint:
	ruff check .
	mypy

test: install lint
	REDIS_URL=$$(scripts/ensure-redis) $(PYTHON) -m pytest

# The tests that need no Ray (models, engine, HTTP and each example on raypipe.testing).
test-fast:
	REDIS_URL=$$(scripts/ensure-redis) $(PYTHON) -m pytest -m "not ray"

# Every benchmark against its baselines, then bench/results/report.md with plots.
bench: install
	$(PYTHON) -m pip install -q -e '.[test,bench]'
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null || \
		{ echo "wrk is needed for the HTTP benchmark: apt-get install -y wrk"; exit 1; }
	REDIS_URL=$$(scripts/ensure-redis) $(PYTHON) bench/report.py
