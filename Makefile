# Two entry points; both install what they need first (scripts/setup.sh is idempotent).
.PHONY: setup test lint demo

setup:
	@scripts/setup.sh

lint: setup
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy

test: lint
	.venv/bin/python -m pytest

demo: setup
	scripts/demo.sh
