# Developer tasks; `make test` is what CI runs (see README).
.PHONY: test lint typecheck pytest golden bench overhead soak demo

test: lint typecheck pytest

lint:
	ruff check .

typecheck:
	mypy

pytest:
	python -m pytest

golden:
	python -m pytest tests/unit/test_golden.py tests/integration/test_report_golden.py --update-golden

bench:
	python benchmarks/analysis.py
	python benchmarks/ingest.py
	python benchmarks/report.py
	python benchmarks/dashboard.py
	python benchmarks/receive.py

overhead:
	python benchmarks/overhead.py

soak:
	python benchmarks/soak.py

demo:
	perfhouse demo
