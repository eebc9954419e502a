# Convenience wrappers; the scripts are what the README's quick start runs.
.PHONY: run test bench bench-quick
run:
	bash scripts/run.sh
test:
	bash scripts/test.sh
bench:        ## API throughput, latency at half max, deep pagination, cold start (~10 min)
	bash scripts/bootstrap.sh test && .venv/bin/python bench/run.py $(BENCH_ARGS)
bench-quick:  ## the same, shorter (~2-3 min)
	bash scripts/bootstrap.sh test && .venv/bin/python bench/run.py --quick $(BENCH_ARGS)
