# Benchmarks of the operator at scale and of batched drift queries (bench/). Figures are
# ratios against baselines measured in the same run; reports go to bench-results/.
BENCH_PYTHONPATH := PYTHONPATH=operator:hack

.PHONY: bench-operator bench-drift-queries bench-canary

bench: bench-bento bench-drift bench-operator bench-drift-queries bench-canary ## run every benchmark; results in bench-results/
	@echo "bench: results in $(CURDIR)/bench-results/"
	@ls -1 bench-results/*.md

bench-operator: setup system-deps cluster-bin ## operator latency (apply -> children, -> Ready) and RSS for 1 and 300 resources (bench-results/operator-scale.md)
	$(BENCH_PYTHONPATH) $(PY) bench/bench_operator_scale.py --output bench-results/operator-scale.md

bench-drift-queries: setup system-deps ## Prometheus queries per drift interval for 1..300 resources vs per-resource queries (bench-results/drift-queries.md)
	$(BENCH_PYTHONPATH) $(PY) bench/bench_drift_queries.py --output bench-results/drift-queries.md

bench-canary: setup ## false aborts of healthy canaries and failed requests before a bad one is aborted, through the decision code (bench-results/canary-abort.md)
	$(BENCH_PYTHONPATH):bentos $(PY) bench/bench_canary_abort.py --output bench-results/canary-abort.md
