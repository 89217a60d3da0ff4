# Two entry points; both install what they need first (scripts/setup.sh is idempotent).
.PHONY: setup test test-fast lint demo bench

setup:
	@scripts/setup.sh

lint: setup
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy

test: lint
	.venv/bin/python -m pytest

# Unit tests only (tests/unit: no services), for a quick loop while editing.
test-fast: setup
	.venv/bin/python -m pytest tests/unit -q

demo: setup
	scripts/demo.sh

# Benchmarks (never part of `make test`): every bench/ script, each prints its table and
# writes bench/results/<name>.json. ROUNDS=1 for a quick look (default: each script's own).
bench: setup
	BENCH_ROUNDS=$(ROUNDS) .venv/bin/python -m bench $(if $(LABEL),--label $(LABEL))
