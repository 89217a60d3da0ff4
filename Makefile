# Two entry points; both install what they need first (scripts/setup.sh is idempotent).
.PHONY: setup test test-fast lint demo bench

# Build tooling, not the product: the developers' and CI's machines have no internet access
# but a copy of the charts in ../shared/charts, so the chart mirror setting points there when
# that folder exists and nothing else set it (docs/charts.md).
SHARED_CHARTS := $(abspath ../shared/charts)
ifneq ($(wildcard $(SHARED_CHARTS)),)
export TEMPORAL_BOOTSTRAP_CHART_MIRROR ?= $(SHARED_CHARTS)
endif

setup:
	@scripts/setup.sh

lint: setup
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy

# Three processes (the e2e tests mostly wait on processes and timeouts), each with its own
# local stack; a test file stays in one process, since an
# e2e module's tests build on each other. PYTEST_WORKERS=0 runs in one process.
# --no-loadscope-reorder: xdist would hand out the files with the most tests first (its
# default), so the slow e2e files of few tests started last and ran on alone; without it the
# files go out in the order tests/conftest.py sorts them (slowest first).
# Four were tried (2026-12-08): the cores' idle time fell from 11.5 % to 5 %, but the run took
# longer (13 min 19 s against 12 min 34 s), the four stacks competing for two cores.
PYTEST_WORKERS ?= 3
test: lint
	.venv/bin/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Unit tests only (tests/unit: no services), for a quick loop while editing.
test-fast: setup
	.venv/bin/python -m pytest tests/unit -q

demo: setup
	scripts/demo.sh

# Benchmarks (never part of `make test`): every bench/ script, each prints its table and
# writes bench/results/<name>.json. ROUNDS=1 for a quick look (default: each script's own).
bench: setup
	BENCH_ROUNDS=$(ROUNDS) .venv/bin/python -m bench $(if $(LABEL),--label $(LABEL))
