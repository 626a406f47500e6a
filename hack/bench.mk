# Benchmarks of the operator at scale and of batched drift queries (bench/). Figures are
# ratios against baselines measured in the same run; reports go to bench-results/.
BENCH_PYTHONPATH := PYTHONPATH=operator:hack

.PHONY: bench-operator bench-scale bench-cache-memory bench-drift-queries bench-canary bench-estimated-quality bench-experiment bench-logs-retraining

bench: bench-bento bench-drift bench-operator bench-drift-queries bench-canary bench-estimated-quality bench-experiment bench-logs-retraining ## run every benchmark; results in bench-results/
	@echo "bench: results in $(CURDIR)/bench-results/"
	@ls -1 bench-results/*.md

# COUNTxSHARDS per run; each is a fresh control plane (1,000 at once takes a while on 2 cores).
BENCH_SCALE_RUNS ?= 300x1 300x2 1000x1 1000x2

bench-operator: bench-scale ## alias of bench-scale

bench-scale: setup system-deps cluster-bin ## operator vs a same-run `kubectl apply` of its children, for BENCH_SCALE_RUNS (COUNTxSHARDS) (bench-results/operator-scale.md)
	mkdir -p bench-results
	for run in $(BENCH_SCALE_RUNS); do \
		$(BENCH_PYTHONPATH) $(PY) bench/bench_operator_scale.py --count $${run%x*} \
			--shards $${run#*x} --output bench-results/operator-scale-$$run.md || exit 1; \
	done
	cat $(foreach run,$(BENCH_SCALE_RUNS),bench-results/operator-scale-$(run).md) \
		> bench-results/operator-scale.md

bench-cache-memory: setup ## where the operator's memory goes at 1,000 resources: the cache, a relist, kopf (tracemalloc, no cluster; bench-results/cache-memory.md)
	$(BENCH_PYTHONPATH) $(PY) bench/bench_cache_memory.py --count 1000 --output bench-results/cache-memory.md

bench-drift-queries: setup system-deps ## Prometheus queries per drift interval for 1..300 resources vs per-resource queries (bench-results/drift-queries.md)
	$(BENCH_PYTHONPATH) $(PY) bench/bench_drift_queries.py --output bench-results/drift-queries.md

bench-canary: setup ## false aborts of healthy canaries and failed requests before a bad one is aborted, through the decision code (bench-results/canary-abort.md)
	$(BENCH_PYTHONPATH):bentos $(PY) bench/bench_canary_abort.py --output bench-results/canary-abort.md

bench-logs-retraining: setup ## whether a candidate trained on the e2e's prediction log passes the gate, by when the Job reads it (bench-results/logs-retraining.md)
	$(BENCH_PYTHONPATH):bentos $(PY) bench/bench_logs_retraining.py --output bench-results/logs-retraining.md

bench-estimated-quality: setup ## label-free estimated accuracy, precision, recall vs realized, per Soom scenario (bench-results/estimated-quality.md)
	$(BENCH_PYTHONPATH):bentos $(PY) bench/bench_estimated_quality.py --output bench-results/estimated-quality.md
