# Convenience wrappers; the scripts are what the README's quick start runs.
.PHONY: run test bench
run:
	bash scripts/run.sh
test:
	bash scripts/test.sh
bench:
	bash scripts/bootstrap.sh test && .venv/bin/python bench/run.py
