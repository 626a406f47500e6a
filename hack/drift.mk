# Drift statistics targets (owned by the drift-statistics work; see operator/rollforward/drift/).
.PHONY: bench-drift bench-drift-false-alarms

bench-drift: setup ## drift episodes per 30 days, detection delay, per-check false alarms at the CRD defaults (bench-results/drift-episodes.md; a few minutes on 2 cores)
	PYTHONPATH=operator:hack $(PY) bench/drift_episodes.py --output bench-results/drift-episodes.md

bench-drift-false-alarms: setup ## the test alone at alpha 0.05: false alarms and delay on small windows (bench-results/drift-false-alarms.md)
	PYTHONPATH=operator:hack $(PY) bench/drift_false_alarms.py --output bench-results/drift-false-alarms.md
