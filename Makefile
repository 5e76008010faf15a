# Developer tasks; `make test` is what CI runs (see README).
.PHONY: test lint typecheck pytest golden bench overhead soak demo

test: lint typecheck pytest

lint:
	ruff check .

typecheck:
	mypy

# Two workers per core (pytest-xdist; tests/conftest.py): a module sharing a fixture stays on one worker. The
# slowest tests are printed, so what holds `make test` to its 15 minutes shows in every run.
pytest:
	python -m pytest -n auto --dist loadgroup --durations=25

golden:
	python -m pytest tests/unit/test_golden.py tests/integration/test_report_golden.py --update-golden

# Every benchmark at its measuring size (soak: its own target, 20 minutes); each prints its ratios against their
# targets. BENCH_ARGS=--tiny runs them all in seconds (what tests/integration/test_benchmarks.py does).
bench:
	python benchmarks/analysis.py $(BENCH_ARGS)
	python benchmarks/gate_k6.py $(BENCH_ARGS)
	python benchmarks/ingest.py $(BENCH_ARGS)
	python benchmarks/report.py $(BENCH_ARGS)
	python benchmarks/dashboard.py $(BENCH_ARGS)
	python benchmarks/receive.py $(BENCH_ARGS)
	python benchmarks/overhead.py $(BENCH_ARGS)

overhead:
	python benchmarks/overhead.py

soak:
	python benchmarks/soak.py $(BENCH_ARGS)

demo:
	perfhouse demo
