# Drift statistics targets (owned by the drift-statistics work; see operator/rollforward/drift/).
.PHONY: bench-drift

bench-drift: setup ## false-alarm rates and detection delay of the drift checks (bench-results/drift-false-alarms.md)
	PYTHONPATH=operator:hack $(PY) bench/drift_false_alarms.py --output bench-results/drift-false-alarms.md
