# A/B experiment targets (see operator/rollforward/experiment.py).
.PHONY: bench-experiment

bench-experiment: setup ## A/A false winners and power for +2 points on 30% at the documented traffic, through the real decision code (bench-results/experiment.md)
	PYTHONPATH=operator:hack $(PY) bench/bench_experiment.py --output bench-results/experiment.md
